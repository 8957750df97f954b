package engine_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	filesink "github.com/sluice-cdc/sluice/sinks/file"
	filesource "github.com/sluice-cdc/sluice/sources/file"
	"github.com/sluice-cdc/sluice/transforms"
)

// These tests run real files through the real file source, transforms
// and file sink.

func registry() components.Kinds {
	return components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"file": filesource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"file": filesink.New},
		Transform: transforms.New,
	}
}

// pipeline loads the e2e pipeline over dir: in.jsonl → drop ids that are
// multiples of 7, drop password → out.jsonl.
func pipeline(t testing.TB, dir string, transform bool) *engine.Graph {
	t.Helper()
	from := "source.in"
	src := fmt.Sprintf(`
pipeline "e2e" { state = %q }
source "file" "in" { path = %q }
`, filepath.Join(dir, "state", "e2e.db"), filepath.Join(dir, "in.jsonl"))
	if transform {
		src += `
transform "clean" {
  from    = source.in
  where   = "row.id % 7 != 0"
  exclude = ["password"]
}
`
		from = "transform.clean"
	}
	src += fmt.Sprintf(`
sink "file" "out" {
  from = %s
  path = %q
}
`, from, filepath.Join(dir, "out.jsonl"))
	cfg, _, diags := dsl.Load("e2e.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	g, err := components.Compile(cfg, registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// appendInput appends insert events with ids [from, to) to dir/in.jsonl.
func appendInput(t testing.TB, dir string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "in.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := from; i < to; i++ {
		fmt.Fprintf(w, `{"op":"insert","schema":"public","table":"users","after":{"id":%d,"email":"user%d@example.com","password":"hunter%d","total":%d.50}}`+"\n", i, i, i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkOutput asserts out.jsonl holds exactly the kept ids of [0, n), in
// order, once each, without passwords.
func checkOutput(t *testing.T, dir string, n int) {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "out.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	next := 0
	line := 0
	for sc.Scan() {
		line++
		var ev struct {
			Op    string         `json:"op"`
			After map[string]any `json:"after"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("out.jsonl:%d: %v: %q", line, err, sc.Text())
		}
		for next%7 == 0 {
			next++
		}
		if id := int(ev.After["id"].(float64)); id != next {
			t.Fatalf("out.jsonl:%d: id %d, want %d (lost or duplicated)", line, id, next)
		}
		if _, ok := ev.After["password"]; ok {
			t.Fatalf("out.jsonl:%d: password reached the sink", line)
		}
		next++
	}
	for next%7 == 0 {
		next++
	}
	if next < n {
		t.Fatalf("out.jsonl ends before id %d (want ids up to %d)", next, n-1)
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestFileToFileExactlyOnceAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	appendInput(t, dir, 0, 3000)
	if err := pipeline(t, dir, true).Run(context.Background(), engine.RunOptions{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, dir, 3000)
	statePath := filepath.Join(dir, "state", "e2e.db")
	older, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}

	appendInput(t, dir, 3000, 5000)
	if err := pipeline(t, dir, true).Run(context.Background(), engine.RunOptions{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, dir, 5000)

	// The saves of the second run are lost (a crash between the sink's
	// fsync and the state file's save): the sink cuts its file back to
	// what the older state recorded and the events come again, once.
	if err := os.WriteFile(statePath, older, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := pipeline(t, dir, true).Run(context.Background(), engine.RunOptions{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, dir, 5000)
}

func TestFileToFileSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	const n = 100000
	appendInput(t, dir, 0, n)
	for kills := 0; kills < 2; kills++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildPipeline$")
		cmd.Env = append(os.Environ(), "SLUICE_E2E_CHILD="+dir)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once it has written something more.
		out := filepath.Join(dir, "out.jsonl")
		before := size(out)
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
	wait:
		for {
			select {
			case err := <-exited:
				t.Fatalf("child ended before it was killed: %v", err)
			case <-time.After(time.Millisecond):
				if size(out) > before+256<<10 {
					break wait
				}
			}
		}
		cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	if err := pipeline(t, dir, true).Run(context.Background(), engine.RunOptions{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	checkOutput(t, dir, n)
}

func size(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestChildPipeline is the process TestFileToFileSurvivesKill9 kills.
func TestChildPipeline(t *testing.T) {
	dir := os.Getenv("SLUICE_E2E_CHILD")
	if dir == "" {
		return // only meaningful as the child of the kill -9 test
	}
	// Small batches: many commits for the kill to fall between.
	if err := pipeline(t, dir, true).Run(context.Background(), engine.RunOptions{Logger: quiet(), BatchSize: 100}); err != nil {
		t.Fatal(err)
	}
}

func TestGracefulStopOfAFollowingFileSource(t *testing.T) {
	dir := t.TempDir()
	appendInput(t, dir, 0, 1000)
	src := fmt.Sprintf(`
pipeline "follow" { state = %q }
source "file" "in" {
  path   = %q
  follow = true
}
sink "file" "out" {
  from = source.in
  path = %q
}
`, filepath.Join(dir, "f.db"), filepath.Join(dir, "in.jsonl"), filepath.Join(dir, "out.jsonl"))
	cfg, _, diags := dsl.Load("f.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	g, err := components.Compile(cfg, registry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- g.Run(context.Background(), engine.RunOptions{Logger: quiet(), Stop: stop}) }()
	for lines(filepath.Join(dir, "out.jsonl")) < 1000 {
		time.Sleep(5 * time.Millisecond)
	}
	appendInput(t, dir, 1000, 1500)
	for lines(filepath.Join(dir, "out.jsonl")) < 1500 {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := lines(filepath.Join(dir, "out.jsonl")); n != 1500 {
		t.Fatalf("%d lines after stop, want 1500", n)
	}
}

func lines(path string) int {
	b, _ := os.ReadFile(path)
	return strings.Count(string(b), "\n")
}

// BenchmarkFileToFile runs 100,000 events through the whole pipeline per
// iteration and reports events/s.
func BenchmarkFileToFile(b *testing.B) {
	for _, transform := range []bool{false, true} {
		b.Run(fmt.Sprintf("transform=%v", transform), func(b *testing.B) {
			const n = 100000
			dir := b.TempDir()
			appendInput(b, dir, 0, n)
			in, _ := os.Stat(filepath.Join(dir, "in.jsonl"))
			b.SetBytes(in.Size())
			start := time.Now()
			for b.Loop() {
				os.RemoveAll(filepath.Join(dir, "state"))
				os.Remove(filepath.Join(dir, "out.jsonl"))
				if err := pipeline(b, dir, transform).Run(context.Background(), engine.RunOptions{Logger: quiet()}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
