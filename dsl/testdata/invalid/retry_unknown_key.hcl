pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "webhook" "out" {
  from  = source.app
  url   = "https://example.com/hook"
  retry = { max = 3, delay = "1s" }
}
