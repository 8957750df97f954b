package txmeta

import (
	"reflect"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// pgTx is one PostgreSQL transaction as the source delivers it: its rows
// (tables in order) at the commit LSN, then its commit Mark.
func pgTx(xid uint64, lsn uint64, at time.Time, tables ...string) []change.Event {
	tx := change.Tx{ID: xid, CommitTime: at}
	var out []change.Event
	for i, tb := range tables {
		out = append(out, change.Event{Op: change.Insert, Schema: "public", Table: tb, Tx: tx,
			Position: change.Position{Source: "app", Offset: lsn, Index: uint32(i)}})
	}
	return append(out, change.Event{Op: change.Mark, Tx: tx, Boundary: true, Position: change.Position{Source: "app", Offset: lsn, Index: 1<<32 - 1}})
}

func TestTransactionsNumberEachTransaction(t *testing.T) {
	tr := NewTransactions()
	var got []string
	write := func(events []change.Event) {
		for i := range events {
			s := tr.Next(&events[i])
			for _, m := range []*format.Transaction{s.Prev, s.Begin} {
				if m != nil {
					got = append(got, string(format.Native{}.AppendTransaction(nil, m)))
				}
			}
			if s.Order != nil {
				got = append(got, events[i].Table+" "+s.Order.ID+" "+string(rune('0'+s.Order.Total))+"/"+string(rune('0'+s.Order.Table)))
			}
			if s.End != nil {
				got = append(got, string(format.Native{}.AppendTransaction(nil, s.End)))
			}
		}
	}
	write(pgTx(7, 100, t0, "users", "orders", "users"))
	write(pgTx(0, 200, t0)) // a heartbeat: no data, no metadata
	snap := change.Event{Op: change.Snapshot, Table: "users", Boundary: true, Position: change.Position{Source: "app", Partition: "snapshot", Offset: 1}}
	write([]change.Event{snap})
	write(pgTx(8, 300, t0.Add(time.Second), "orders"))
	want := []string{
		`{"status":"begin","id":"7:100","tx":{"id":7,"commit_time":"2026-01-02T03:04:05Z"}}`,
		"users 7:100 1/1", "orders 7:100 2/1", "users 7:100 3/2",
		`{"status":"end","id":"7:100","tx":{"id":7,"commit_time":"2026-01-02T03:04:05Z"},"event_count":3,"data_collections":[{"data_collection":"public.orders","event_count":1},{"data_collection":"public.users","event_count":2}],"position":"100.4294967295"}`,
		`{"status":"begin","id":"8:300","tx":{"id":8,"commit_time":"2026-01-02T03:04:06Z"}}`,
		"orders 8:300 1/1",
		`{"status":"end","id":"8:300","tx":{"id":8,"commit_time":"2026-01-02T03:04:06Z"},"event_count":1,"data_collections":[{"data_collection":"public.orders","event_count":1}],"position":"300.4294967295"}`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}

	// A transaction cut off by a reopen starts over after Reset.
	tr.Reset()
	events := pgTx(9, 400, t0, "users", "users")
	tr.Next(&events[0])
	tr.Reset()
	if s := tr.Next(&events[0]); s.Begin == nil || s.Order.Total != 1 {
		t.Errorf("after Reset: %+v", s)
	}
	// A new transaction on the stream before the old one's boundary ends
	// the old one first.
	next := pgTx(10, 500, t0, "users")
	if s := tr.Next(&next[0]); s.Prev == nil || s.Prev.ID != "9:400" || s.Prev.Events != 1 || s.Begin == nil || s.Begin.ID != "10:500" {
		t.Errorf("a transaction without its boundary: %+v", s)
	}
}

func TestResolverFollowsTheSlowestStream(t *testing.T) {
	r := NewResolver(time.Second)
	a := pgTx(1, 100, t0.Add(10*time.Second))
	b := change.Event{Op: change.Mark, Boundary: true, Tx: change.Tx{ID: 2, CommitTime: t0.Add(5 * time.Second)}, Position: change.Position{Source: "other", Offset: 7}}
	snap := change.Event{Op: change.Snapshot, Table: "users", Boundary: true, Position: change.Position{Source: "app", Partition: "s", Offset: 1}}
	cp := change.Checkpoint{}
	for _, e := range append(a, b, snap) {
		r.Note(&e)
		cp.Advance(e.Position)
	}
	now := t0.Add(time.Minute)
	res, ok := r.Due(cp, now)
	if !ok || !res.Time.Equal(t0.Add(5*time.Second-CommitSkew)) || res.Position != b.Position {
		t.Fatalf("Due = %v, %v; want the other stream's commit time less CommitSkew, at its position", res, ok)
	}
	r.Emitted(res, now)
	// Once per interval, and only forwards.
	later := change.Event{Op: change.Mark, Boundary: true, Tx: change.Tx{ID: 3, CommitTime: t0.Add(20 * time.Second)}, Position: change.Position{Source: "other", Offset: 8}}
	r.Note(&later)
	cp.Advance(later.Position)
	if _, ok := r.Due(cp, now.Add(100*time.Millisecond)); ok {
		t.Error("due twice in one interval")
	}
	// A heartbeat as frequent as the interval, a little early, still
	// brings one.
	res, ok = r.Due(cp, now.Add(950*time.Millisecond))
	if !ok || !res.Time.Equal(t0.Add(10*time.Second-CommitSkew)) {
		t.Fatalf("next interval: Due = %v, %v; want app's commit time now that it is the lowest", res, ok)
	}
	r.Emitted(res, now.Add(time.Second))
	// A commit time earlier than one already seen (not monotonic in
	// commit order) does not move T back.
	early := pgTx(4, 101, t0)
	for _, e := range early {
		r.Note(&e)
		cp.Advance(e.Position)
	}
	if res, ok := r.Due(cp, now.Add(5*time.Second)); ok {
		t.Errorf("Due = %v after an earlier commit time; want nothing (no later T)", res)
	}

	// The state brings it all back, so T never goes backwards.
	saved := r.State()
	r2 := NewResolver(time.Second)
	if err := r2.Restore(saved); err != nil {
		t.Fatal(err)
	}
	if !r2.Last().Equal(r.Last()) || !reflect.DeepEqual(r2.streams, r.streams) {
		t.Errorf("restored %v %v, want %v %v", r2.Last(), r2.streams, r.Last(), r.streams)
	}
	if _, ok := r2.Due(cp, now.Add(10*time.Second)); ok {
		t.Error("restored resolver emits a T it already emitted")
	}
	// A stream the checkpoint no longer has stops holding T back.
	delete(cp, change.Stream{Source: "app"})
	if res, ok := r2.Due(cp, now.Add(10*time.Second)); !ok || !res.Time.Equal(t0.Add(20*time.Second-CommitSkew)) {
		t.Errorf("without app: Due = %v, %v", res, ok)
	}
	if err := r2.Restore(nil); err != nil || !r2.Last().IsZero() || len(r2.streams) != 0 {
		t.Errorf("Restore(nil): %v %v %v", err, r2.Last(), r2.streams)
	}
	if err := r2.Restore([]byte(`{"resolved":1}`)); err == nil {
		t.Error("Restore accepted a damaged state")
	}
}

func TestResolverWithoutCommitTimes(t *testing.T) {
	r := NewResolver(time.Second)
	e := change.Event{Op: change.Insert, Table: "t", Boundary: true, Position: change.Position{Source: "file", Offset: 1}}
	r.Note(&e)
	if _, ok := r.Due(change.Checkpoint{e.Position.Stream(): e.Position}, t0); ok {
		t.Error("due without any commit time")
	}
}
