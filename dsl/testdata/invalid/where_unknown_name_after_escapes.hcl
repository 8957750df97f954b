pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from  = source.app
  where = "after.name == \"Ben\" && \u00e9 == 1 || usr.id > 1"
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
