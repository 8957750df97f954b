pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sinks "file" "copy" {
  from = source.app
  path = "copy.jsonl"
}

sink "file" "out" {
  from = source.app
  path = "-"
}
