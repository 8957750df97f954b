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
