pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" {
  from = source.app
  path = "-"
}
