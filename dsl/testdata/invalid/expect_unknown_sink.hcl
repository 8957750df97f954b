pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}

test "sink" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.uot" {
    op = "insert"
  }
}
