pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from  = source.app
  where = <<EOT
op != 'delete' &&
  aftr.total >= 50
EOT
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
