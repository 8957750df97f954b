package postgres

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// readFor reads batches until done says the collected events suffice,
// failing after a short wait (a missing table would otherwise hang).
func readFor(t testing.TB, p *Postgres, wait time.Duration, done func([]change.Event) bool) []change.Event {
	t.Helper()
	var all []change.Event
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	for !done(all) {
		b, err := p.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d events (%s): %v", len(all), describeEvents(all), err)
		}
		all = append(all, b...)
	}
	return all
}

func describeEvents(events []change.Event) string {
	var out []string
	for _, e := range rows(events) {
		out = append(out, e.Op.String()+" "+e.Schema+"."+e.Table)
	}
	return strings.Join(out, ", ")
}

// ofTable returns the row events of one table.
func ofTable(events []change.Event, table string) []change.Event {
	var out []change.Event
	for _, e := range rows(events) {
		if e.Schema+"."+e.Table == table {
			out = append(out, e)
		}
	}
	return out
}

func (d *db) publicationSchemas(pub string) []string {
	d.t.Helper()
	p, err := readPublication(context.Background(), d.conn, pub, 150000)
	if err != nil {
		d.t.Fatal(err)
	}
	return p.schemas
}

// TestTableCreatedWhileStreamingIsCaptured: with "public.*", tables that
// a migration creates while the source streams (one created and filled in
// the same transaction, one partitioned) arrive from their first row,
// with their relation described from the catalog: key, types, TypeDef.
func TestTableCreatedWhileStreamingIsCaptured(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE early (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO early VALUES (1)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.*"}}, nil, newState())
	readFor(t, p, 10*time.Second, countRows(1))
	if got := d.publicationSchemas("sluice_test"); !reflect.DeepEqual(got, []string{"public"}) {
		t.Fatalf("publication schemas %v, want [public]", got)
	}

	d.exec(`CREATE TYPE colour AS ENUM ('red', 'green')`)
	d.exec(`CREATE TABLE late (id bigint PRIMARY KEY, v text NOT NULL, c colour)`)
	d.exec(`INSERT INTO late VALUES (1, 'one', 'red'), (2, 'two', 'green')`)
	d.exec(`UPDATE late SET v = 'uno' WHERE id = 1`)
	d.exec(`DELETE FROM late WHERE id = 2`)
	d.exec(`BEGIN; CREATE TABLE born (k text, n numeric(5,2), PRIMARY KEY (k)); INSERT INTO born VALUES ('a', 1.5), ('b', 2.25); COMMIT`)
	d.exec(`CREATE TABLE parts (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)`)
	d.exec(`CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (100)`)
	d.exec(`INSERT INTO parts VALUES (5, 'five')`)
	ev := readFor(t, p, 10*time.Second, func(ev []change.Event) bool { return len(ofTable(ev, "public.parts")) >= 1 })

	late := ofTable(ev, "public.late")
	wantOps := []change.Op{change.Insert, change.Insert, change.Update, change.Delete}
	var ops []change.Op
	for _, e := range late {
		ops = append(ops, e.Op)
	}
	if !slices.Equal(ops, wantOps) {
		t.Fatalf("public.late ops %v, want %v (all: %s)", ops, wantOps, describeEvents(ev))
	}
	if !sameRow(late[0].After, change.RowOf(map[string]any{"id": int64(1), "v": "one", "c": "red"})) || !sameRow(late[0].Key, change.RowOf(map[string]any{"id": int64(1)})) {
		t.Errorf("first insert %v key %v", late[0].After, late[0].Key)
	}
	if !sameRow(late[2].Key, change.RowOf(map[string]any{"id": int64(1)})) || late[2].After.Get("v") != "uno" {
		t.Errorf("update %v key %v", late[2].After, late[2].Key)
	}
	if !sameRow(late[3].Key, change.RowOf(map[string]any{"id": int64(2)})) {
		t.Errorf("delete key %v", late[3].Key)
	}
	rel := late[0].Relation
	id, _ := rel.Column("id")
	v, _ := rel.Column("v")
	c, _ := rel.Column("c")
	if !id.Key || id.Type != "bigint" || !id.NotNull || !v.NotNull || v.Key || c.TypeDef == nil || !slices.Equal(c.TypeDef.Labels, []string{"red", "green"}) {
		t.Errorf("relation of public.late: %+v", rel.Columns)
	}

	born := ofTable(ev, "public.born")
	if len(born) != 2 || born[0].Op != change.Insert || !sameRow(born[1].Key, change.RowOf(map[string]any{"k": "b"})) ||
		born[1].After.Get("n") != change.Numeric("2.25") {
		t.Fatalf("public.born (created and filled in one transaction): %+v", born)
	}
	if col, _ := born[0].Relation.Column("n"); col.Type != "numeric(5,2)" || !born[0].Relation.Columns[0].Key {
		t.Errorf("relation of public.born: %+v", born[0].Relation.Columns)
	}
	parts := ofTable(ev, "public.parts")
	if len(parts) != 1 || !sameRow(parts[0].Key, change.RowOf(map[string]any{"id": int64(5)})) {
		t.Errorf("public.parts (partitioned, rows under the root): %+v", parts)
	}
	if n := len(ofTable(ev, "public.parts_low")); n != 0 {
		t.Errorf("%d events named the partition public.parts_low", n)
	}
}

// TestTableCreatedWhileStoppedArrivesAfterRestart: a table created and
// filled while the source is stopped arrives from the stream when it
// starts again, every change once, and is not copied on top.
func TestTableCreatedWhileStoppedArrivesAfterRestart(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE early (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO early VALUES (1)`)
	st := newState()
	cfg := dsl.PostgresSource{Tables: []string{"public.*"}}
	p := d.open(cfg, nil, st)
	readFor(t, p, 10*time.Second, countRows(1))
	d.exec(`INSERT INTO early VALUES (2)`)
	ev := readFor(t, p, 10*time.Second, func(ev []change.Event) bool {
		return len(ofTable(ev, "public.early")) == 1 && ev[len(ev)-1].Op == change.Mark
	})
	mark := ev[len(ev)-1]
	ackAll(t, p, mark)
	p.Close()
	d.waitSlotInactive("s")

	d.exec(`CREATE TABLE dark (id int PRIMARY KEY, v text)`)
	d.exec(`INSERT INTO dark VALUES (1, 'a'), (2, 'b')`)
	d.exec(`UPDATE dark SET v = 'bb' WHERE id = 2`)
	d.exec(`BEGIN; CREATE TABLE darker (id int PRIMARY KEY); INSERT INTO darker VALUES (7); COMMIT`)

	p = d.open(cfg, change.Checkpoint{mark.Position.Stream(): mark.Position}, st)
	ev = readFor(t, p, 10*time.Second, func(ev []change.Event) bool { return len(ofTable(ev, "public.darker")) >= 1 })
	var got []string
	for _, e := range rows(ev) {
		got = append(got, e.Op.String()+" "+e.Table+" "+keyString(e.Key))
	}
	want := []string{
		"insert dark " + keyString(change.RowOf(map[string]any{"id": int64(1)})),
		"insert dark " + keyString(change.RowOf(map[string]any{"id": int64(2)})),
		"update dark " + keyString(change.RowOf(map[string]any{"id": int64(2)})),
		"insert darker " + keyString(change.RowOf(map[string]any{"id": int64(7)})),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("after the restart got\n%v\nwant\n%v", got, want)
	}
}

// TestExplicitTableListStaysExplicit: a list of tables is published as
// that list; a table created next to them is not captured.
func TestExplicitTableListStaysExplicit(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.a"}, Snapshot: "never"}, nil, newState())
	if got := d.publicationSchemas("sluice_test"); len(got) != 0 {
		t.Fatalf("publication schemas %v, want none", got)
	}
	d.exec(`CREATE TABLE b (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO b VALUES (1)`)
	d.exec(`INSERT INTO a VALUES (1)`)
	ev := readFor(t, p, 10*time.Second, func(ev []change.Event) bool { return len(ofTable(ev, "public.a")) >= 1 })
	if n := len(ofTable(ev, "public.b")); n != 0 {
		t.Fatalf("%d events of public.b, which tables does not list", n)
	}
}

// TestSchemaPatternMigratesTableListPublication: a publication that an
// earlier sluice created as a FOR TABLE list becomes a schema
// publication; validate --live says so first. With exclude, the
// publication stays a list (PostgreSQL refuses column lists next to a
// schema), with a warning.
func TestSchemaPatternMigratesTableListPublication(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY, secret text)`)
	d.exec(`CREATE PUBLICATION sluice_test FOR TABLE a WITH (publish_via_partition_root = true)`)
	cfg := WithDefaults(&dsl.PostgresSource{DSN: d.dsn, Tables: []string{"public.*"}, Slot: "s"}, "test")
	findings := CheckLive(context.Background(), cfg)
	if !slices.ContainsFunc(findings, func(f Finding) bool {
		return f.Attribute == "publication" && f.Severity == Warning && strings.Contains(f.Message, "schema public")
	}) {
		t.Errorf("CheckLive findings %+v: want a warning that the publication will be altered to publish schema public", findings)
	}
	p := d.open(dsl.PostgresSource{Tables: []string{"public.*"}, Snapshot: "never"}, nil, newState())
	if got := d.publicationSchemas("sluice_test"); !reflect.DeepEqual(got, []string{"public"}) {
		t.Fatalf("publication schemas %v, want [public]", got)
	}
	if f := CheckLive(context.Background(), cfg); slices.ContainsFunc(f, func(f Finding) bool { return f.Attribute == "publication" }) {
		t.Errorf("after the migration CheckLive still reports %+v", f)
	}
	d.exec(`CREATE TABLE b (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO b VALUES (1)`)
	readFor(t, p, 10*time.Second, func(ev []change.Event) bool { return len(ofTable(ev, "public.b")) >= 1 })
	p.Close()
	d.waitSlotInactive("s")

	// exclude: back to a list of the tables found at start.
	ex := dsl.PostgresSource{Tables: []string{"public.*"}, Exclude: []string{"public.a.secret"}, Snapshot: "never"}
	exCfg := WithDefaults(&ex, "test")
	exCfg.DSN, exCfg.Slot = d.dsn, "s"
	if f := CheckLive(context.Background(), exCfg); !slices.ContainsFunc(f, func(f Finding) bool {
		return f.Attribute == "tables" && f.Severity == Warning && strings.Contains(f.Message, "next start")
	}) {
		t.Errorf("CheckLive with exclude: %+v, want a warning that new tables wait for a restart", f)
	}
	d.open(ex, nil, newState())
	if got := d.publicationSchemas("sluice_test"); len(got) != 0 {
		t.Fatalf("with exclude the publication publishes schemas %v", got)
	}
	tables, err := publicationTables(context.Background(), d.conn, "sluice_test", 150000)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tables, map[string]string{"public.a": "id", "public.b": ""}) {
		t.Errorf("with exclude the publication publishes %v", tables)
	}
}

// TestEverySchemaPattern: "*.*" publishes every user schema that exists
// at start, and captures a table created in one of them later.
func TestEverySchemaPattern(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE SCHEMA app; CREATE TABLE app.users (id int PRIMARY KEY); CREATE TABLE pub (id int PRIMARY KEY)`)
	d.exec(`INSERT INTO app.users VALUES (1); INSERT INTO pub VALUES (1)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"*.*"}}, nil, newState())
	ev := readFor(t, p, 10*time.Second, countRows(2))
	if len(ofTable(ev, "app.users")) != 1 || len(ofTable(ev, "public.pub")) != 1 {
		t.Fatalf("snapshot of *.*: %s", describeEvents(ev))
	}
	if got := d.publicationSchemas("sluice_test"); !reflect.DeepEqual(got, []string{"app", "public"}) {
		t.Fatalf("publication schemas %v, want [app public]", got)
	}
	d.exec(`CREATE TABLE app.orders (id int PRIMARY KEY); INSERT INTO app.orders VALUES (9)`)
	ev = readFor(t, p, 10*time.Second, func(ev []change.Event) bool { return len(ofTable(ev, "app.orders")) >= 1 })
	if e := ofTable(ev, "app.orders")[0]; !sameRow(e.Key, change.RowOf(map[string]any{"id": int64(9)})) {
		t.Errorf("app.orders: %+v", e)
	}
}

// TestSchemaPatternWithoutSuperuserKeepsTheList: PostgreSQL lets only a
// superuser publish a schema, so for another role "public.*" stays the
// list of the tables found at start, and validate --live says that new
// tables wait for the next start.
func TestSchemaPatternWithoutSuperuserKeepsTheList(t *testing.T) {
	d := newDB(t)
	role := sprintf("nosuper_%d", time.Now().UnixNano()%1e9)
	d.exec(`CREATE ROLE ` + role + ` LOGIN REPLICATION`)
	t.Cleanup(func() { cluster.Exec(context.Background(), "postgres", "DROP ROLE IF EXISTS "+role) })
	d.exec(`CREATE TABLE a (id int PRIMARY KEY)`)
	d.exec(`ALTER TABLE a OWNER TO ` + role)
	var dbName string
	if err := d.conn.QueryRow(context.Background(), `SELECT current_database()`).Scan(&dbName); err != nil {
		t.Fatal(err)
	}
	d.exec(`GRANT CREATE ON DATABASE ` + dbName + ` TO ` + role)
	as := &db{t: t, dsn: strings.Replace(d.dsn, "postgres@", role+"@", 1)}
	cfg := WithDefaults(&dsl.PostgresSource{DSN: as.dsn, Tables: []string{"public.*"}, Slot: "s"}, "test")
	if f := CheckLive(context.Background(), cfg); !slices.ContainsFunc(f, func(f Finding) bool {
		return f.Attribute == "tables" && f.Severity == Warning && strings.Contains(f.Message, "superuser")
	}) {
		t.Errorf("CheckLive as a non-superuser: %+v, want a warning that new tables wait for a restart", f)
	}
	as.open(dsl.PostgresSource{Tables: []string{"public.*"}, Snapshot: "never"}, nil, newState())
	if got := d.publicationSchemas("sluice_test"); len(got) != 0 {
		t.Fatalf("a non-superuser's publication publishes schemas %v", got)
	}
	tables, err := publicationTables(context.Background(), d.conn, "sluice_test", 150000)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(tables, map[string]string{"public.a": ""}) {
		t.Errorf("a non-superuser's publication publishes %v", tables)
	}
}
