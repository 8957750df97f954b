variable "tables" { default = ["public.users"] }

pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = var.tabels
}

sink "file" "out" {
  from = source.app
  path = "-"
}
