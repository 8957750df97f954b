package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestHermeticMaskKey: the shipped pipelines' tests pass whatever
// SLUICE_MASK_KEY says, as in a CI job that has the real key among its
// secrets: tests hash with pipelinetest.MaskKey.
func TestHermeticMaskKey(t *testing.T) {
	files, err := filepath.Glob("../../pipelines/*.hcl")
	if err != nil || len(files) == 0 {
		t.Fatalf("pipelines/*.hcl: %v, %d files", err, len(files))
	}
	for _, key := range []string{"anything", "a-real-secret-from-ci"} {
		t.Setenv("SLUICE_MASK_KEY", key)
		code, stdout, stderr := runCLI(t, append([]string{"test"}, files...)...)
		if code != exitOK || !strings.Contains(stdout, " passed, 0 failed") {
			t.Fatalf("SLUICE_MASK_KEY=%s sluice test pipelines/*.hcl: exit %d\n%s%s", key, code, stdout, stderr)
		}
	}
}
