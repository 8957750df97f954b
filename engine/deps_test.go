package engine_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEngineImportsNoFileLanguage keeps the engine free of the pipeline
// language: it runs a graph of components (engine.Spec), and package
// components compiles pipeline files into one. Neither the engine nor
// any package it imports may import dsl.
func TestEngineImportsNoFileLanguage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/sluice-cdc/sluice/engine/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "github.com/sluice-cdc/sluice/dsl" || strings.HasPrefix(pkg, "github.com/sluice-cdc/sluice/dsl/") {
			t.Errorf("the engine depends on %s: take what it needs from engine.Spec instead", pkg)
		}
	}
}
