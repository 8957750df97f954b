pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "file" "copy" {
  from = sink.out
  path = "copy.jsonl"
}

sink "file" "out" {
  from = source.app
  path = "-"
}
