# reference.hcl — every block-reference snippet of LANGUAGE.md, verbatim, combined
# into one pipeline. Added to make it whole: the variable, the postgres sink "pasta"
# the second test expects, and the file sink "rest" that reads the kafka and file sources.
pipeline "reference" {
  state    = ".sluice/reference.db"
  on_error = "retry"
  mask_key = env("SLUICE_MASK_KEY")
}

variable "target" { default = "root@tcp(127.0.0.1:3306)/app" }

sink "postgres" "pasta" {
  from           = source.app
  dsn            = var.target
  table          = "pasta"
  key            = ["name"]
  delete         = "soft"
  schema_changes = "fail"
}

sink "file" "rest" {
  from = [source.changes, source.sample]
  path = "rest.jsonl"
}

transform "clean" {
  from    = source.app
  tables  = ["public.users"]                 # optional: which tables this applies to; others pass through untouched
  where   = "op != 'delete' && row.email endsWith '@example.com' == false"
  set     = { email_domain = "split(after.email, '@')[1]" }
  mask    = { email = "hash", phone = "partial", ssn = "redact", note = "null" }
  exclude = ["password"]                     # or select = ["id", "email"]
  rename  = { email_domain = "domain" }
}

source "postgres" "app" {
  dsn         = env("SOURCE_DSN")           # postgres URL; a replication connection is derived from it
  tables      = ["public.users", "public.orders"]   # "public.*" allowed
  slot        = "sluice_app"                # default: sluice_<pipeline>; created if missing
  publication = "sluice_app"                # default: sluice_<pipeline>; created/altered if missing
  snapshot    = "initial"                   # initial | never
  exclude     = ["public.users.password"]   # columns that never leave PostgreSQL (publication column list)
  heartbeat   = "10s"
}

source "kafka" "changes" {
  brokers = ["127.0.0.1:9092"]
  topics  = ["app.public.users"]
  group   = "sluice-users-replica"
  format  = "debezium"                      # debezium | native
}

source "file" "sample" { path = "testdata/users.jsonl" }   # one change event (native format) per line

sink "mysql" "replica" {
  from        = transform.clean
  dsn         = env("TARGET_DSN")           # go-sql-driver DSN or mysql:// URL
  table       = "users_replica"             # default: the source table's name
  key         = ["id"]                      # default: the source primary key
  mode        = "upsert"                    # upsert | append (every change as a new row, with op/position columns) | update (existing rows, listed columns only)
  columns     = ["first_name", "last_name"] # with mode = "update": the only columns written
  delete      = "hard"                      # hard | soft (sets __deleted = true) | skip
  auto_create = true                        # create the target table from the source schema
  batch_size  = 1000
}
# sink "postgres" takes the same attributes.
# mode = "update" writes a row only where a listed column's value differs (IS DISTINCT FROM),
# so a pipeline may write back into the very table it reads without feeding on its own writes.

sink "kafka" "events" {
  from         = source.app
  brokers      = ["127.0.0.1:9092"]
  topic        = "app.{schema}.{table}"     # default shown with prefix = pipeline name
  format       = "debezium"                 # debezium | native
  key          = ["id"]
  tombstones   = true                       # a null-value record after each delete
  exactly_once = true                       # transactional producer
}

sink "webhook" "crm" {
  from    = transform.clean
  url     = "https://crm.internal/hooks/users"
  secret  = env("WEBHOOK_SECRET")           # HMAC-SHA256 of the body in header X-Sluice-Signature
  headers = { Authorization = "Bearer ${env("CRM_TOKEN")}" }
  batch   = 100
  timeout = "5s"
  retry   = { max = 8, backoff = "500ms" }
}

sink "file" "out" {
  from   = transform.clean
  path   = "-"
  format = "native"
}

test "password never leaves" {
  input "public.users" {                     # one or more inputs, each one change event
    op    = "insert"
    after = { id = 1, first_name = "Ben", email = "ben@example.com", password = "hunter2" }
  }
  expect "sink.replica" {                    # what reaches that sink, in order; omit = nothing reaches it
    op    = "insert"
    after = { id = 1, first_name = "Ben", email = "ben@example.com" }
  }
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

