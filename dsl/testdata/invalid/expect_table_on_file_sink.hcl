pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}

test "table" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect_table "sink.out" {
    rows = [{ id = 1 }]
  }
}
