package postgres

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestMixedCasePublicationStreams: a publication whose name needs
// quoting ("MyPub") is created and streamed from, and peeked at.
func TestMixedCasePublicationStreams(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE a (id int PRIMARY KEY, v text)`)
	d.exec(`CREATE TABLE b (id int PRIMARY KEY)`)
	d.exec(`CREATE PUBLICATION mypub FOR TABLE b`) // the name the literal would fold to: must not be used
	cfg := dsl.PostgresSource{Tables: []string{"public.a"}, Publication: "MyPub", Snapshot: "never", Slot: "mixed"}
	p := d.open(cfg, nil, newState())
	d.exec(`INSERT INTO a VALUES (1, 'x')`)
	d.exec(`INSERT INTO b VALUES (1)`)
	d.exec(`INSERT INTO a VALUES (2, 'y')`)
	ev := rows(readUntil(t, p, countRows(2)))
	if ev[0].Table != "a" || ev[1].Table != "a" || ev[1].After.Get("v") != "y" {
		t.Fatalf("events %+v", ev)
	}
	p.Close()
	d.waitSlotInactive("mixed")
	d.exec(`INSERT INTO a VALUES (3, 'z')`)
	cfg.DSN = d.dsn
	peeked, err := Peek(context.Background(), &cfg, "src", 10)
	if err != nil {
		t.Fatal(err)
	}
	if r := rows(peeked); len(r) != 3 || r[2].After.Get("id") != int64(3) {
		t.Fatalf("peek: %+v", peeked)
	}
}

// TestUsingIndexOtherThanPrimaryKeyWarns: REPLICA IDENTITY USING INDEX
// on an index that is not the primary key gets a warning with the fix;
// the primary key's own index does not.
func TestUsingIndexOtherThanPrimaryKeyWarns(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL, n int); CREATE UNIQUE INDEX u_email ON u (email)`)
	d.exec(`ALTER TABLE u REPLICA IDENTITY USING INDEX u_email`)
	d.exec(`CREATE TABLE k (id int PRIMARY KEY, n int)`)
	d.exec(`ALTER TABLE k REPLICA IDENTITY USING INDEX k_pkey`)
	cfg := WithDefaults(&dsl.PostgresSource{DSN: d.dsn, Tables: []string{"public.u", "public.k"}}, "p")
	f := CheckLive(context.Background(), cfg)
	if len(f) != 1 {
		t.Fatalf("findings %v, want one", f)
	}
	if f[0].Severity != Warning || f[0].Attribute != "tables" || f[0].Subject != "public.u" ||
		!strings.Contains(f[0].Message, "email") || !strings.Contains(f[0].Fix, "REPLICA IDENTITY FULL") || !strings.Contains(f[0].Fix, "REPLICA IDENTITY DEFAULT") {
		t.Fatalf("finding %+v", f[0])
	}
}

// TestUsingIndexWarningIsLoggedAtStart: Open logs the same warning
// (run does not print validate's findings).
func TestUsingIndexWarningIsLoggedAtStart(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE u (id int PRIMARY KEY, email text NOT NULL, n int); CREATE UNIQUE INDEX u_email ON u (email)`)
	d.exec(`ALTER TABLE u REPLICA IDENTITY USING INDEX u_email`)
	var log syncBuffer
	cfg := dsl.PostgresSource{DSN: d.dsn, Tables: []string{"public.u"}, Slot: "s", Snapshot: "never"}
	s, err := New(engine.Build{Logger: slog.New(slog.NewTextHandler(&log, nil)), Pipeline: engine.Pipeline{Name: "test"}},
		&dsl.Source{Type: "postgres", Name: "src", Postgres: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background(), nil, newState()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if out := log.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "USING INDEX on (email)") || !strings.Contains(out, "REPLICA IDENTITY FULL") {
		t.Fatalf("log:\n%s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestAddedColumnDefaults: columns added mid-stream with a DEFAULT carry
// it in the new relation version, as PostgreSQL renders it; known
// columns keep theirs.
func TestAddedColumnDefaults(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE u (id int PRIMARY KEY, name text DEFAULT 'anon', plain int)`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.u"}}, nil, newState())
	d.exec(`INSERT INTO u VALUES (1, 'a', 1)`)
	d.exec(`ALTER TABLE u ADD COLUMN tag text DEFAULT 'x', ADD COLUMN score integer NOT NULL DEFAULT 7`)
	d.exec(`INSERT INTO u (id) VALUES (2)`)
	ev := rows(readUntil(t, p, countRows(2)))
	r1, r2 := ev[0].Relation, ev[1].Relation
	if r1.Version != 1 || r2.Version != 2 {
		t.Fatalf("versions %d, %d", r1.Version, r2.Version)
	}
	want := map[string]string{"id": "", "name": "'anon'::text", "plain": "", "tag": "'x'::text", "score": "7"}
	for _, c := range r2.Columns {
		if c.Default != want[c.Name] || c.Generated {
			t.Errorf("column %s: default %q generated %v, want %q", c.Name, c.Default, c.Generated, want[c.Name])
		}
	}
	if len(r2.Columns) != 5 || ev[1].After.Get("tag") != "x" || ev[1].After.Get("score") != int64(7) {
		t.Fatalf("relation %+v, after %v", r2.Columns, ev[1].After)
	}
	if c, _ := r1.Column("name"); c.Default != "'anon'::text" {
		t.Fatalf("catalog relation: name default %q", c.Default)
	}
}

// TestGeneratedColumns: a stored generated column is in the relation
// (Generated, its expression in Default) from the snapshot and from the
// stream, and no event carries its value (pgoutput never sends it); one
// added mid-stream makes a new relation version.
func TestGeneratedColumns(t *testing.T) {
	d := newDB(t)
	d.exec(`CREATE TABLE g (id int PRIMARY KEY, n int, twice int GENERATED ALWAYS AS (n * 2) STORED, note text)`)
	d.exec(`INSERT INTO g (id, n, note) VALUES (1, 1, 'a')`)
	p := d.open(dsl.PostgresSource{Tables: []string{"public.g"}, Exclude: []string{"public.g.note"}}, nil, newState())
	d.exec(`INSERT INTO g (id, n) VALUES (2, 2)`)
	d.exec(`UPDATE g SET n = 3 WHERE id = 1`)
	ev := rows(readUntil(t, p, countRows(3)))
	// After the snapshot: a table rewrite hides the rows from snapshots
	// taken before it (PostgreSQL's ALTER TABLE is not MVCC-safe).
	d.exec(`ALTER TABLE g ADD COLUMN thrice int GENERATED ALWAYS AS (n * 3) STORED`)
	d.exec(`INSERT INTO g (id, n) VALUES (3, 3)`)
	ev = append(ev, rows(readUntil(t, p, countRows(1)))...)
	names := func(r *change.Relation) string {
		var s []string
		for _, c := range r.Columns {
			if c.Generated {
				s = append(s, c.Name+"="+c.Default)
			} else {
				s = append(s, c.Name)
			}
		}
		return strings.Join(s, ",")
	}
	if got := names(ev[0].Relation); got != "id,n,twice=(n * 2)" {
		t.Fatalf("snapshot relation %s", got)
	}
	if ev[1].Relation != ev[0].Relation || ev[2].Relation != ev[0].Relation {
		t.Fatalf("stream relation differs from the snapshot's: %s v%d", names(ev[1].Relation), ev[1].Relation.Version)
	}
	if got := names(ev[3].Relation); got != "id,n,twice=(n * 2),thrice=(n * 3)" || ev[3].Relation.Version != 2 {
		t.Fatalf("after ADD COLUMN: relation %s v%d", got, ev[3].Relation.Version)
	}
	for _, e := range ev {
		for _, c := range []string{"twice", "thrice", "note"} {
			if _, ok := e.After.Lookup(c); ok || slices.Contains(e.Changed, c) {
				t.Fatalf("%s event carries %s: %v changed %v", e.Op, c, e.After, e.Changed)
			}
		}
	}
	if ev[2].After.Get("n") != int64(3) {
		t.Fatalf("update: %v", ev[2].After)
	}
}
