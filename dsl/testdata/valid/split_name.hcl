# split_name.hcl — online backfill of first_name/last_name from name, same database
pipeline "split_name" {}

source "postgres" "app" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.users"]
}

transform "split" {
  from  = source.app
  where = "op != 'delete'"
  set = {
    first_name = "split(after.name, ' ')[0]"
    last_name  = "len(split(after.name, ' ')) > 1 ? join(split(after.name, ' ')[1:], ' ') : nil"
  }
}

sink "postgres" "same_table" {
  from    = transform.split
  dsn     = env("SOURCE_DSN")
  table   = "users"
  mode    = "update"
  columns = ["first_name", "last_name"]
}
