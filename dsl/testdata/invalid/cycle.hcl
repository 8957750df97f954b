pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "a" {
  from = [source.app, transform.c]
}

transform "b" {
  from = transform.a
}

transform "c" {
  from = transform.b
}

sink "file" "out" {
  from = transform.c
  path = "-"
}
