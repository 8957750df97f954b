pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from  = source.app
  where = "op != 'delete' && (after.total > 5"
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
