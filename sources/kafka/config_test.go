package kafka

import (
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
)

// TestFromHCL builds the source from a pipeline file, so the attributes
// and defaults dsl decodes are the ones the source uses.
func TestFromHCL(t *testing.T) {
	cfg, _, diags := dsl.Load("replica.hcl", []byte(`pipeline "replica" {}
source "kafka" "changes" {
  brokers = ["127.0.0.1:9092"]
  topics  = ["app.public.users"]
}
sink "file" "out" {
  from = source.changes
  path = "-"
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s, err := newSource(engine.Build{Pipeline: engine.Pipeline{Name: cfg.Pipeline.Name, MaskKey: cfg.Pipeline.MaskKey.Reveal()}}, cfg.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.group != "sluice_replica" || s.native || s.name != "changes" || s.topics[0] != "app.public.users" {
		t.Fatalf("source built from HCL: %+v", s)
	}
}
