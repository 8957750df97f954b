package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sluice-cdc/sluice/internal/peakrss"
)

// TestBoundedMemory runs 1,000,000 events through quickstart-like
// transforms (where, set, mask, exclude, rename) from a file into a file
// and asserts the process's peak resident set stayed under 100 MB: queues
// are bounded and nothing holds the stream in memory.
func TestBoundedMemory(t *testing.T) {
	const n = 1_000_000
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeEvents(t, in, n)
	src := `pipeline "memory" {
  state    = "` + filepath.Join(dir, "state.db") + `"
  mask_key = "test-key"
}

source "file" "in" {
  path = "` + in + `"
}

transform "clean" {
  from    = source.in
  where   = "op == 'delete' || row.id % 10 != 0"
  set     = { upper_name = "upper(after.name)" }
  mask    = { name = "hash" }
  exclude = ["secret"]
  rename  = { upper_name = "label" }
}

sink "file" "out" {
  from = transform.clean
  path = "` + out + `"
}
`
	pipeline := filepath.Join(dir, "memory.hcl")
	if err := os.WriteFile(pipeline, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sluiceBin, "run", pipeline, "--log-format", "json")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rss := peakrss.Start(cmd.Process.Pid)
	err := cmd.Wait()
	peakMB := peakrss.MB(rss.Stop())
	if err != nil {
		t.Fatalf("sluice run: %v\n%s", err, logs.String())
	}
	if got, want := lineCount(out), n-n/10; got != want {
		t.Fatalf("output has %d events, want %d", got, want)
	}
	// Not the child's ru_maxrss: that includes this test binary's own
	// peak (see internal/peakrss).
	if peakMB == 0 {
		t.Fatal("no VmHWM sample of the running pipeline")
	}
	t.Logf("peak RSS for %d events: %.1f MB", n, peakMB)
	if peakMB >= 100 {
		t.Errorf("peak RSS %.1f MB, want < 100 MB", peakMB)
	}
}
