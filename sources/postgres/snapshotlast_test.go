package postgres

import (
	"fmt"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestLastSnapshotRowIsMarked: the last row of the whole snapshot, and
// only it, is marked SnapshotLast (Debezium's source.snapshot = "last"),
// across tables and chunk boundaries, and with parallel readers the last
// one handed out; streamed changes are not.
func TestLastSnapshotRowIsMarked(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			d := newDB(t)
			d.exec(`CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 9000);
				CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 3)`)
			p := d.open(dsl.PostgresSource{Tables: []string{"public.a", "public.b"}, SnapshotWorkers: workers}, nil, newState())
			defer p.Close()
			d.exec(`INSERT INTO a VALUES (9001)`)
			evs := rows(readUntil(t, p, untilMarks(1)))
			var marked []change.Event
			for _, e := range evs {
				if e.SnapshotLast {
					marked = append(marked, e)
				}
			}
			if len(evs) != 9004 || len(marked) != 1 || evs[9002].Position != marked[0].Position {
				t.Fatalf("%d rows, marked %v: want 9,003 snapshot rows with only the last marked, then the insert", len(evs), marked)
			}
			if workers == 1 && (marked[0].Table != "b" || marked[0].Key.Get("id") != int64(3)) {
				t.Errorf("one reader marked %s %v, want b's id 3", marked[0].Table, marked[0].Key)
			}
			if last := evs[len(evs)-1]; last.Op != change.Insert || last.SnapshotLast {
				t.Errorf("the streamed insert: %s, marked %v", last.Op, last.SnapshotLast)
			}
		})
	}
}
