pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}

test "same" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
}

test "same" {
  input "public.users" {
    op    = "insert"
    after = { id = 2 }
  }
}
