pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "mysql" "out" {
  from = source.app
  dsn  = "root@tcp(127.0.0.1:3306)/app"
  mode = "upsrt"
}
