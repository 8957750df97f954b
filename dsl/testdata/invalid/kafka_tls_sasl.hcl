pipeline "p" {}

source "kafka" "in" {
  brokers = ["127.0.0.1:9092"]
  topics  = ["t"]

  tls {
    cert_file = "client.pem"
  }

  sasl {
    mechanism = "gssapi"
    username  = "u"
    password  = "never-printed-pw"
  }

  sasl {
    mechanism = "plain"
    username  = "u"
    password  = "pw"
  }
}

sink "file" "out" {
  from = source.in
  path = "out.jsonl"
}
