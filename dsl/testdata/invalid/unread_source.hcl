pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

source "file" "sample" {
  path = "users.jsonl"
}

sink "file" "out" {
  from = source.app
  path = "-"
}
