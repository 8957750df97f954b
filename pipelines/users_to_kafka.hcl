# users_to_kafka.hcl — break a monolith without touching it: every change of
# public.users becomes a Debezium-compatible event on Kafka for the services
# around it; password never leaves PostgreSQL.
pipeline "app" {}

variable "brokers" {
  default = "127.0.0.1:9092"
}

source "postgres" "app" {
  dsn     = env("SOURCE_DSN")
  tables  = ["public.users"]
  exclude = ["public.users.password"]
}

sink "kafka" "events" {
  from         = source.app
  brokers      = [var.brokers]
  topic        = "app.{schema}.{table}"
  format       = "debezium"
  key          = ["id"]
  tombstones   = true
  exactly_once = true
  partitions   = 6
}

test "every change of users is published" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, email = "ben@example.com", name = "Ben" }
  }
  input "public.users" {
    op     = "update"
    before = { id = 1 }
    after  = { id = 1, email = "benjamin@example.com", name = "Ben" }
  }
  input "public.users" {
    op     = "delete"
    before = { id = 1 }
  }
  expect "sink.events" {
    op    = "insert"
    after = { id = 1, email = "ben@example.com", name = "Ben" }
  }
  expect "sink.events" {
    op    = "update"
    after = { id = 1, email = "benjamin@example.com", name = "Ben" }
  }
  expect "sink.events" {
    op     = "delete"
    before = { id = 1 }
  }
}

test "password is excluded at the source" {
  input "public.users" {
    op    = "insert"
    after = { id = 2, email = "ada@example.com", name = "Ada", password = "hunter2" }
  }
  expect "sink.events" {
    op    = "insert"
    after = { id = 2, email = "ada@example.com", name = "Ada" }
  }
}
