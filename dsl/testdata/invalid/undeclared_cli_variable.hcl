# -var tabels=public.users
variable "tables" { default = ["public.users"] }

pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = var.tables
}

sink "file" "out" {
  from = source.app
  path = "-"
}
