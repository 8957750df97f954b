package state

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/eventtest"
)

func open(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nested", "dir", "p.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func cp(source string, off uint64) change.Checkpoint {
	p := change.Position{Source: source, Offset: off}
	return change.Checkpoint{p.Stream(): p}
}

func TestSecondOpenFailsFastWhileLocked(t *testing.T) {
	_, path := open(t)
	start := time.Now()
	_, err := Open(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	want := "pipeline is running: " + path + " is locked by another sluice"
	if !strings.HasPrefix(err.Error(), want) {
		t.Errorf("message %q, want it to start with %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v", d)
	}
}

func TestSaveAndReadBack(t *testing.T) {
	s, path := open(t)
	rec, err := s.Sink("out")
	if err != nil || len(rec.Checkpoint) != 0 || rec.Saved != nil {
		t.Fatalf("fresh sink record = %+v, %v", rec, err)
	}
	err = s.Save(Save{
		Sinks: map[string]SinkRecord{"out": {Checkpoint: cp("app", 42), Saved: []byte("opaque")}},
		Acks:  map[string]change.Checkpoint{"app": cp("app", 40)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	rec, err = s2.Sink("out")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec.Checkpoint, cp("app", 42)) || string(rec.Saved) != "opaque" || rec.Time.IsZero() {
		t.Errorf("sink record after reopen = %+v", rec)
	}
	acked, err := s2.Acked("app")
	if err != nil || !reflect.DeepEqual(acked, cp("app", 40)) {
		t.Errorf("acked = %v, %v", acked, err)
	}
}

func TestCornersAreSeparate(t *testing.T) {
	s, _ := open(t)
	a, b := s.Corner("source", "app"), s.Corner("sink", "app")
	if v, err := a.Get("k"); v != nil || err != nil {
		t.Fatalf("absent key = %q, %v", v, err)
	}
	if err := a.Put("k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := b.Put("k", []byte("2")); err != nil {
		t.Fatal(err)
	}
	va, _ := a.Get("k")
	vb, _ := b.Get("k")
	if string(va) != "1" || string(vb) != "2" {
		t.Errorf("corners mixed: %q %q", va, vb)
	}
}

func TestDeadLetters(t *testing.T) {
	s, _ := open(t)
	ev := change.Event{
		Op: change.Update, Schema: "public", Table: "users",
		Key:    change.RowOf(map[string]any{"id": int64(7)}),
		Before: change.RowOf(map[string]any{"id": int64(7), "n": change.Numeric("1.10")}),
		After: change.RowOf(map[string]any{"id": int64(7), "n": change.Numeric("2.20"), "f": 1.5, "b": []byte{1, 2}, "t": time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
			"j": change.JSON(`{"a":1}`), "s": "x", "nil": nil, "ok": true, "arr": []any{int64(1), "a"}, "obj": map[string]any{"k": 2.5}}),
		Changed:  []string{"n"},
		Tx:       change.Tx{ID: 9, CommitTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Position: change.Position{Source: "app", Partition: "p", Offset: 100, Index: 3},
		Boundary: true,
		Relation: &change.Relation{Schema: "public", Table: "users", Columns: []change.Column{{Name: "id", Type: "integer", Key: true, NotNull: true}}, Version: 2},
	}
	id, added, err := s.AddLetter(Letter{Stage: "sink.out", Err: "value too long", Event: ev})
	if err != nil || !added {
		t.Fatalf("AddLetter: %v %v", added, err)
	}
	again, added, err := s.AddLetter(Letter{Stage: "sink.out", Err: "value too long", Event: ev})
	if err != nil || added || again != id {
		t.Fatalf("same letter again: id %d (first %d) added %v err %v", again, id, added, err)
	}
	other := ev
	other.Position.Offset = 200
	if _, _, err := s.AddLetter(Letter{Stage: "transform.clean", Err: "boom", Event: other}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountLetters(); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	got, err := s.Letters("sink.out", 0, 10)
	if err != nil || len(got) != 1 {
		t.Fatalf("letters of sink.out = %v, %v", got, err)
	}
	if g, w := eventtest.Plain(got[0].Event), eventtest.Plain(ev); !reflect.DeepEqual(g, w) {
		t.Errorf("event did not survive the queue:\n got %#v\nwant %#v", g, w)
	}
	if got[0].Err != "value too long" || got[0].Stage != "sink.out" || got[0].Time.IsZero() {
		t.Errorf("letter = %+v", got[0])
	}
	// A kind selects every stage of that kind, not a prefix of a name.
	for stage, want := range map[string]int{"transform": 1, "transform.clean": 1, "sink": 1, "transform.clea": 0, "sink.ou": 0} {
		if got, _ := s.Letters(stage, 0, 10); len(got) != want {
			t.Errorf("letters of stage %q: %d, want %d", stage, len(got), want)
		}
	}
	all, _ := s.Letters("", 0, 10)
	if len(all) != 2 || all[0].ID >= all[1].ID {
		t.Fatalf("all letters = %v", all)
	}
	page, _ := s.Letters("", all[0].ID, 10)
	if len(page) != 1 || page[0].ID != all[1].ID {
		t.Errorf("page after first = %v", page)
	}
	if err := s.DeleteLetters(id); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CountLetters(); n != 1 {
		t.Errorf("count after delete = %d", n)
	}
	// Deleted letters can be added again (a replay that failed anew).
	if _, added, _ := s.AddLetter(Letter{Stage: "sink.out", Event: ev}); !added {
		t.Error("letter deleted from the queue was not re-added")
	}
	n, err := s.Purge("")
	if err != nil || n != 2 {
		t.Errorf("purge = %d, %v", n, err)
	}
	if n, _ := s.CountLetters(); n != 0 {
		t.Errorf("count after purge = %d", n)
	}
}

func TestAddLettersInOneUpdate(t *testing.T) {
	s, _ := open(t)
	ev := func(off uint64) change.Event {
		return change.Event{Op: change.Insert, Table: "t", Position: change.Position{Source: "a", Offset: off}}
	}
	if _, _, err := s.AddLetter(Letter{Stage: "transform", Event: ev(1)}); err != nil {
		t.Fatal(err)
	}
	added, err := s.AddLetters([]Letter{{Stage: "transform", Event: ev(1)}, {Stage: "transform", Event: ev(2)}, {Stage: "sink.x", Event: ev(1)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 2 || added[0].Event.Position.Offset != 2 || added[1].Stage != "sink.x" || added[0].ID == 0 || added[0].ID == added[1].ID {
		t.Fatalf("added = %+v", added)
	}
	if n, _ := s.CountLetters(); n != 3 {
		t.Errorf("count = %d, want 3", n)
	}
}

func TestInspect(t *testing.T) {
	if _, err := Inspect(filepath.Join(t.TempDir(), "none.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	s, path := open(t)
	if err := s.Save(Save{Sinks: map[string]SinkRecord{"out": {Checkpoint: cp("app", 5)}}, Acks: map[string]change.Checkpoint{"app": cp("app", 5)}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AddLetter(Letter{Stage: "transform", Event: change.Event{Op: change.Insert, Table: "t", Position: change.Position{Source: "app", Offset: 1}}}); err != nil {
		t.Fatal(err)
	}
	// Locked: the status file written by the running store answers
	// (written here at once rather than waiting for its ticker).
	s.writeStatus()
	st, err := Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Running || st.DeadLetters != 1 || !reflect.DeepEqual(st.Sinks["out"].Checkpoint, cp("app", 5)) || !reflect.DeepEqual(st.Sources["app"].Acked, cp("app", 5)) {
		t.Errorf("status while running = %+v", st)
	}
	s.Close()
	st, err = Inspect(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Running || st.DeadLetters != 1 || !reflect.DeepEqual(st.Sinks["out"].Checkpoint, cp("app", 5)) {
		t.Errorf("status when stopped = %+v", st)
	}
}

func TestNewerFileIsRefused(t *testing.T) {
	s, path := open(t)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyVersion, []byte("99")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "upgrade sluice") {
		t.Fatalf("open of a newer file: %v", err)
	}
}

func FuzzDecodeRecords(f *testing.F) {
	sink, _ := encodeRecord(sinkRecord{Checkpoint: cp("app", 3), Saved: []byte("x")})
	f.Add(sink)
	l, _ := encodeRecord(letterRecord{Stage: "s", Event: toEventRecord(&change.Event{Op: change.Insert, Table: "t", After: change.RowOf(map[string]any{"a": int64(1), "b": []any{"x"}})})})
	f.Add(l)
	f.Add([]byte{2, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r sinkRecord
		_ = decodeRecord(b, &r)
		var src sourceRecord
		_ = decodeRecord(b, &src)
		if _, err := decodeLetter(letterKey(1), b); err == nil {
			return
		}
	})
}

// TestRowRecordRoundTrip checks that a stored row reads back as written:
// no row stays no row, a row without columns stays a row, and a column
// the source did not send stays absent (not NULL).
func TestRowRecordRoundTrip(t *testing.T) {
	unsent := change.MakeRow(change.NewColumns("id", "big", "n"), []any{int64(1), change.Unsent, nil})
	for _, tc := range []struct {
		name string
		row  change.Row
		want map[string]any
	}{
		{"zero", change.Row{}, nil},
		{"empty", change.NewRow(), map[string]any{}},
		{"empty map", change.RowOf(map[string]any{}), map[string]any{}},
		{"unsent", unsent, map[string]any{"id": int64(1), "n": nil}},
	} {
		e := change.Event{Op: change.Update, Table: "t", Key: tc.row, Before: tc.row, After: tc.row}
		b, err := encodeRecord(toEventRecord(&e))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var rec eventRecord
		if err := decodeRecord(b, &rec); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got, err := rec.event()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for what, r := range map[string]change.Row{"key": got.Key, "before": got.Before, "after": got.After} {
			if r.IsZero() != tc.row.IsZero() || !reflect.DeepEqual(r.Map(), tc.want) || !r.Equal(tc.row) {
				t.Errorf("%s: %s read back as %v (zero %v), want %v (zero %v)", tc.name, what, r.Map(), r.IsZero(), tc.want, tc.row.IsZero())
			}
			if _, ok := r.Lookup("big"); ok {
				t.Errorf("%s: %s has the unsent column", tc.name, what)
			}
		}
	}
}
