# pasta_soft_delete.hcl — keyed by name, deletes become __deleted = true
pipeline "pasta" {}

source "postgres" "pg" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.pasta"]
}

sink "mysql" "pasta" {
  from        = source.pg
  dsn         = env("TARGET_DSN")
  table       = "pasta_mysql"
  key         = ["name"]
  delete      = "soft"
  auto_create = true
}
