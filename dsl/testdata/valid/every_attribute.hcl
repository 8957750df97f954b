# every_attribute.hcl — sets every attribute the language has, each to a
# value other than its default, so a test can check each one was decoded.
pipeline "every-attribute" {
  state    = "/var/lib/sluice/every.db"
  on_error = "dead_letter"
  mask_key = file("mask.key")
}

variable "brokers" { default = "127.0.0.1:9092" }
variable "batch" { default = 50 }

source "postgres" "pg" {
  dsn                 = env("SOURCE_DSN")
  tables              = ["public.users", "shop.*"]
  slot                = "every_slot"
  publication         = "every_pub"
  snapshot            = "never"
  exclude             = ["public.users.password"]
  heartbeat           = "2s"
  on_slot_lost        = "resnapshot"
  max_rows_per_second = 5000
  snapshot_workers    = 4
}

source "kafka" "events" {
  brokers = [var.brokers, "127.0.0.1:9093"]
  topics  = ["app.public.users"]
  group   = "every-group"
  format  = "native"

  tls {
    ca_file              = "certs/ca.pem"
    cert_file            = "/etc/sluice/client.pem"
    key_file             = "/etc/sluice/client.key"
    server_name          = "kafka.internal"
    insecure_skip_verify = true
  }

  sasl {
    mechanism     = "aws-msk-iam"
    username      = "AKIAEXAMPLE"
    password      = env("UNSET_KAFKA_SECRET", "s3cret")
    session_token = "token"
  }
}

source "file" "sample" {
  path   = "users.jsonl"
  follow = true
}

transform "clean" {
  from    = [source.pg, source.events]
  tables  = ["public.users"]
  where   = "op != 'delete' && after.email != nil"
  set     = { domain = "split(after.email, '@')[1]", "full name" = "after.first + ' ' + after.last" }
  mask    = { email = "hash", phone = "partial", ssn = "redact", note = "null" }
  exclude = ["password"]
  rename  = { domain = "email_domain" }
}

transform "narrow" {
  from   = [transform.clean, source.sample]
  select = ["id", "email"]
}

sink "mysql" "replica" {
  from                = transform.narrow
  linger              = "1s"
  dsn                 = env("TARGET_DSN")
  table               = "users_replica"
  key                 = ["id"]
  mode                = "update"
  columns             = ["email"]
  delete              = "soft"
  auto_create         = true
  batch_size          = var.batch
  schema_changes      = "fail"
  truncate            = "skip"
  max_rows_per_second = 2000
  enums               = "varchar"
}

sink "postgres" "copy" {
  from                = transform.clean
  linger              = "1s"
  dsn                 = env("UNSET_EVERY_DSN", "postgres://127.0.0.1/copy")
  table               = "users_copy"
  key                 = ["id", "email"]
  mode                = "update"
  columns             = ["email", "id"]
  delete              = "skip"
  auto_create         = true
  batch_size          = 10
  schema_changes      = "drop_columns"
  truncate            = "fail"
  max_rows_per_second = 100
}

sink "kafka" "out" {
  from               = source.pg
  linger             = "1s"
  brokers            = [var.brokers]
  topic              = "cdc.{table}"
  format             = "native"
  schemas            = true
  key                = ["id"]
  tombstones         = true
  exactly_once       = true
  partitions         = 6
  replication_factor = 3
  producer_linger    = "50ms"
  batch_bytes        = 2097152

  sasl {
    mechanism = "scram-sha-512"
    username  = "sluice"
    password  = "pw"
  }

  outbox {
    topic   = "'outbox.' + row.kind"
    key     = "row.aggregate_id"
    value   = "row.payload"
    headers = { id = "string(row.id)" }
  }
}

sink "kafka" "txlog" {
  from               = source.pg
  linger             = "1s"
  brokers            = [var.brokers]
  resolved           = "10s"
  transactions       = true
  transactions_topic = "cdc.transactions"
}

sink "webhook" "hook" {
  from         = transform.clean
  linger       = "1s"
  url          = "https://hooks.example.com/users"
  secret       = env("WEBHOOK_SECRET")
  headers      = { Authorization = "Bearer ${env("CRM_TOKEN")}", "X-Team" = "data" }
  batch        = 25
  max_bytes    = 65536
  timeout      = "1m30s"
  retry        = { max = 3, backoff = "250ms" }
  format       = "debezium"
  resolved     = "30s"
  transactions = true
}

sink "file" "audit" {
  from         = transform.clean
  linger       = "1s"
  path         = "audit.jsonl"
  format       = "debezium"
  resolved     = "1m"
  transactions = true
}

test "every test attribute" {
  input "public.users" {
    op     = "update"
    key    = { id = 1 }
    before = { id = 1, email = "old@example.com", score = 1.5 }
    after  = { id = 1, email = "new@example.com", score = 2, tags = ["a", "b"], meta = { vip = true }, gone = null }
  }
  expect "sink.replica" {
    op     = "update"
    key    = { id = 1 }
    before = { id = 1 }
    after  = { id = 1, email = "new@example.com" }
  }
  expect_table "sink.copy" {
    table = "users_copy"
    rows  = [{ id = 1, email = "new@example.com" }]
  }
}
