package kafka

import (
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
)

// TestFromHCL builds the sink from a pipeline file, so the attributes and
// defaults dsl decodes are the ones the sink uses.
func TestFromHCL(t *testing.T) {
	cfg, _, diags := dsl.Load("events.hcl", []byte(`pipeline "shop" {}
source "file" "in" { path = "in.jsonl" }
sink "kafka" "events" {
  from         = source.in
  brokers      = ["127.0.0.1:9092"]
  tombstones   = true
  exactly_once = true
  partitions   = 6
  producer_linger = "40ms"
  batch_bytes  = 262144
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s, err := newSink(engine.Build{Pipeline: engine.Pipeline{Name: cfg.Pipeline.Name, MaskKey: cfg.Pipeline.MaskKey.Reveal()}}, cfg.Sinks[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.topic != "shop.{schema}.{table}" || s.format.Name() != "debezium" || !s.tombs || s.parts != 6 || s.repl != 1 ||
		s.txnID != "sluice.shop.events" || s.ckptKey != "shop/events/" || s.linger != 40*time.Millisecond || s.batchBytes != 262144 {
		t.Fatalf("sink built from HCL: %+v", s)
	}
}
