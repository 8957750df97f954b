package components

import (
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
)

// TestEveryBlockTypeHasAComponent loads the dsl's file that uses every
// block type and attribute, and checks the registry can build each source
// and sink type in it: a type the language accepts but no component
// implements would otherwise fail only when someone runs such a pipeline.
func TestEveryBlockTypeHasAComponent(t *testing.T) {
	cfg, _, diags := dsl.LoadFileWith("../dsl/testdata/valid/every_attribute.hcl", dsl.Options{Offline: true})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	reg := Registry()
	seen := map[string]bool{}
	for _, s := range cfg.Sources {
		seen["source "+s.Type] = true
		if reg.Sources[s.Type] == nil {
			t.Errorf("source %q has no component", s.Type)
		}
	}
	for _, s := range cfg.Sinks {
		seen["sink "+s.Type] = true
		if reg.Sinks[s.Type] == nil {
			t.Errorf("sink %q has no component", s.Type)
		}
	}
	if len(seen) != 8 {
		t.Errorf("the file declares %d source and sink types, want all 8 (3 sources, 5 sinks): %v", len(seen), seen)
	}
	if reg.Transform == nil {
		t.Error("no transform component")
	}
}
