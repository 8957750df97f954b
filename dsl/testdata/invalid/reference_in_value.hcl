pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "mysql" "out" {
  from = source.app
  dsn  = source.app
}
