package file

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

const (
	l1 = `{"op":"insert","schema":"public","table":"users","after":{"id":1}}` + "\n"
	l2 = `{"op":"update","schema":"public","table":"users","before":{"id":2,"n":"a"},"after":{"id":2,"n":"b"}}` + "\n"
	l3 = `{"op":"delete","schema":"public","table":"users","key":{"id":1}}` + "\n"
)

func write(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func open(t *testing.T, path string, follow bool, from change.Checkpoint) *Source {
	t.Helper()
	src, err := New(engine.Build{}, &dsl.Source{Type: "file", Name: "in", File: &dsl.FileSource{Path: path, Follow: follow}})
	if err != nil {
		t.Fatal(err)
	}
	s := src.(*Source)
	s.poll = time.Millisecond
	if err := s.Open(context.Background(), from, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func readAll(t *testing.T, s *Source) []change.Event {
	t.Helper()
	var all []change.Event
	for {
		b, err := s.Read(context.Background())
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
}

func TestReadsLinesWithOffsetsAsBoundaries(t *testing.T) {
	path := write(t, l1+"\n  \n"+l2+strings.TrimSuffix(l3, "\n"))
	events := readAll(t, open(t, path, false, nil))
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	wantOffsets := []uint64{0, uint64(len(l1) + 4), uint64(len(l1) + 4 + len(l2))}
	for i, e := range events {
		if e.Position != (change.Position{Source: "in", Offset: wantOffsets[i]}) || !e.Boundary {
			t.Errorf("event %d: position %+v boundary %v, want offset %d and a boundary", i, e.Position, e.Boundary, wantOffsets[i])
		}
	}
	if events[1].Op != change.Update || events[1].After.Get("n") != "b" || events[2].Key.Get("id") != int64(1) {
		t.Errorf("decoded %+v", events)
	}
}

func TestResumesAfterTheCommittedLine(t *testing.T) {
	path := write(t, l1+l2+l3)
	p := change.Position{Source: "in", Offset: uint64(len(l1))}
	events := readAll(t, open(t, path, false, change.Checkpoint{p.Stream(): p}))
	if len(events) != 1 || events[0].Op != change.Delete || events[0].Position.Offset != uint64(len(l1)+len(l2)) {
		t.Fatalf("resumed with %+v, want only the delete", events)
	}
	// Another source's stream in the checkpoint is not ours.
	q := change.Position{Source: "other", Offset: 999}
	if n := len(readAll(t, open(t, path, false, change.Checkpoint{q.Stream(): q}))); n != 3 {
		t.Errorf("read %d events, want all 3", n)
	}
}

func TestCheckpointNotAtALineIsRefused(t *testing.T) {
	path := write(t, l1+l2)
	src, _ := New(engine.Build{}, &dsl.Source{Name: "in", File: &dsl.FileSource{Path: path}})
	p := change.Position{Source: "in", Offset: 5}
	err := src.Open(context.Background(), change.Checkpoint{p.Stream(): p}, nil)
	if err == nil || !strings.Contains(err.Error(), "byte 5") || !engine.IsPermanent(err) {
		t.Fatalf("Open = %v", err)
	}
}

func TestBadLineNamesFileAndLine(t *testing.T) {
	path := write(t, l1+l2+`{"op":"insert","table":"users","after":[1]}`+"\n")
	s := open(t, path, false, nil)
	_, err := s.Read(context.Background())
	want := path + `:3: field "after": want an object of columns, got an array`
	if err == nil || err.Error() != want || !engine.IsPermanent(err) {
		t.Fatalf("error = %v\nwant %s", err, want)
	}
}

func TestMissingFile(t *testing.T) {
	src, _ := New(engine.Build{}, &dsl.Source{Name: "in", File: &dsl.FileSource{Path: filepath.Join(t.TempDir(), "nope.jsonl")}})
	if err := src.Open(context.Background(), nil, nil); err == nil || !strings.Contains(err.Error(), "nope.jsonl") {
		t.Fatalf("Open = %v", err)
	}
}

func TestFollowTailsAGrowingFile(t *testing.T) {
	path := write(t, l1)
	s := open(t, path, true, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if b, err := s.Read(ctx); err != nil || len(b) != 1 {
		t.Fatalf("first read: %v %v", b, err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Half a line first: it must not be read until it is complete.
	got := make(chan []change.Event, 1)
	go func() {
		b, err := s.Read(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- b
	}()
	f.WriteString(l2[:10])
	select {
	case b := <-got:
		t.Fatalf("read half a line: %+v", b)
	case <-time.After(50 * time.Millisecond):
	}
	f.WriteString(l2[10:])
	b := <-got
	if len(b) != 1 || b[0].Op != change.Update || b[0].Position.Offset != uint64(len(l1)) {
		t.Fatalf("tail read %+v", b)
	}
	// Stopping a waiting Read.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := s.Read(ctx2); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled read: %v", err)
	}
}

func TestBatchesAreBounded(t *testing.T) {
	path := write(t, strings.Repeat(l1, BatchSize+5))
	s := open(t, path, false, nil)
	b, err := s.Read(context.Background())
	if err != nil || len(b) != BatchSize {
		t.Fatalf("first batch %d events, %v", len(b), err)
	}
	if b, _ := s.Read(context.Background()); len(b) != 5 {
		t.Fatalf("second batch %d events", len(b))
	}
}

func TestLongLines(t *testing.T) {
	long := `{"op":"insert","table":"t","after":{"x":"` + strings.Repeat("a", 200<<10) + `"}}` + "\n"
	events := readAll(t, open(t, write(t, long+l1), false, nil))
	if len(events) != 2 || len(events[0].After.Get("x").(string)) != 200<<10 || events[1].Position.Offset != uint64(len(long)) {
		t.Fatalf("long line misread: %d events", len(events))
	}
}
