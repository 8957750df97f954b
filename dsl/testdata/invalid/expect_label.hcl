pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}

test "label" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "out" {
    op = "insert"
  }
}
