# shipped_orders.hcl — only orders that are worth a notification, to a webhook and a file
pipeline "shipped_orders" {}

source "postgres" "shop" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.orders"]
}

transform "notable" {
  from   = source.shop
  where  = "op in ['insert', 'update'] && after.total >= 50 && after.status in ['shipped', 'delivered']"
  select = ["order_id", "customer_id", "status", "total"]
}

sink "webhook" "notify" {
  from   = transform.notable
  url    = env("WEBHOOK_URL")
  secret = env("WEBHOOK_SECRET")
}

sink "file" "audit" {
  from = transform.notable
  path = "notable-orders.jsonl"
}

test "small and unshipped orders are not notable" {
  input "public.orders" {
    op    = "insert"
    after = { order_id = 1, customer_id = 7, status = "pending", total = 80, note = "gift" }
  }
  input "public.orders" {
    op     = "update"
    before = { order_id = 1 }
    after  = { order_id = 1, customer_id = 7, status = "shipped", total = 80, note = "gift" }
  }
  input "public.orders" {
    op    = "insert"
    after = { order_id = 2, customer_id = 8, status = "shipped", total = 49.99, note = "" }
  }
  input "public.orders" {
    op     = "delete"
    before = { order_id = 1 }
  }
  expect "sink.notify" {
    op    = "update"
    after = { order_id = 1, customer_id = 7, status = "shipped", total = 80 }
  }
  expect "sink.audit" {
    op    = "update"
    after = { order_id = 1, customer_id = 7, status = "shipped", total = 80 }
  }
}
