pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "loop" {
  from = transform.loop
}

sink "file" "out" {
  from = [source.app, transform.loop]
  path = "-"
}
