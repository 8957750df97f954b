pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from  = source.app
  where = "len(changed) + 1"
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
