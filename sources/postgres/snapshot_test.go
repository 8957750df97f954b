package postgres

import (
	"context"
	"fmt"
	"math/rand"
	"reflect"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// writer performs inserts, updates, deletes and primary-key updates on
// everything until stopped, each in its own transaction, and finally
// commits a marker row so the reader knows when it has caught up.
func writer(t *testing.T, dsn string, stop <-chan struct{}, startID int) (n int) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer conn.Close(ctx)
	rnd := rand.New(rand.NewSource(1))
	next := startID
	for {
		select {
		case <-stop:
			return n
		default:
		}
		id := rnd.Intn(startID) + 1
		var sql string
		switch n % 4 {
		case 0:
			next++
			sql = "INSERT INTO everything VALUES " + fmt.Sprintf(everythingRow, next)
		case 1:
			sql = fmt.Sprintf("UPDATE everything SET t = md5(random()::text), n = n + 1, arr = arr || %d, tz = now() WHERE id = %d", n, id)
		case 2:
			sql = fmt.Sprintf("DELETE FROM everything WHERE id = %d", id)
		case 3:
			next++
			sql = fmt.Sprintf("UPDATE everything SET id = %d WHERE id = %d", next, id)
		}
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Error(err)
			return n
		}
		n++
	}
}

// TestSnapshotWithConcurrentWriterReproducesTable is acceptance 1: a
// snapshot of 100,000 rows while a writer inserts, updates, deletes and
// changes keys; replaying every event onto an empty map gives exactly
// the table.
func TestSnapshotWithConcurrentWriterReproducesTable(t *testing.T) {
	const rowsN = 100_000
	d := newDB(t)
	d.exec(everythingDDL)
	d.exec(`INSERT INTO everything VALUES ` + fmt.Sprintf(everythingRow, 0))
	d.exec(`INSERT INTO everything SELECT g, s, i, n + g, r, d, t || g, v, c, b, dt + g, tm, ts, tz, iv, u, j, jb, by, arr || g, tarr, grid, m, p, nul
		FROM everything e, generate_series(1, ` + fmt.Sprint(rowsN) + `) g WHERE e.id = 0`)
	d.exec(`DELETE FROM everything WHERE id = 0`)
	d.exec(`CREATE TABLE done (id int PRIMARY KEY)`)
	d.exec(`ANALYZE everything`)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	wg.Add(1)
	go func() { defer wg.Done(); writes = writer(t, d.dsn, stop, rowsN) }()

	st := newState()
	p := d.open(dsl.PostgresSource{Tables: []string{"public.everything", "public.done"}}, nil, st)
	target := map[string]change.Row{}
	snapshotRows := 0
	last := change.Checkpoint{} // per stream: the readers' and the stream's
	read := func(done func([]change.Event) bool) {
		ev := readUntil(t, p, done)
		for _, e := range ev {
			if last.Covers(e.Position) {
				t.Fatalf("position %v %v not after %v", e.Position.Stream(), e.Position, last[e.Position.Stream()])
			}
			last.Advance(e.Position)
			if e.Op == change.Snapshot {
				snapshotRows++
			}
		}
		replay(target, rows(ev))
	}
	read(countRows(rowsN)) // at least the snapshot
	t.Logf("snapshot read")
	close(stop)
	wg.Wait()
	d.exec(`INSERT INTO done VALUES (1)`)
	read(func(ev []change.Event) bool {
		for _, e := range ev {
			if e.Table == "done" {
				return true
			}
		}
		return false
	})
	delete(target, "done:"+keyString(change.RowOf(map[string]any{"id": int64(1)})))

	t.Logf("writes %d, snapshot rows %d", writes, snapshotRows)
	if snapshotRows < rowsN-writes || snapshotRows > rowsN+writes {
		t.Errorf("snapshot delivered %d rows, want %d", snapshotRows, rowsN)
	}
	if writes < 100 {
		t.Errorf("the writer only managed %d writes during the snapshot; the test proves little", writes)
	}
	want := d.tableRows("public.everything", "id")
	if len(target) != len(want) {
		t.Fatalf("replayed %d rows, table has %d (after %d concurrent writes)", len(target), len(want), writes)
	}
	diffs := 0
	for k, w := range want {
		g := target[k]
		if !rowsEqual(g, w) && diffs < 5 {
			diffs++
			t.Errorf("row %s:\n got %v\nwant %v", k, g, w)
		}
	}
	prog, ok, err := ReadProgress(st)
	if err != nil || !ok || !prog.Emitted || prog.Tables[0].RowsDone != int64(snapshotRows) || prog.Tables[0].RowsEstimated == 0 {
		t.Errorf("progress %+v ok=%v err=%v", prog, ok, err)
	}
}

func rowsEqual(a, b change.Row) bool {
	if a.Len() != b.Len() {
		return false
	}
	for k, v := range b.All() {
		if !equalValue(a.Get(k), v) && !reflect.DeepEqual(a.Get(k), v) {
			return false
		}
	}
	return true
}

// TestRestartFromCheckpointHasNoGapNoDuplicate reads, acknowledges a
// middle position, closes, reopens from it: the continuation starts right
// after it, in the snapshot and in the stream.
func TestRestartFromCheckpointHasNoGapNoDuplicate(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE k (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO k SELECT g, 'v' || g FROM generate_series(1, 10000) g`)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.k"}}

	// Snapshot: commit row 5000 (in the second chunk), then restart.
	p := d.open(cfg, nil, st)
	first := readUntil(t, p, countRows(8000))
	mid := first[4999]
	ackAll(t, p, mid)
	p.Close()
	// Changes meanwhile: the resumed snapshot and the stream fix them up.
	d.exec(`UPDATE k SET v = 'changed' WHERE id IN (10, 9000)`)
	d.exec(`DELETE FROM k WHERE id = 9001`)
	d.exec(`INSERT INTO k VALUES (20000, 'new')`)

	cp := change.Checkpoint{mid.Position.Stream(): mid.Position}
	p = d.open(cfg, cp, st)
	rest := readUntil(t, p, untilMarks(3))
	if rest[0].Op != change.Snapshot || rest[0].Key.Get("id") != int64(5001) || rest[0].Position.Compare(mid.Position) <= 0 {
		t.Fatalf("snapshot resumed at %v %v, want id 5001 after %v", rest[0].Key, rest[0].Position, mid.Position)
	}
	target := map[string]change.Row{}
	replay(target, rows(first[:5000]))
	replay(target, rows(rest))
	want := d.tableRows("public.k", "id")
	if len(target) != len(want) {
		t.Fatalf("after resumed snapshot: %d rows, table has %d", len(target), len(want))
	}
	for k, w := range want {
		if !rowsEqual(target[k], w) {
			t.Fatalf("row %s: got %v want %v", k, target[k], w)
		}
	}
	seen := map[uint32]bool{}
	for _, e := range rest {
		if e.Op == change.Snapshot {
			if seen[e.Position.Index] || e.Position.Compare(mid.Position) <= 0 {
				t.Fatalf("snapshot row %v delivered twice", e.Position)
			}
			seen[e.Position.Index] = true
		}
	}

	// Stream: three single-row transactions; commit the second, restart.
	d.exec(`INSERT INTO k VALUES (30001, 'a')`)
	d.exec(`INSERT INTO k VALUES (30002, 'b')`)
	d.exec(`INSERT INTO k VALUES (30003, 'c')`)
	ev := readUntil(t, p, untilMarks(3))
	var marks []change.Event
	for _, e := range ev {
		if e.Op == change.Mark {
			marks = append(marks, e)
		}
	}
	ackAll(t, p, marks[1])
	p.Close()
	cp = change.Checkpoint{marks[1].Position.Stream(): marks[1].Position}
	p = d.open(cfg, cp, st)
	again := rows(readUntil(t, p, countRows(1)))
	if again[0].Key.Get("id") != int64(30003) || again[0].Position.Compare(marks[1].Position) <= 0 {
		t.Fatalf("stream resumed with %v at %v, want id 30003 after %v", again[0].Key, again[0].Position, marks[1].Position)
	}
}

// TestCommittedSnapshotIsNotReadAgain: a pipeline stopped after its
// sinks committed the last snapshot row streams on restart. Resuming the
// read instead would take the rows inserted since (a new transaction
// sees them) as snapshot rows: on a big table, minutes of reading again.
func TestCommittedSnapshotIsNotReadAgain(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE k (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO k SELECT generate_series(1, 10000)`)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.k"}}
	p := d.open(cfg, nil, st)
	snap := readUntil(t, p, countRows(10000))
	last := snap[len(snap)-1]
	d.exec(`INSERT INTO k VALUES (10001)`)
	readUntil(t, p, untilMarks(1)) // the read ends, then the stream
	ackAll(t, p, last)
	p.Close()
	d.exec(`INSERT INTO k VALUES (20001)`)

	p = d.open(cfg, change.Checkpoint{last.Position.Stream(): last.Position}, st)
	got := rows(readUntil(t, p, untilMarks(2)))
	if len(got) != 2 || got[0].Op != change.Insert || got[0].Key.Get("id") != int64(10001) || got[1].Key.Get("id") != int64(20001) {
		for _, e := range got[:min(len(got), 3)] {
			t.Logf("%s %v at %v", e.Op, e.Key, e.Position)
		}
		t.Fatalf("after the committed snapshot: %d row events, want the 2 streamed inserts", len(got))
	}
}

// TestTableAddedLaterIsSnapshotted: a table added to `tables` after the
// snapshot is copied on the next start, before the stream resumes, and
// only that table; a restart in the middle of that copy resumes it. The
// copy's rows are in their own partition (AddedPartition), which no sink
// has committed anything of whatever its position in the stream; a later
// copy (c) sorts after an earlier one (b) there.
func TestTableAddedLaterIsSnapshotted(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); CREATE TABLE c (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO a SELECT generate_series(1, 100)`)
	d.exec(`INSERT INTO b SELECT generate_series(1, 20000)`)
	d.exec(`INSERT INTO c SELECT generate_series(1, 30)`)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.a"}}
	p := d.open(cfg, nil, st)
	d.exec(`INSERT INTO a VALUES (101)`)
	ev := readUntil(t, p, untilMarks(1)) // a's 100 rows, then the insert
	streamed := ev[len(ev)-1]
	ackAll(t, p, streamed)
	p.Close()
	added := change.Stream{Source: streamed.Position.Source, Partition: AddedPartition}
	// What the sinks hold: the stream's position, and the copy's.
	committed := func(copied change.Event) change.Checkpoint {
		return change.Checkpoint{streamed.Position.Stream(): streamed.Position, added: copied.Position}
	}

	// b added: its 20,000 rows come first, in the copy's partition.
	// Commit row 9,000 of b and restart.
	cfg.Tables = []string{"public.a", "public.b"}
	p = d.open(cfg, change.Checkpoint{streamed.Position.Stream(): streamed.Position}, st)
	first := readUntil(t, p, countRows(9000))
	for i, e := range first[:9000] {
		if e.Op != change.Snapshot || e.Table != "b" || e.Key.Get("id") != int64(i+1) || e.Position.Stream() != added {
			t.Fatalf("event %d after adding b: %s %s %v at %v, want b's rows in partition %q", i, e.Op, e.Table, e.Key, e.Position, AddedPartition)
		}
	}
	mid := first[8999]
	ackAll(t, p, mid)
	p.Close()

	// The copy of b resumes after row 9,000; then the stream.
	p = d.open(cfg, committed(mid), st)
	d.exec(`INSERT INTO a VALUES (102)`)
	resumed := rows(readUntil(t, p, untilMarks(1)))
	if len(resumed) != 11001 || resumed[0].Key.Get("id") != int64(9001) || resumed[0].Position.Stream() != added || resumed[0].Position.Compare(mid.Position) <= 0 {
		t.Fatalf("resumed copy of b: %d rows from %v at %v, want 11,000 from id 9001 and the streamed insert", len(resumed), resumed[0].Key, resumed[0].Position)
	}
	if e := resumed[len(resumed)-1]; e.Op != change.Insert || e.Table != "a" || e.Key.Get("id") != int64(102) || e.Position.Stream() != streamed.Position.Stream() {
		t.Fatalf("after the copy of b: %s %s %v at %v, want the insert into a in the stream", e.Op, e.Table, e.Key, e.Position)
	}
	lastB := resumed[len(resumed)-2]
	ackAll(t, p, lastB) // b's last row, not the insert after it
	p.Close()

	// c added: copied after b's rows in the partition; a and b are not
	// read again; the insert into a comes after.
	cfg.Tables = []string{"public.a", "public.b", "public.c"}
	p = d.open(cfg, committed(lastB), st)
	got := rows(readUntil(t, p, untilMarks(1)))
	if len(got) != 31 || got[0].Table != "c" || got[0].Op != change.Snapshot || got[0].Position.Stream() != added || got[0].Position.Compare(lastB.Position) <= 0 ||
		got[30].Table != "a" || got[30].Op != change.Insert || got[30].Key.Get("id") != int64(102) {
		t.Fatalf("after adding c: %d rows, first %s %s at %v (committed %v), last %s %s; want c's 30 rows then the insert into a",
			len(got), got[0].Op, got[0].Table, got[0].Position, lastB.Position, got[len(got)-1].Op, got[len(got)-1].Table)
	}
	if prog, _, _ := ReadProgress(st); len(prog.Tables) != 1 || prog.Tables[0].Table != "public.c" || len(prog.Earlier) != 2 {
		t.Errorf("progress after copying c: %+v", prog)
	}

	// Stopped before any row of c was committed: the copy of c starts
	// over (b's last row, in the same partition, is not c's).
	p.Close()
	p = d.open(cfg, committed(lastB), st)
	again := rows(readUntil(t, p, untilMarks(1)))
	if len(again) != 31 || again[0].Table != "c" || again[0].Key.Get("id") != int64(1) || again[0].Position.Compare(got[29].Position) <= 0 {
		t.Fatalf("copy of c after a stop: %d rows, first %s %v at %v", len(again), again[0].Table, again[0].Key, again[0].Position)
	}
	// Every sink has c now: the next start streams.
	p.Close()
	p = d.open(cfg, committed(again[29]), st)
	d.exec(`INSERT INTO a VALUES (103)`)
	if next := rows(readUntil(t, p, untilMarks(1))); len(next) != 2 || next[0].Key.Get("id") != int64(102) || next[1].Key.Get("id") != int64(103) {
		t.Fatalf("after c was committed: %d rows, want the inserts 102 and 103 only", len(next))
	}
}

// TestSnapshotWithoutKeyResumesByCtid: a table without a primary key
// (REPLICA IDENTITY FULL) is read in ctid order and resumes after the
// committed row.
func TestSnapshotWithoutKeyResumesByCtid(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE nokey (a int, b text); ALTER TABLE nokey REPLICA IDENTITY FULL`)
	d.exec(`INSERT INTO nokey SELECT g % 100, 'x' FROM generate_series(1, 20000) g`)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.nokey"}}
	p := d.open(cfg, nil, st)
	first := readUntil(t, p, countRows(9000))
	mid := first[8999]
	ackAll(t, p, mid)
	p.Close()
	p = d.open(cfg, change.Checkpoint{mid.Position.Stream(): mid.Position}, st)
	rest := rows(readUntil(t, p, countRows(11000)))
	if n := len(rows(first[:9000])) + len(rest); n != 20000 || rest[len(rest)-1].Op != change.Snapshot {
		t.Fatalf("%d snapshot rows in all, want 20000", n)
	}
	if rest[0].Position.Compare(mid.Position) <= 0 {
		t.Fatalf("resumed at %v, not after %v", rest[0].Position, mid.Position)
	}
}

// TestSnapshotStartsOverWhenNothingWasCommitted: an interrupted snapshot
// of which no sink committed a row is read again from the first row,
// numbered after every index handed out before.
func TestSnapshotStartsOverWhenNothingWasCommitted(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE k (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO k SELECT generate_series(1, 10000)`)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.k"}}
	p := d.open(cfg, nil, st)
	first := readUntil(t, p, countRows(1))
	p.Close()
	p = d.open(cfg, nil, st)
	d.exec(`INSERT INTO k VALUES (10001)`)
	// The snapshot (a resumed one is a fresh transaction, so it may see
	// the insert too) and then the streamed insert.
	again := readUntil(t, p, func(ev []change.Event) bool { return len(ev) > 0 && ev[len(ev)-1].Op == change.Mark })
	if again[0].Key.Get("id") != int64(1) || again[0].Position.Compare(first[len(first)-1].Position) <= 0 {
		t.Fatalf("restart began with %v at %v", again[0].Key, again[0].Position)
	}
	if prog, _, _ := ReadProgress(st); prog.Tables[0].RowsDone < 10000 || !prog.Emitted {
		t.Fatalf("progress after starting over: %+v", prog)
	}
}

// TestSnapshotWithPreexistingSlotConverges: a slot created outside sluice
// (or a lost state file) cannot export a snapshot; the snapshot is taken
// later than the slot's position and the stream replays the changes in
// between on top, so replaying everything still gives the table.
func TestSnapshotWithPreexistingSlotConverges(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE k (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO k SELECT g, 'a' FROM generate_series(1, 100) g`)
	d.exec(`SELECT pg_create_logical_replication_slot('s', 'pgoutput')`)
	d.exec(`UPDATE k SET v = 'b' WHERE id <= 10`)
	d.exec(`DELETE FROM k WHERE id BETWEEN 11 AND 20`)
	d.exec(`UPDATE k SET id = id + 1000 WHERE id BETWEEN 21 AND 30`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.k"}}, nil, newState())
	d.exec(`INSERT INTO k VALUES (5000, 'after')`)
	ev := readUntil(t, p, func(ev []change.Event) bool {
		return len(ev) > 0 && ev[len(ev)-1].Op == change.Mark && ev[len(ev)-2].Key.Get("id") == int64(5000)
	})
	target := map[string]change.Row{}
	replay(target, rows(ev))
	want := d.tableRows("public.k", "id")
	if len(target) != len(want) {
		t.Fatalf("replayed %d rows, table has %d", len(target), len(want))
	}
	for k, w := range want {
		if !rowsEqual(target[k], w) {
			t.Fatalf("row %s: got %v want %v", k, target[k], w)
		}
	}
}
