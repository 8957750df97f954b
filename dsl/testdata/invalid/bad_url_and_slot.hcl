pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
  slot   = "Users-Slot"
}

sink "webhook" "out" {
  from = source.app
  url  = "crm.internal/hooks"
}
