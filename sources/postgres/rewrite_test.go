package postgres

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSnapshotRefusesATableRewrittenAfterItsSnapshot: a table-rewriting
// ALTER TABLE (here int -> bigint) that commits after the slot's exported
// snapshot and before the copy reads the table made the copy read it as
// empty, silently: rewrites are not MVCC-safe. The copy now refuses to
// read a table whose file is not the one its snapshot sees; in a new
// transaction the table is read whole.
func TestSnapshotRefusesATableRewrittenAfterItsSnapshot(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE rw (id int PRIMARY KEY, v int NOT NULL); INSERT INTO rw SELECT g, g FROM generate_series(1, 100) g;
		CREATE TABLE calm (id int PRIMARY KEY); INSERT INTO calm SELECT generate_series(1, 10)`)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tables, _, err := resolveTables(ctx, d.conn, []string{"public.rw", "public.calm"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tables[0].Name != "rw" {
		tables[0], tables[1] = tables[1], tables[0]
	}
	rconn, err := connectReplication(ctx, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer rconn.Close(context.Background())
	res, err := createSlot(ctx, rconn, "rewrite_test", true)
	if err != nil {
		t.Fatal(err)
	}
	defer d.exec(`SELECT pg_drop_replication_slot('rewrite_test')`)
	d.exec(`ALTER TABLE rw ALTER COLUMN v TYPE bigint`) // commits after the exported snapshot

	conn, err := connect(ctx, d.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	snap := newSnapshot(ctx, "", nil, nil, tables, nil, &SnapshotProgress{}, conn).readers[0]
	if err := snap.begin(ctx, res.SnapshotName); err != nil {
		t.Fatal(err)
	}
	err = snap.unrewritten(tables[0])
	if err == nil || !strings.Contains(err.Error(), "rw") || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("reading rw after a rewrite: %v, want an error naming table rw as rewritten", err)
	}
	if err := snap.unrewritten(tables[1]); err != nil {
		t.Fatalf("calm was not rewritten: %v", err)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	// Without an exported snapshot (a resumed or later copy), the
	// transaction's snapshot follows the rewrite: nothing to refuse, and
	// the rows are there.
	if err := snap.begin(ctx, ""); err != nil {
		t.Fatalf("begin in a new transaction: %v", err)
	}
	if err := snap.unrewritten(tables[0]); err != nil {
		t.Fatalf("rw in a new transaction: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM rw").Scan(&n); err != nil || n != 100 {
		t.Fatalf("rows of rw read in the new transaction: %d (%v), want 100", n, err)
	}
	if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
}
