package postgres

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// resyncDone reports whether every job of the source's state is over.
func resyncDone(t testing.TB, st *memState) bool {
	t.Helper()
	rs, err := ReadResync(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range rs.Jobs {
		if j.Error != "" {
			t.Fatalf("job %s: %s", j.key(), j.Error)
		}
		if j.Pending() {
			return false
		}
	}
	return len(rs.Jobs) > 0
}

// TestIncrementalSnapshotWhileWriting copies a table of every type with
// snapshot = "incremental" while a writer inserts, updates, deletes and
// changes keys: snapshot rows and streamed changes interleave, and
// replayed in order they leave exactly the table's rows.
func TestIncrementalSnapshotWhileWriting(t *testing.T) {
	const rowsN = 30_000
	d := newDB(t)
	d.exec(everythingDDL)
	d.exec(`INSERT INTO everything VALUES ` + fmt.Sprintf(everythingRow, 0))
	d.exec(`INSERT INTO everything SELECT g, s, i, n + g, r, d, t || g, v, c, b, dt + g, tm, ts, tz, iv, u, j, jb, by, arr || g, tarr, grid, m, p, nul
		FROM everything e, generate_series(1, ` + fmt.Sprint(rowsN) + `) g WHERE e.id = 0`)
	d.exec(`DELETE FROM everything WHERE id = 0`)
	d.exec(`CREATE TABLE done (id int PRIMARY KEY)`)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes int
	wg.Add(1)
	go func() { defer wg.Done(); writes = writer(t, d.dsn, stop, rowsN) }()

	st := newState()
	p := d.open(dsl.PostgresSource{Tables: []string{"public.everything", "public.done"}, Snapshot: SnapshotIncremental}, nil, st)
	target := map[string]change.Row{}
	var streamedDuring, snapshotRows int
	var last change.Position
	read := func() []change.Event {
		events := readUntil(t, p, func(e []change.Event) bool { return len(e) > 0 })
		for _, e := range events {
			switch e.Op {
			case change.Snapshot:
				snapshotRows++
				if e.Boundary {
					t.Fatalf("snapshot row %s is a boundary", e.Position)
				}
			case change.Insert, change.Update, change.Delete:
				if snapshotRows > 0 && !resyncDone(t, st) {
					streamedDuring++
				}
			}
			if e.Position.Compare(last) <= 0 {
				t.Fatalf("position %s after %s", e.Position, last)
			}
			last = e.Position
		}
		replay(target, rows(events))
		ackAll(t, p, events[len(events)-1])
		return events
	}
	deadline := time.Now().Add(3 * time.Minute)
	for !resyncDone(t, st) {
		if time.Now().After(deadline) {
			t.Fatal("incremental snapshot did not finish")
		}
		read()
	}
	close(stop)
	wg.Wait()
	d.exec(`INSERT INTO done VALUES (1)`)
	for !slices.ContainsFunc(read(), func(e change.Event) bool { return e.Table == "done" }) {
	}
	delete(target, "done:"+keyString(change.RowOf(map[string]any{"id": int64(1)})))
	want := d.tableRows("public.everything", "id")
	if len(target) != len(want) {
		t.Errorf("target holds %d rows, the table %d (after %d writes)", len(target), len(want), writes)
	}
	diffs := 0
	for k, w := range want {
		if g := target[k]; !rowsEqual(g, w) && diffs < 5 {
			diffs++
			t.Errorf("row %s:\n got %v\nwant %v", k, g, w)
		}
	}
	if snapshotRows < rowsN-writes {
		t.Errorf("only %d snapshot rows", snapshotRows)
	}
	if streamedDuring == 0 || writes < 100 {
		t.Errorf("%d changes streamed during the copy, %d writes: the test proves little", streamedDuring, writes)
	}
	t.Logf("%d snapshot rows, %d writes, %d changes streamed during the copy", snapshotRows, writes, streamedDuring)
}

// TestResyncRequestCopiesSelectedRowsForOneSink: a request with a
// predicate and a sink copies just those rows, addressed to that sink,
// into a source that never snapshots.
func TestResyncRequestCopiesSelectedRowsForOneSink(t *testing.T) {
	d := newDB(t)
	d.exec("CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)")
	d.exec("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20000) g")
	st := newState()
	p := d.open(dsl.PostgresSource{Tables: []string{"public.t"}, Snapshot: "never"}, nil, st)
	err := p.Resync(context.Background(), state.SnapshotRequest{ID: "r1", Source: "src", Tables: []string{"public.t"}, Sink: "only", Where: "id % 3 = 0"})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for !resyncDone(t, st) {
		events := readUntil(t, p, func(e []change.Event) bool { return len(e) > 0 })
		for _, e := range events {
			if e.Op != change.Snapshot {
				continue
			}
			got++
			if id := e.Key.Get("id").(int64); id%3 != 0 || e.Sink != "only" {
				t.Fatalf("copied id %d for sink %q", id, e.Sink)
			}
		}
		ackAll(t, p, events[len(events)-1])
	}
	if got != 6666 {
		t.Errorf("copied %d rows, want 6666", got)
	}
	if err := p.Resync(context.Background(), state.SnapshotRequest{ID: "r2", Tables: []string{"public.nope"}}); err == nil {
		t.Error("a table the source does not capture was accepted")
	}
}

func TestRacedChunks(t *testing.T) {
	xip := inProgress("100:120:105,110")
	if !xip[105] || !xip[110] || len(xip) != 2 {
		t.Fatalf("inProgress: %v", xip)
	}
	if inProgress("100:100:") != nil {
		t.Error("an empty xip list is in progress")
	}
	if !raced([]uint32{90, 105}, xip) || raced([]uint32{90, 104}, xip) || raced(nil, xip) {
		t.Error("raced")
	}
}

// TestIncrementalSnapshotReleasesWAL: during an incremental copy the
// slot's confirmed position and restart_lsn move on as the sinks commit
// chunks (issue 10, acceptance 3; BenchmarkSnapshotIncremental shows it
// on 1,000,000 rows), where an initial snapshot holds WAL back for its
// whole duration.
func TestIncrementalSnapshotReleasesWAL(t *testing.T) {
	const rowsN = 100_000
	d := newDB(t)
	d.exec(benchDDL)
	d.exec(fmt.Sprintf(benchFill, 1, rowsN))
	st := newState()
	// 40,000 rows/s: the copy takes 2.5 s, long enough to look at the
	// slot in its middle.
	p := d.open(dsl.PostgresSource{Tables: []string{"public.bench"}, Snapshot: SnapshotIncremental, MaxRowsPerSecond: 40_000}, nil, st)
	slot := func() (restart, confirmed string) {
		t.Helper()
		if err := d.conn.QueryRow(context.Background(), "SELECT restart_lsn::text, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 's'").Scan(&restart, &confirmed); err != nil {
			t.Fatal(err)
		}
		return restart, confirmed
	}
	restart0, confirmed0 := slot()
	n, logged := 0, false
	for n < rowsN*3/4 {
		events := readUntil(t, p, func(e []change.Event) bool { return len(e) > 0 })
		for _, e := range events {
			if e.Op == change.Snapshot {
				n++
			}
		}
		ackAll(t, p, events[len(events)-1])
		if !logged && n >= rowsN/4 {
			logged = true
			d.exec("CHECKPOINT") // logs the running transactions restart_lsn moves by
		}
	}
	// The slot moves with a standby status update (one a second): poll
	// for it, bounded, while the copy waits for the next read.
	var restart, confirmed string
	var moved bool
	for deadline := time.Now().Add(10 * time.Second); !moved && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		restart, confirmed = slot()
		if err := d.conn.QueryRow(context.Background(), "SELECT $1::pg_lsn > $2::pg_lsn AND $3::pg_lsn > $4::pg_lsn", restart, restart0, confirmed, confirmed0).Scan(&moved); err != nil {
			t.Fatal(err)
		}
	}
	if resyncDone(t, st) {
		t.Fatal("the copy ended before the slot was looked at")
	}
	if !moved {
		t.Errorf("in the copy's middle the slot holds restart_lsn %s (at start %s), confirmed %s (at start %s): WAL is held for the whole copy", restart, restart0, confirmed, confirmed0)
	}
}
