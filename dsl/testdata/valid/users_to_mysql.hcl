# users_to_mysql.hcl — replicate users into MySQL, password never leaves PostgreSQL
pipeline "users_to_mysql" {}

source "postgres" "app" {
  dsn     = env("SOURCE_DSN")
  tables  = ["public.users"]
  exclude = ["public.users.password"]
}

sink "mysql" "replica" {
  from        = source.app
  dsn         = env("TARGET_DSN")
  auto_create = true
}
