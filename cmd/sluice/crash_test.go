package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeEvents writes n native insert events of public.items with ids 1..n.
func writeEvents(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(w, `{"op":"insert","schema":"public","table":"items","key":{"id":%d},"after":{"id":%d,"name":"item %d","secret":"s%d"}}`+"\n", i, i, i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// fileToFile is a pipeline from a JSON Lines file through a transform into
// another JSON Lines file.
func fileToFile(t *testing.T, dir, in, out string, follow bool) string {
	t.Helper()
	src := fmt.Sprintf(`pipeline "crash" {
  state = %q
}

source "file" "in" {
  path   = %q
  follow = %t
}

transform "clean" {
  from    = source.in
  set     = { label = "upper(after.name)" }
  exclude = ["secret"]
}

sink "file" "out" {
  from = transform.clean
  path = %q
}
`, filepath.Join(dir, "state.db"), in, follow, out)
	path := filepath.Join(dir, "crash.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineCount counts complete lines in a file (0 if it does not exist).
func lineCount(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return bytes.Count(b, []byte("\n"))
}

// checkExactlyOnce asserts that out holds events with ids 1..n, each once,
// in order, transformed.
func checkExactlyOnce(t *testing.T, out string, n int) {
	t.Helper()
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	want := 1
	for sc.Scan() {
		var e struct {
			Op    string         `json:"op"`
			After map[string]any `json:"after"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %d: %v: %s", want, err, sc.Text())
		}
		id := int(e.After["id"].(float64))
		if id != want {
			t.Fatalf("line %d holds id %d, want %d (a lost or duplicated event)", want, id, want)
		}
		if _, leaked := e.After["secret"]; leaked {
			t.Fatalf("line %d: excluded column secret reached the sink", want)
		}
		if e.After["label"] != fmt.Sprintf("ITEM %d", id) {
			t.Fatalf("line %d: label = %v", want, e.After["label"])
		}
		want++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if want-1 != n {
		t.Fatalf("output holds %d events, want %d", want-1, n)
	}
}

// TestCrashExactlyOnce kills `sluice run` with SIGKILL at five random
// moments while it copies 100,000 events file → transform → file, restarts
// it each time, and checks the output holds every event exactly once, in
// order.
func TestCrashExactlyOnce(t *testing.T) {
	const n = 100_000
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeEvents(t, in, n)
	pipeline := fileToFile(t, dir, in, out, false)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills := 0
	for kills < 5 {
		before := lineCount(out)
		// kill once the output has grown past a random point of what is left
		target := before + 1 + rng.IntN(max(1, (n-before)/3))
		cmd := exec.Command(sluiceBin, "run", pipeline, "--log-format", "json")
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		killed := false
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("sluice run: %v\n%s", err, logs.String())
				}
				break wait
			case <-time.After(time.Millisecond):
				if lineCount(out) >= target {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					killed = true
					break wait
				}
			}
		}
		if !killed {
			t.Fatalf("the pipeline finished before kill %d; output has %d lines", kills+1, lineCount(out))
		}
		kills++
		t.Logf("kill %d: SIGKILL with %d lines written (target %d)", kills, lineCount(out), target)
	}
	cmd := exec.Command(sluiceBin, "run", pipeline, "--log-format", "json")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final run: %v\n%s", err, b)
	}
	checkExactlyOnce(t, out, n)
}

// TestSigtermDrainsAndExitsZero stops a following pipeline with SIGTERM:
// it must exit 0 having committed everything it wrote, so a restart adds
// exactly the rest.
func TestSigtermDrainsAndExitsZero(t *testing.T) {
	const n = 20_000
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl")
	writeEvents(t, in, n)
	cmd := exec.Command(sluiceBin, "run", fileToFile(t, dir, in, out, true), "--log-format", "json")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for lineCount(out) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("after SIGTERM: %v (want exit 0)\n%s", err, logs.String())
	}
	if !bytes.Contains(logs.Bytes(), []byte("stopping")) {
		t.Errorf("no stopping message in the logs:\n%s", logs.String())
	}
	// everything written was committed: a non-following rerun adds the rest, no duplicates
	rerun := exec.Command(sluiceBin, "run", fileToFile(t, dir, in, out, false), "--log-format", "json")
	if b, err := rerun.CombinedOutput(); err != nil {
		t.Fatalf("rerun: %v\n%s", err, b)
	}
	checkExactlyOnce(t, out, n)
}
