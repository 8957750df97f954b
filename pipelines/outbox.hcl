# outbox.hcl — the transactional outbox: the application writes its events
# into public.outbox in the transaction that changes its own tables (and may
# delete them at once to keep the table small); sluice routes each inserted
# row to the topic of its aggregate type, exactly once. These are the
# defaults of Debezium's outbox event router (EventRouter): topic
# outbox.event.<aggregatetype>, key aggregateid, value payload, header id.
# Updates and deletes of the outbox table are not routed.
pipeline "outbox" {}

variable "brokers" {
  default = "127.0.0.1:9092"
}

source "postgres" "app" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.outbox"]
}

sink "kafka" "events" {
  from         = source.app
  brokers      = [var.brokers]
  exactly_once = true
  partitions   = 6

  outbox {
    topic   = "'outbox.event.' + row.aggregatetype"
    key     = "row.aggregateid"
    value   = "row.payload"
    headers = { id = "string(row.id)" }
  }
}

test "an outbox row reaches the sink" {
  input "public.outbox" {
    op    = "insert"
    after = { id = 7, aggregatetype = "order", aggregateid = "order-42", payload = "{\"total\": 12.5}" }
  }
  expect "sink.events" {
    op    = "insert"
    after = { id = 7, aggregatetype = "order", aggregateid = "order-42", payload = "{\"total\": 12.5}" }
  }
}
