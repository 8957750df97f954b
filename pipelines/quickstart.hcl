# quickstart.hcl — runs anywhere Go runs: no database, no network.
# A change log of public.users and public.orders (testdata/changes.jsonl) is
# cleaned up and written as JSON Lines to stdout (native format) and to a
# Debezium-style file.
#
#   sluice run pipelines/quickstart.hcl
pipeline "quickstart" {
  state    = ".sluice/quickstart.db"
  on_error = "dead_letter"
  mask_key = env("SLUICE_MASK_KEY", "quickstart-not-a-secret")
}

source "file" "changes" {
  path = "testdata/changes.jsonl"
}

# Users: no passwords, hashed e-mails (joinable), partial phones, a computed
# domain, and no deletes of test accounts.
transform "users" {
  from    = source.changes
  tables  = ["public.users"]
  where   = "op == 'delete' || row.plan != 'internal'"
  set     = { email_domain = "after.email == nil ? nil : split(after.email, '@')[1]" }
  mask    = { email = "hash", phone = "partial" }
  exclude = ["password"]
  rename  = { email_domain = "domain" }
}

sink "file" "stdout" {
  from = transform.users
  path = "-"
}

sink "file" "debezium" {
  from   = transform.users
  path   = ".sluice/quickstart-debezium.jsonl"
  format = "debezium"
}

# Tests hash with `sluice test`'s fixed key, "sluice-test-mask-key", not
# with mask_key: the expected hashes hold wherever the tests run.
test "password never leaves, e-mail is hashed" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, name = "Ben", email = "ben@example.com", phone = "0123456789", password = "hunter2", plan = "free" }
  }
  expect "sink.stdout" {
    op    = "insert"
    after = { id = 1, name = "Ben", email = "1f5acc737f33e540cff2c429d1d29d034b1da9d03d602f2acca0d55db032821a", phone = "0********9", plan = "free", domain = "example.com" }
  }
  expect "sink.debezium" {
    op    = "insert"
    after = { id = 1, name = "Ben", email = "1f5acc737f33e540cff2c429d1d29d034b1da9d03d602f2acca0d55db032821a", phone = "0********9", plan = "free", domain = "example.com" }
  }
}

test "a primary-key change keeps the hash stable" {
  input "public.users" {
    op     = "update"
    before = { id = 4 }
    after  = { id = 40, name = "Linus", email = "ben@example.com", phone = null, password = "x", plan = "free" }
  }
  expect "sink.stdout" {
    op     = "update"
    before = { id = 4 }
    after  = { id = 40, name = "Linus", email = "1f5acc737f33e540cff2c429d1d29d034b1da9d03d602f2acca0d55db032821a", phone = null, plan = "free", domain = "example.com" }
  }
  expect "sink.debezium" {
    op = "update"
  }
}

test "internal accounts are filtered out, their deletes are not" {
  input "public.users" {
    op    = "insert"
    after = { id = 9, name = "Ops", email = "ops@example.com", phone = null, password = "x", plan = "internal" }
  }
  input "public.users" {
    op     = "delete"
    before = { id = 9 }
  }
  expect "sink.stdout" {
    op     = "delete"
    before = { id = 9 }
  }
  expect "sink.debezium" {
    op = "delete"
  }
}

test "orders pass through untouched" {
  input "public.orders" {
    op    = "insert"
    after = { order_id = 7, status = "pending", total = 12.5 }
  }
  expect "sink.stdout" {
    op    = "insert"
    after = { order_id = 7, status = "pending", total = 12.5 }
  }
  expect "sink.debezium" {
    op = "insert"
  }
}
