package dsl

import "testing"

func TestAt(t *testing.T) {
	cfg, _, diags := Load("p.hcl", []byte(`pipeline "p" {}

source "file" "in" {
  path = "in.jsonl"
}

sink "file" "out" {
  from = source.in
  path = "-"
}
`), nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if got := At(cfg.Sinks[0].File.Ranges, "path"); got != "p.hcl:9:10: " {
		t.Errorf("At(path) = %q, want %q", got, "p.hcl:9:10: ")
	}
	if got := At(cfg.Sinks[0].File.Ranges, "format"); got != "" {
		t.Errorf("At of an attribute not written = %q, want \"\"", got)
	}
	if got := At(nil, "path"); got != "" {
		t.Errorf("At(nil) = %q", got)
	}
}
