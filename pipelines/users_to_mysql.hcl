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

# The source excludes password in PostgreSQL's publication, so events never
# carry it; this test feeds one that does (as a misconfigured source would)
# to show what reaches the replica table.
test "users are upserted by id" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, first_name = "Ben", email = "ben@example.com" }
  }
  input "public.users" {
    op     = "update"
    before = { id = 1 }
    after  = { id = 1, first_name = "Benjamin", email = "ben@example.com" }
  }
  input "public.users" {
    op    = "insert"
    after = { id = 2, first_name = "Ada", email = "ada@example.com" }
  }
  input "public.users" {
    op     = "delete"
    before = { id = 2 }
  }
  expect_table "sink.replica" {
    rows = [{ id = 1, first_name = "Benjamin", email = "ben@example.com" }]
  }
}

test "a primary-key update moves the row" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, first_name = "Ben" }
  }
  input "public.users" {
    op     = "update"
    before = { id = 1 }
    after  = { id = 10, first_name = "Ben" }
  }
  expect_table "sink.replica" {
    rows = [{ id = 10, first_name = "Ben" }]
  }
}
