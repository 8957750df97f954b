# orders_resolved.hcl — orders and their lines to Kafka for consumers that
# must know when they have everything: a resolved timestamp in every
# partition at most every 10s (every order committed at or before it has
# been published), and each source transaction framed by BEGIN and END on
# shop.transaction, so an order and its lines are applied together. See
# docs/resolved.md.
pipeline "shop" {}

variable "brokers" {
  default = "127.0.0.1:9092"
}

source "postgres" "shop" {
  dsn       = env("SOURCE_DSN")
  tables    = ["public.orders", "public.order_lines"]
  heartbeat = "5s" # T advances through heartbeats while the tables are idle
}

sink "kafka" "orders" {
  from         = source.shop
  brokers      = [var.brokers]
  topic        = "shop.{schema}.{table}"
  format       = "debezium"
  key          = ["id"]
  exactly_once = true # resolved records commit with what they cover
  partitions   = 6
  resolved     = "10s"
  transactions = true # BEGIN/END on "shop.transaction"
}

test "an order and its lines reach the sink" {
  input "public.orders" {
    op    = "insert"
    after = { id = 7, customer = "ada", total = 30 }
  }
  input "public.order_lines" {
    op    = "insert"
    after = { id = 70, order_id = 7, sku = "pasta", qty = 3 }
  }
  expect "sink.orders" {
    op    = "insert"
    after = { id = 7, customer = "ada", total = 30 }
  }
  expect "sink.orders" {
    op    = "insert"
    after = { id = 70, order_id = 7, sku = "pasta", qty = 3 }
  }
}
