pipeline "p" {
  on_eror = "retry"
}

source "postgres" "app" {
  dsn       = "postgres://localhost/app"
  tables    = ["public.users"]
  heartbeat = "soon"
}

transform "t" {
  from  = source.app
  where = "op == 'delet'"
}

sink "mysql" "out" {
  from = transform.tt
  dsn  = "root@tcp(127.0.0.1:3306)/app"
  mode = "replace"
}
