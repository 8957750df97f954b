pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
  heartbeat = "10 seconds"
}

sink "file" "out" {
  from = source.app
  path = "-"
}
