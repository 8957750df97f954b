pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  exclude = ["password"]
}

sink "file" "out" {
  from = [source.app, transform.clean]
  path = "-"
}
