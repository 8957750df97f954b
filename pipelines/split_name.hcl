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

test "names are split into first and last" {
  input "public.users" {
    op    = "snapshot"
    after = { id = 1, name = "Grace Brewster Hopper", first_name = null, last_name = null }
  }
  input "public.users" {
    op    = "snapshot"
    after = { id = 2, name = "Cher", first_name = null, last_name = null }
  }
  expect "sink.same_table" {
    op    = "snapshot"
    after = { id = 1, name = "Grace Brewster Hopper", first_name = "Grace", last_name = "Brewster Hopper" }
  }
  expect "sink.same_table" {
    op    = "snapshot"
    after = { id = 2, name = "Cher", first_name = "Cher", last_name = null }
  }
}

# The sink writes back into the table the source reads, so the inputs are
# changes of the target table itself; the pipeline fills in the names.
test "the backfill fills first and last name of the same table" {
  input "public.users" {
    op    = "snapshot"
    after = { id = 1, name = "Alan Turing", email = "alan@example.com", first_name = null, last_name = null }
  }
  input "public.users" {
    op     = "update"
    before = { id = 1 }
    after  = { id = 1, name = "Alan Mathison Turing", email = "alan@example.com", first_name = "Alan", last_name = "Turing" }
  }
  expect_table "sink.same_table" {
    rows = [{ id = 1, name = "Alan Mathison Turing", email = "alan@example.com", first_name = "Alan", last_name = "Mathison Turing" }]
  }
}
