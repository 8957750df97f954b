pipeline "p" {}

source "postgress" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}
