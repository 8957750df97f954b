pipeline "p" {}

source "postgres" "app" {
  dsn    = envv("SOURCE_DSN")
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}
