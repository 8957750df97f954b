package postgres

import (
	"fmt"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestParallelSnapshotResumesEachReader: with three readers, tables of a
// few megabytes are split into key ranges (ordered as the key is, not as
// its text: ids up to 160,000, three eighths of them of six digits; a
// composite text key too, whose order is the index's collation), the readers' rows are in streams of
// their own, and a restart resumes each reader exactly after its last
// committed row: every row arrives once, none is lost.
func TestParallelSnapshotResumesEachReader(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE big (id int PRIMARY KEY, pad text);
		INSERT INTO big SELECT g * 16, repeat('x', 400) FROM generate_series(1, 10000) g;
		CREATE TABLE comp (a int, b text, pad text, PRIMARY KEY (a, b));
		INSERT INTO comp SELECT g % 7, CASE WHEN g % 2 = 0 THEN 'K' ELSE 'k' END || g, repeat('y', 600) FROM generate_series(1, 5000) g`)
	const total = 15000
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.big", "public.comp"}, SnapshotWorkers: 3}
	p := d.open(cfg, nil, st)
	// Half the rows, and at least one of every reader's (which come in
	// whatever order the readers' goroutines run).
	first := rows(readUntil(t, p, func(ev []change.Event) bool {
		seen := map[change.Stream]bool{}
		for i := range ev {
			seen[ev[i].Position.Stream()] = true
		}
		return countRows(total/2)(ev) && len(seen) == 3
	}))
	committed := change.Checkpoint{}
	for _, e := range first {
		committed.Advance(e.Position)
	}
	p.Close()
	prog, _, _ := ReadProgress(st)
	if prog.readers() != 3 {
		t.Fatalf("%d readers, want 3", prog.readers())
	}
	splitTables := 0
	for ti := range prog.Tables {
		n := 0
		for r := range prog.readers() {
			for _, tr := range prog.reader(r).Ranges {
				if tr.Table == ti {
					n++
				}
			}
		}
		if n > 1 {
			splitTables++
		}
	}
	if splitTables != 2 {
		t.Fatalf("%d tables split into ranges, want both: %+v", splitTables, prog)
	}
	if len(committed) != 3 {
		t.Fatalf("the first %d rows came on streams %v, want every reader's", len(first), committed)
	}
	for st := range committed {
		if st.Parallel() != (st.Partition != "") {
			t.Fatalf("stream %v: Parallel() = %v", st, st.Parallel())
		}
	}

	p = d.open(cfg, committed, st)
	defer p.Close()
	d.exec(`INSERT INTO big VALUES (160001, 'streamed')`)
	rest := readUntil(t, p, untilMarks(1))
	seen := map[string]int{}
	for _, e := range append(first, rows(rest)...) {
		if e.Op == change.Snapshot {
			seen[fmt.Sprint(e.Table, e.Key.Map())]++
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct snapshot rows, want %d", len(seen), total)
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("row %s arrived %d times", k, n)
		}
	}
	for _, e := range rows(rest) {
		if e.Op == change.Snapshot && committed.Covers(e.Position) {
			t.Fatalf("resumed row %v at %v is at or before the committed %v", e.Key, e.Position, committed[e.Position.Stream()])
		}
	}
	if last := rows(rest)[len(rows(rest))-1]; last.Op != change.Insert || last.Position.Stream().Partition != "" {
		t.Fatalf("after the copy: %s on %v, want the streamed insert", last.Op, last.Position.Stream())
	}
	for _, e := range rest {
		if e.Op == change.Snapshot {
			committed.Advance(e.Position)
		}
	}
	if prog, _, _ := ReadProgress(st); !prog.AllEmitted() || !prog.complete(p.name, committed) {
		t.Errorf("after reading everything: progress %+v not complete with %v committed", prog, committed)
	}
}
