package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// replayStrict applies events to a map as a keyed sink would, without
// the help replay gives: an update that moves a row to another key
// writes After alone under the new key (a sink cannot rely on the old
// row's columns being carried), and only an update in place keeps the
// columns After does not carry.
func replayStrict(target map[string]change.Row, events []change.Event) {
	for _, e := range events {
		switch e.Op {
		case change.Insert, change.Snapshot:
			target[e.Table+":"+keyString(e.Key)] = e.After
		case change.Update:
			old, dst := e.Table+":"+keyString(e.Before), e.Table+":"+keyString(e.Key)
			if old != dst {
				delete(target, old)
				target[dst] = e.After
				continue
			}
			merged := map[string]any{}
			for k, v := range target[dst].All() {
				merged[k] = v
			}
			for k, v := range e.After.All() {
				merged[k] = v
			}
			target[dst] = change.RowOf(merged)
		case change.Delete:
			delete(target, e.Table+":"+keyString(e.Key))
		case change.Truncate:
			clear(target)
		}
	}
}

// createOrders creates a table partitioned by region, two partitions.
func createOrders(d *db) {
	d.exec(`CREATE TABLE orders (id int, region text, amount int, note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region)`)
	d.exec(`CREATE TABLE orders_eu PARTITION OF orders FOR VALUES IN ('eu')`)
	d.exec(`CREATE TABLE orders_us PARTITION OF orders FOR VALUES IN ('us')`)
}

// publishedTables lists what publication pub names, and whether it
// publishes via the partition root.
func (d *db) publishedTables(pub string) ([]string, bool) {
	d.t.Helper()
	var names []string
	var viaRoot bool
	// pg_publication_tables: also the tables published through their
	// schema (FOR TABLES IN SCHEMA), which pg_publication_rel omits.
	err := d.conn.QueryRow(context.Background(), `SELECT coalesce(array_agg(pt.tablename::text ORDER BY pt.tablename) FILTER (WHERE pt.tablename IS NOT NULL), '{}'), p.pubviaroot
		FROM pg_publication p LEFT JOIN pg_publication_tables pt ON pt.pubname = p.pubname
		WHERE p.pubname = $1 GROUP BY p.pubviaroot`, pub).Scan(&names, &viaRoot)
	if err != nil {
		d.t.Fatal(err)
	}
	return names, viaRoot
}

// TestPartitionedTableReplicatesUnderRoot: rows of a partitioned table,
// snapshot and stream alike (inserts, updates, an update that moves a
// row with a TOASTed value to the other partition, deletes), arrive under
// the partitioned table's name, and replayed by a sink that carries
// nothing across a key change they equal the table; `public.*`
// publishes the partitioned table and not its partitions.
func TestPartitionedTableReplicatesUnderRoot(t *testing.T) {
	raw := make([]byte, 8000)
	rand.Read(raw)
	big := hex.EncodeToString(raw) // TOASTed out of line
	d := newDB(t)
	createOrders(d)
	d.exec(`INSERT INTO orders VALUES (1, 'eu', 10, $1), (2, 'us', 20, 'b'), (3, 'eu', 30, 'c')`, big)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.*"}, Publication: "pub"}, nil, newState())
	if got, viaRoot := d.publishedTables("pub"); !reflect.DeepEqual(got, []string{"orders"}) || !viaRoot {
		t.Fatalf("publication names %v (publish_via_partition_root %v), want [orders] via the root", got, viaRoot)
	}
	ev := readUntil(t, p, countRows(3)) // the snapshot
	d.exec(`INSERT INTO orders VALUES (4, 'us', 40, 'd'), (5, 'eu', 50, 'e')`)
	d.exec(`UPDATE orders SET amount = 11 WHERE id = 1`)                // in place, note TOASTed and unchanged
	d.exec(`UPDATE orders SET region = 'us', amount = 12 WHERE id = 1`) // moves to orders_us
	d.exec(`UPDATE orders SET id = 6 WHERE id = 2`)                     // key change inside orders_us
	d.exec(`UPDATE orders SET region = 'eu' WHERE id = 4`)              // moves to orders_eu
	d.exec(`DELETE FROM orders WHERE id = 3`)
	d.exec(`DELETE FROM orders WHERE id = 5`)
	ev = append(ev, readUntil(t, p, untilMarks(7))...)
	var ops []string
	for _, e := range rows(ev) {
		if e.Schema != "public" || e.Table != "orders" || e.Relation.Table != "orders" {
			t.Fatalf("%s event names %s.%s (relation %s), want public.orders", e.Op, e.Schema, e.Table, e.Relation.Table)
		}
		ops = append(ops, e.Op.String())
	}
	// A move between partitions is a delete from one and an insert into
	// the other: PostgreSQL sends exactly that, via the root.
	want := "snapshot snapshot snapshot insert insert update delete insert update delete insert delete delete"
	if strings.Join(ops, " ") != want {
		t.Fatalf("events %s\n want %s", strings.Join(ops, " "), want)
	}
	target := map[string]change.Row{}
	replayStrict(target, ev)
	if source := d.tableRows("public.orders", "id", "region"); !reflect.DeepEqual(rowMaps(target), rowMaps(source)) {
		t.Fatalf("replayed target differs from the source:\n target %v\n source %v", abbreviate(target), abbreviate(source))
	}
	if moved := target["orders:"+keyString(change.RowOf(map[string]any{"id": int64(1), "region": "us"}))]; moved.Get("note") != big {
		t.Fatal("the moved row lost its TOASTed note")
	}
}

// abbreviate shortens long strings for failure messages.
func abbreviate(m map[string]change.Row) map[string]change.Row {
	out := map[string]change.Row{}
	for k, r := range m {
		r = r.Clone()
		for c, v := range r.All() {
			if s, ok := v.(string); ok && len(s) > 20 {
				r.Set(c, s[:20]+"…")
			}
		}
		out[k] = r
	}
	return out
}

// TestPartitionNamedWithItsRoot: a partition captured together with its
// partitioned table is dropped from the tables (a warning says so), so
// its rows arrive once, under the partitioned table's name.
func TestPartitionNamedWithItsRoot(t *testing.T) {
	d := newDB(t)
	createOrders(d)
	d.exec(`INSERT INTO orders VALUES (1, 'eu', 10, 'a'), (2, 'us', 20, 'b')`)
	cfg := dsl.PostgresSource{Tables: []string{"public.orders_eu", "public.orders"}, Publication: "pub"}
	live := WithDefaults(&cfg, "p")
	live.DSN = d.dsn
	var got []string
	for _, f := range CheckLive(context.Background(), live) {
		if !strings.Contains(f.Message, "TOASTable") {
			got = append(got, string(f.Severity)+" "+f.Subject)
		}
	}
	if !reflect.DeepEqual(got, []string{"warning public.orders_eu"}) {
		t.Fatalf("findings %q, want the partition's warning", got)
	}
	p := d.open(cfg, nil, newState())
	if names, _ := d.publishedTables("pub"); !reflect.DeepEqual(names, []string{"orders"}) {
		t.Fatalf("publication names %v, want [orders]", names)
	}
	d.exec(`INSERT INTO orders_eu VALUES (3, 'eu', 30, 'c')`)
	var tables []string
	for _, e := range rows(readUntil(t, p, untilMarks(1))) {
		tables = append(tables, e.Op.String()+" "+e.Table+":"+keyString(e.Key))
	}
	sort.Strings(tables)
	want := []string{"insert orders:id=3;region=eu;", "snapshot orders:id=1;region=eu;", "snapshot orders:id=2;region=us;"}
	if !reflect.DeepEqual(tables, want) {
		t.Fatalf("events %q, want %q", tables, want)
	}
}

// TestPartitionedRootExclude: exclude removes a column of a partitioned
// table through the publication's column list, in the snapshot and the
// stream, for rows of every partition.
func TestPartitionedRootExclude(t *testing.T) {
	d := newDB(t)
	createOrders(d)
	d.exec(`INSERT INTO orders VALUES (1, 'eu', 10, 'secret')`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.orders"}, Exclude: []string{"public.orders.note"}, Publication: "pub"}, nil, newState())
	d.exec(`INSERT INTO orders VALUES (2, 'us', 20, 'secret')`)
	d.exec(`UPDATE orders SET note = 'changed', amount = 21 WHERE id = 2`)
	d.exec(`UPDATE orders SET region = 'us' WHERE id = 1`)
	ev := rows(readUntil(t, p, countRows(5)))
	for _, e := range ev {
		for _, r := range []change.Row{e.Before, e.After, e.Key} {
			if _, ok := r.Lookup("note"); ok {
				t.Fatalf("%s event carries note: %v", e.Op, r)
			}
		}
		if _, ok := e.Relation.Column("note"); ok || e.Table != "orders" {
			t.Fatalf("%s event of %s names note in its relation", e.Op, e.Table)
		}
	}
	if ev[2].Op != change.Update || ev[2].After.Get("amount") != int64(21) {
		t.Fatalf("update: %+v", ev[2])
	}
}

// TestExistingPublicationGetsViaRoot: a publication created without
// publish_via_partition_root is reported by CheckLive and altered by
// Open, after which changes of partitions name the partitioned table.
func TestExistingPublicationGetsViaRoot(t *testing.T) {
	d := newDB(t)
	createOrders(d)
	d.exec(`CREATE PUBLICATION pub FOR TABLE orders`)
	cfg := dsl.PostgresSource{Tables: []string{"public.orders"}, Publication: "pub", Snapshot: "never"}
	live := WithDefaults(&cfg, "p")
	live.DSN = d.dsn
	f := publicationFindings(CheckLive(context.Background(), live))
	if len(f) != 1 || f[0].Severity != Warning || f[0].Attribute != "publication" || !strings.Contains(f[0].Message, "partitioned table") {
		t.Fatalf("findings %v, want a warning that the publication will be altered", f)
	}
	p := d.open(cfg, nil, newState())
	if _, viaRoot := d.publishedTables("pub"); !viaRoot {
		t.Fatal("publish_via_partition_root still off")
	}
	d.exec(`INSERT INTO orders VALUES (1, 'us', 10, 'a')`)
	if e := rows(readUntil(t, p, countRows(1)))[0]; e.Table != "orders" {
		t.Fatalf("insert names %s, want orders", e.Table)
	}
	if f := publicationFindings(CheckLive(context.Background(), live)); len(f) != 0 {
		t.Fatalf("after Open: findings %v", f)
	}
}

func publicationFindings(all []Finding) []Finding {
	var out []Finding
	for _, f := range all {
		if f.Attribute == "publication" {
			out = append(out, f)
		}
	}
	return out
}

// TestPartitionIdentityMustReachPartitions: REPLICA IDENTITY FULL on a
// partitioned table does not reach its partitions, and pgoutput would
// then send their unlogged old values as NULL (an unchanged TOASTed
// value would become NULL): CheckLive and Open refuse it with the fix,
// and once every partition is FULL, updates (a move included) keep the
// TOASTed value and carry the whole old row.
func TestPartitionIdentityMustReachPartitions(t *testing.T) {
	raw := make([]byte, 8000)
	rand.Read(raw)
	big := hex.EncodeToString(raw)
	d := newDB(t)
	createOrders(d)
	d.exec(`ALTER TABLE orders REPLICA IDENTITY FULL`)
	cfg := dsl.PostgresSource{Tables: []string{"public.orders"}, Snapshot: "never"}
	live := WithDefaults(&cfg, "p")
	live.DSN = d.dsn
	f := CheckLive(context.Background(), live)
	if len(f) != 1 || f[0].Severity != Error || f[0].Subject != "public.orders" || !strings.Contains(f[0].Fix, "public.orders_eu, public.orders_us") {
		t.Fatalf("findings %v, want one error naming both partitions", f)
	}
	if p, err := d.build(cfg); err != nil || p.Open(context.Background(), nil, newState()) == nil {
		t.Fatal("Open accepted partitions whose identity is not FULL")
	}
	d.exec(`ALTER TABLE orders_eu REPLICA IDENTITY FULL; ALTER TABLE orders_us REPLICA IDENTITY FULL`)
	if f := CheckLive(context.Background(), live); len(f) != 0 {
		t.Fatalf("findings %v once the partitions are FULL", f)
	}
	d.exec(`INSERT INTO orders VALUES (1, 'eu', 10, $1)`, big)
	p := d.open(cfg, nil, newState())
	d.exec(`UPDATE orders SET amount = 11 WHERE id = 1`)
	d.exec(`UPDATE orders SET region = 'us' WHERE id = 1`)
	ev := rows(readUntil(t, p, countRows(3)))
	if ev[0].Op != change.Update || ev[0].After.Get("note") != big || ev[0].Before.Get("note") != big || !reflect.DeepEqual(ev[0].Changed, []string{"amount"}) {
		t.Fatalf("update: after has note %v, changed %v", ev[0].After.Get("note") == big, ev[0].Changed)
	}
	if ev[1].Op != change.Delete || ev[1].Before.Get("amount") != int64(11) || ev[2].Op != change.Insert || ev[2].After.Get("note") != big {
		t.Fatalf("move: %s %v, %s", ev[1].Op, ev[1].Before.Get("amount"), ev[2].Op)
	}
}
