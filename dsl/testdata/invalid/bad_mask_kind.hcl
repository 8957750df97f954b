pipeline "p" {
  mask_key = "k"
}

source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}

transform "clean" {
  from = source.app
  mask = { email = "hash", phone = "partal" }
}

sink "file" "out" {
  from = transform.clean
  path = "-"
}
