pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "postgres" "out" {
  from = source.app
  dsn  = "postgres://localhost/app"
  mode = "update"
}
