pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from  = source.app
  where = "op == 'insert' || op == 'upsert'"
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
