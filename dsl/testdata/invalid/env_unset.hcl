pipeline "p" {}

source "postgres" "app" {
  dsn    = env("UNSET_FOR_TEST")
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}
