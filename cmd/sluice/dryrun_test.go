package main

import (
	"flag"
	"os"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// processingTime is Debezium's top-level ts_ms, the time an event was
// encoded: the one part of the output that is not a function of the input.
var processingTime = regexp.MustCompile(`"op":"([crudt])","ts_ms":\d+`)

// TestDryRunQuickstartGolden runs the quickstart's change log through its
// where, set, mask, exclude and rename steps and compares what each sink
// would receive — one sink in the native format, one in Debezium's — with
// the golden file. Regenerate with: go test ./cmd/sluice -run DryRun -update
func TestDryRunQuickstartGolden(t *testing.T) {
	code, stdout, stderr := runCLI(t, "dry-run", "../../pipelines/quickstart.hcl", "--input", "../../pipelines/testdata/changes.jsonl")
	if code != exitOK {
		t.Fatalf("dry-run: exit %d\n%s", code, stderr)
	}
	got := processingTime.ReplaceAllString(stdout, `"op":"$1","ts_ms":"<encoding time>"`)
	const golden = "testdata/dryrun-quickstart.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("dry-run output differs from %s (rerun with -update if the change is intended)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestDryRunWritesNothing: a dry-run opens no sink and no state file.
func TestDryRunWritesNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "in.jsonl", `{"op":"insert","schema":"public","table":"t","after":{"id":1}}`+"\n")
	p := writeFile(t, dir, "p.hcl", `pipeline "p" {}

source "file" "in" {
  path = "in.jsonl"
}

sink "file" "out" {
  from = source.in
  path = "out.jsonl"
}
`)
	t.Chdir(dir)
	code, stdout, stderr := runCLI(t, "dry-run", p, "--input", "in.jsonl")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := "== sink.out (file, native format): 1 event(s)\n"; stdout[:len(want)] != want {
		t.Errorf("output starts %q, want %q", stdout, want)
	}
	for _, f := range []string{"out.jsonl", ".sluice"} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("dry-run created %s", f)
		}
	}
}
