pipeline "p" {}

source "postgres" "app" {
  tables = ["public.users"]
}

sink "file" "out" {
  from = source.app
  path = "-"
}
