pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
  snapshot = "always"
}

sink "file" "out" {
  from = source.app
  path = "-"
}
