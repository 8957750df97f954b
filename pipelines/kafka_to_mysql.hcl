# kafka_to_mysql.hcl — the other half of a split pipeline: a consumer group
# of sluice processes applies the users topic to MySQL/MariaDB. Start as
# many as the topic has partitions; each partition is applied by one of
# them, and the target stores each partition's position in the same
# transaction as the rows.
pipeline "users_replica" {}

variable "brokers" {
  default = "127.0.0.1:9092"
}

source "kafka" "users" {
  brokers = [var.brokers]
  topics  = ["app.public.users"]
  group   = "sluice-users-replica"
  format  = "debezium"
}

sink "mysql" "replica" {
  from        = source.users
  dsn         = env("TARGET_DSN")
  table       = "users"
  key         = ["id"]
  delete      = "soft"
  auto_create = true
}

test "changes from the topic keep the replica in step" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, email = "ben@example.com", name = "Ben" }
  }
  input "public.users" {
    op    = "insert"
    after = { id = 2, email = "ada@example.com", name = "Ada" }
  }
  input "public.users" {
    op     = "update"
    before = { id = 1 }
    after  = { id = 1, email = "benjamin@example.com", name = "Ben" }
  }
  input "public.users" {
    op     = "delete"
    before = { id = 2 }
  }
  expect_table "sink.replica" {
    rows = [
      { id = 1, email = "benjamin@example.com", name = "Ben", __deleted = false },
      { id = 2, email = "ada@example.com", name = "Ada", __deleted = true },
    ]
  }
}
