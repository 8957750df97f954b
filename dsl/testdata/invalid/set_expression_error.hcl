pipeline "p" {}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from = source.app
  set = {
    domain = "split(after.email, '@')[1]"
    initials = "upper(after.first_name[0:1]"
  }
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
