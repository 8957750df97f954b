package webhook

import (
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
)

// TestFromHCL builds the sink from a pipeline file, so the attributes and
// defaults dsl decodes are the ones the sink uses.
func TestFromHCL(t *testing.T) {
	cfg, _, diags := dsl.Load("hooks.hcl", []byte(`pipeline "shop" {}
source "file" "in" { path = "in.jsonl" }
sink "webhook" "crm" {
  from    = source.in
  url     = "https://crm.internal/hooks/users"
  secret  = "s3cret"
  headers = { Authorization = "Bearer tok" }
  retry   = { max = 3, backoff = "10ms" }
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	s, err := newSink(engine.Build{Pipeline: engine.Pipeline{Name: cfg.Pipeline.Name, MaskKey: cfg.Pipeline.MaskKey.Reveal()}}, cfg.Sinks[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.batch != 100 || s.timeout != 5*time.Second || s.retries != 3 || s.backoff != 10*time.Millisecond ||
		s.format.Name() != "native" || string(s.secret) != "s3cret" || s.headers["Authorization"].Reveal() != "Bearer tok" || s.name != "shop.crm" {
		t.Fatalf("sink built from HCL: %+v", s)
	}
}
