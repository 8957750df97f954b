pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}

test "row" {
  input "public.users" {
    op     = "delete"
    after  = { id = 1 }
  }
}
