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

test "soft delete keeps the row" {
  input "public.pasta" {
    op    = "insert"
    after = { id = 1, name = "linguine", cooking_minutes = 10 }
  }
  input "public.pasta" {
    op     = "delete"
    before = { id = 1, name = "linguine" }
  }
  expect_table "sink.pasta" {
    rows = [{ id = 1, name = "linguine", cooking_minutes = 10, __deleted = true }]
  }
}

test "an upsert after a soft delete revives the row" {
  input "public.pasta" {
    op    = "insert"
    after = { id = 1, name = "penne", cooking_minutes = 11 }
  }
  input "public.pasta" {
    op     = "delete"
    before = { id = 1, name = "penne" }
  }
  input "public.pasta" {
    op    = "insert"
    after = { id = 2, name = "penne", cooking_minutes = 12 }
  }
  expect_table "sink.pasta" {
    rows = [{ id = 2, name = "penne", cooking_minutes = 12, __deleted = false }]
  }
}
