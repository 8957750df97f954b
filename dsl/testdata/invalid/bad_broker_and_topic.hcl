pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

sink "kafka" "out" {
  from    = source.app
  brokers = ["127.0.0.1:9092", "localhost"]
  topic   = "app.{schema}.{tabel}"
}
