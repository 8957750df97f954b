pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.orders"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}
