pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from    = source.app
  select  = ["id", "email"]
  exclude = ["password"]
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
