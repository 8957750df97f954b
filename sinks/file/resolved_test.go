package file

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/txmeta"
)

var commit0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func metaSink(t *testing.T, path string, resolved time.Duration, transactions bool) (*Sink, *time.Time) {
	t.Helper()
	s, err := New(engine.Build{}, &dsl.Sink{Type: "file", Name: "out", File: &dsl.FileSink{Path: path, Resolved: resolved, Transactions: transactions}})
	if err != nil {
		t.Fatal(err)
	}
	sk := s.(*Sink)
	now := commit0.Add(time.Hour)
	sk.now = func() time.Time { return now }
	return sk, &now
}

// pgTx is a PostgreSQL transaction as the source delivers it: rows of
// public.TABLE at the commit LSN, then the commit Mark.
func pgTx(xid, lsn uint64, at time.Time, tables ...string) []change.Event {
	tx := change.Tx{ID: xid, CommitTime: at}
	var out []change.Event
	for i, tb := range tables {
		out = append(out, change.Event{Op: change.Insert, Schema: "public", Table: tb, After: change.RowOf(map[string]any{"n": int64(i)}), Tx: tx,
			Position: change.Position{Source: "app", Offset: lsn, Index: uint32(i)}})
	}
	return append(out, change.Event{Op: change.Mark, Tx: tx, Boundary: true, Position: change.Position{Source: "app", Offset: lsn, Index: 1<<32 - 1}})
}

func resolvedOf(t *testing.T, lines []string) []time.Time {
	t.Helper()
	var out []time.Time
	for _, l := range lines {
		var r struct {
			Resolved *time.Time `json:"resolved"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %s: %v", l, err)
		}
		if r.Resolved != nil {
			out = append(out, *r.Resolved)
		}
	}
	return out
}

// TestResolvedLines: once per interval a Flush finds a resolved line
// due, also when only heartbeats (Marks) came, never lower than the last
// one; it is written at the first Flush after the engine saved the bytes
// that record it (Saved), and a reopen after a crash goes on from the
// saved T, held ones included.
func TestResolvedLines(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, now := metaSink(t, path, 10*time.Second, false)
	if _, err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	cp := change.Checkpoint{}
	// flush writes events and flushes; the engine saves the bytes at once
	// unless the process dies first (!save).
	flush := func(events []change.Event, save bool) []byte {
		t.Helper()
		if err := s.Write(ctx, events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			cp.Advance(e.Position)
		}
		saved, err := s.Flush(ctx, cp.Clone())
		if err != nil {
			t.Fatal(err)
		}
		if save {
			s.Saved(cp.Clone())
		}
		return saved
	}
	flush(pgTx(7, 100, commit0, "users", "users"), true)
	if r := resolvedOf(t, lines(t, path)); len(r) != 0 {
		t.Fatalf("resolved %v at the Flush that found it due, before its bytes were saved", r)
	}
	*now = now.Add(2 * time.Second) // same interval: no second resolved line
	flush(pgTx(8, 200, commit0.Add(time.Second), "users"), true)
	*now = now.Add(10 * time.Second)
	flush(pgTx(9, 300, commit0.Add(3*time.Second)), true) // a heartbeat
	*now = now.Add(time.Second)
	flush(nil, true)
	got := lines(t, path)
	want := []time.Time{commit0.Add(-txmeta.CommitSkew), commit0.Add(3*time.Second - txmeta.CommitSkew)}
	if r := resolvedOf(t, got); len(r) != 2 || !r[0].Equal(want[0]) || !r[1].Equal(want[1]) {
		t.Fatalf("resolved %v, want %v; file:\n%s", r, want, strings.Join(got, "\n"))
	}
	if !strings.HasPrefix(got[len(got)-1], `{"resolved":"2026-01-02T03:04:07Z","position":"300.4294967295"}`) || len(got) != 5 {
		t.Errorf("lines:\n%s", strings.Join(got, "\n"))
	}

	// A resolved line found due and saved as held, written at the next
	// Flush, then a crash before that Flush was saved: the reopened file
	// is cut back before the line, and no T at or below it comes after,
	// not even for a later commit time earlier than it (commit times are
	// not monotonic).
	*now = now.Add(10 * time.Second)
	saved := flush(pgTx(10, 400, commit0.Add(9*time.Second)), true)
	flush(pgTx(11, 450, commit0.Add(10*time.Second)), false)
	if r := resolvedOf(t, lines(t, path)); len(r) != 3 || !r[2].Equal(commit0.Add(8*time.Second)) {
		t.Fatalf("before the crash: resolved %v, want the held T written", r)
	}
	s.Close()
	s2, now2 := metaSink(t, path, 10*time.Second, false)
	*now2 = now.Add(10 * time.Second)
	s = s2
	opened, err := s.Open(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	cp = opened
	if r := resolvedOf(t, lines(t, path)); len(r) != 2 {
		t.Fatalf("after reopen: resolved %v, want the 2 saved", r)
	}
	flush(pgTx(11, 450, commit0.Add(2*time.Second)), true)
	flush(nil, true)
	if r := resolvedOf(t, lines(t, path)); len(r) != 2 {
		t.Fatalf("after reopen, a commit time earlier than the held T: resolved %v", r)
	}
	*now2 = now2.Add(10 * time.Second)
	flush(pgTx(12, 500, commit0.Add(20*time.Second)), true)
	flush(nil, true)
	r := resolvedOf(t, lines(t, path))
	if len(r) != 3 || !r[2].Equal(commit0.Add(20*time.Second-txmeta.CommitSkew)) {
		t.Fatalf("after reopen: resolved %v", r)
	}
	for i := 1; i < len(r); i++ {
		if !r[i].After(r[i-1]) {
			t.Errorf("resolved %v went backwards", r)
		}
	}
}

// TestTransactionLines: BEGIN, the events with their order, END with the
// counts, per transaction; heartbeats get none.
func TestTransactionLines(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "out.jsonl")
	s, _ := metaSink(t, path, 0, true)
	if _, err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	events := append(pgTx(7, 100, commit0, "users", "orders", "users"), pgTx(8, 200, commit0)...)
	if err := s.Write(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{{Source: "app"}: events[len(events)-1].Position}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"status":"begin","id":"7:100","tx":{"id":7,"commit_time":"2026-01-02T03:04:05Z"}}`,
		`{"op":"insert","schema":"public","table":"users","after":{"n":0},"tx":{"id":7,"commit_time":"2026-01-02T03:04:05Z"},"transaction":{"id":"7:100","total_order":1,"data_collection_order":1},"position":"100.0"}`,
		`{"op":"insert","schema":"public","table":"orders","after":{"n":1},"tx":{"id":7,"commit_time":"2026-01-02T03:04:05Z"},"transaction":{"id":"7:100","total_order":2,"data_collection_order":1},"position":"100.1"}`,
		`{"op":"insert","schema":"public","table":"users","after":{"n":2},"tx":{"id":7,"commit_time":"2026-01-02T03:04:05Z"},"transaction":{"id":"7:100","total_order":3,"data_collection_order":2},"position":"100.2"}`,
		`{"status":"end","id":"7:100","tx":{"id":7,"commit_time":"2026-01-02T03:04:05Z"},"event_count":3,"data_collections":[{"data_collection":"public.orders","event_count":1},{"data_collection":"public.users","event_count":2}],"position":"100.4294967295"}`,
	}
	if got := lines(t, path); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
