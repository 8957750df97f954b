pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tabels = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}
