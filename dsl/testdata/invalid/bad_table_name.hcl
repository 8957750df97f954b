pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users", "orders"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}
