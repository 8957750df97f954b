package file

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

func newSink(t *testing.T, path, format string) *Sink {
	t.Helper()
	s, err := New(engine.Build{}, &dsl.Sink{Type: "file", Name: "out", File: &dsl.FileSink{Path: path, Format: format}})
	if err != nil {
		t.Fatal(err)
	}
	return s.(*Sink)
}

func ev(i int) change.Event {
	return change.Event{Op: change.Insert, Schema: "public", Table: "users", After: change.RowOf(map[string]any{"id": int64(i)}),
		Position: change.Position{Source: "in", Offset: uint64(i)}, Boundary: true}
}

func cpAt(i int) change.Checkpoint {
	p := change.Position{Source: "in", Offset: uint64(i)}
	return change.Checkpoint{p.Stream(): p}
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestFlushCommitsAndOpenCutsTheUncommittedTail(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "out", "users.jsonl")
	s := newSink(t, path, "")
	if cp, err := s.Open(ctx, nil); err != nil || len(cp) != 0 {
		t.Fatalf("first Open = %v, %v", cp, err)
	}
	mark := change.Event{Op: change.Mark, Position: change.Position{Source: "in", Offset: 3}, Boundary: true}
	if err := s.Write(ctx, []change.Event{ev(1), ev(2), mark}); err != nil {
		t.Fatal(err)
	}
	saved, err := s.Flush(ctx, cpAt(3))
	if err != nil {
		t.Fatal(err)
	}
	// Written after the last saved checkpoint, then a crash.
	if err := s.Write(ctx, []change.Event{ev(4)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, cpAt(4)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if got := lines(t, path); len(got) != 3 {
		t.Fatalf("before reopen: %d lines", len(got))
	}

	s2 := newSink(t, path, "")
	cp, err := s2.Open(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if !cp.Covers(change.Position{Source: "in", Offset: 3}) || cp.Covers(change.Position{Source: "in", Offset: 4}) {
		t.Errorf("Open returned %v, want the saved checkpoint at 3", cp)
	}
	got := lines(t, path)
	want := []string{
		`{"op":"insert","schema":"public","table":"users","after":{"id":1},"position":"1.0"}`,
		`{"op":"insert","schema":"public","table":"users","after":{"id":2},"position":"2.0"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("after reopen:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Writing goes on after the cut.
	s2.Write(ctx, []change.Event{ev(4)})
	if _, err := s2.Flush(ctx, cpAt(4)); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, path); len(got) != 3 || !strings.Contains(got[2], `"id":4`) {
		t.Errorf("after writing on: %v", got)
	}
}

func TestNoSavedStateStartsTheFileEmpty(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.jsonl")
	os.WriteFile(path, []byte("left over from a run whose state was lost\n"), 0o644)
	s := newSink(t, path, "")
	if _, err := s.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("file kept %q", b)
	}
}

func TestShorterFileIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.jsonl")
	saved, _ := json.Marshal(saved{Version: 1, Checkpoint: cpAt(1), Length: 100})
	os.WriteFile(path, []byte("short\n"), 0o644)
	_, err := newSink(t, path, "").Open(context.Background(), saved)
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "changed outside sluice") {
		t.Fatalf("Open = %v", err)
	}
	if _, err := newSink(t, path, "").Open(context.Background(), []byte("garbage")); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Open with damaged bytes = %v", err)
	}
}

func TestDebeziumFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.jsonl")
	s := newSink(t, path, "debezium")
	s.Open(context.Background(), nil)
	s.Write(context.Background(), []change.Event{ev(7)})
	if _, err := s.Flush(context.Background(), cpAt(7)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	var env struct {
		Op     string         `json:"op"`
		After  map[string]any `json:"after"`
		Source map[string]any `json:"source"`
	}
	got := lines(t, path)
	if err := json.Unmarshal([]byte(got[0]), &env); err != nil {
		t.Fatal(err)
	}
	if env.Op != "c" || env.After["id"] != float64(7) || env.Source["connector"] != "postgresql" || env.Source["table"] != "users" {
		t.Errorf("envelope %s", got[0])
	}
}

func TestStdoutIsAtLeastOnceAndKeepsTheCheckpoint(t *testing.T) {
	var out bytes.Buffer
	s := newSink(t, "-", "")
	s.stdout = &out
	saved, _ := json.Marshal(saved{Version: 1, Checkpoint: cpAt(5)})
	cp, err := s.Open(context.Background(), saved)
	if err != nil || !cp.Covers(change.Position{Source: "in", Offset: 5}) {
		t.Fatalf("Open = %v, %v", cp, err)
	}
	s.Write(context.Background(), []change.Event{ev(6)})
	if _, err := s.Flush(context.Background(), cpAt(6)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"id":6`) {
		t.Errorf("stdout got %q", out.String())
	}
}

func TestUnknownFormat(t *testing.T) {
	_, err := New(engine.Build{}, &dsl.Sink{Name: "out", File: &dsl.FileSink{Path: "x", Format: "avro"}})
	if err == nil || !strings.Contains(err.Error(), `sink "out"`) || !strings.Contains(err.Error(), "avro") {
		t.Fatalf("New = %v", err)
	}
}
