package postgres

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/pgtest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m, &cluster)) }

// memState is an in-memory engine.State that survives a source's Close,
// like the state file does.
type memState struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newState() *memState { return &memState{m: map[string][]byte{}} }

func (s *memState) Get(k string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k], nil
}

func (s *memState) Put(k string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[k] = append([]byte(nil), v...)
	return nil
}

// db is one test's database.
type db struct {
	t    testing.TB
	dsn  string
	conn *pgx.Conn
}

func newDB(t testing.TB) *db {
	t.Helper()
	dsn := cluster.CreateDB(t)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &db{t: t, dsn: dsn, conn: conn}
}

func (d *db) exec(sql string, args ...any) {
	d.t.Helper()
	if _, err := d.conn.Exec(context.Background(), sql, args...); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
}

// open builds and opens a source named "src" on tables.
func (d *db) open(cfg dsl.PostgresSource, from change.Checkpoint, st engine.State) *Postgres {
	d.t.Helper()
	p, err := d.build(cfg)
	if err != nil {
		d.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Open(ctx, from, st); err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { p.Close() })
	return p
}

func (d *db) build(cfg dsl.PostgresSource) (*Postgres, error) {
	cfg.DSN = d.dsn
	if cfg.Slot == "" {
		cfg.Slot = "s"
	}
	s, err := New(engine.Build{Pipeline: engine.Pipeline{Name: "test"}}, &dsl.Source{Type: "postgres", Name: "src", Postgres: &cfg})
	if err != nil {
		return nil, err
	}
	return s.(*Postgres), nil
}

// readUntil reads batches until done says the collected events suffice.
func readUntil(t testing.TB, p *Postgres, done func([]change.Event) bool) []change.Event {
	t.Helper()
	var all []change.Event
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !done(all) {
		b, err := p.Read(ctx)
		if err != nil {
			t.Fatalf("Read after %d events: %v", len(all), err)
		}
		all = append(all, b...)
	}
	return all
}

// rows returns events of op kinds other than Mark.
func rows(events []change.Event) []change.Event {
	var out []change.Event
	for _, e := range events {
		if e.Op != change.Mark {
			out = append(out, e)
		}
	}
	return out
}

// countRows reports when n row events have been read. It counts in place:
// readUntil calls it after every Read, and copying the events read so far
// each time (rows) made a 50,000-row read quadratic, too slow under -race
// for TestSnapshotHoldsMaxRowsPerSecond.
func countRows(n int) func([]change.Event) bool {
	return func(ev []change.Event) bool {
		c := 0
		for i := range ev {
			if ev[i].Op != change.Mark {
				c++
			}
		}
		return c >= n
	}
}

// untilMarks reports when n commit Marks have been read.
func untilMarks(n int) func([]change.Event) bool {
	return func(ev []change.Event) bool {
		c := 0
		for i := range ev {
			if ev[i].Op == change.Mark {
				c++
			}
		}
		return c >= n
	}
}

// replay applies events to a map keyed by table and formatted key, as a keyed
// sink would: what a target table ends up holding.
func replay(target map[string]change.Row, events []change.Event) {
	for _, e := range events {
		switch e.Op {
		case change.Insert, change.Snapshot:
			target[e.Table+":"+keyString(e.Key)] = e.After
		case change.Update:
			old := e.Table + ":" + keyString(e.Before)
			row := target[old]
			delete(target, old)
			merged := map[string]any{}
			for k, v := range row.All() {
				merged[k] = v
			}
			for k, v := range e.After.All() { // absent columns keep the target's value
				merged[k] = v
			}
			target[e.Table+":"+keyString(e.Key)] = change.RowOf(merged)
		case change.Delete:
			delete(target, e.Table+":"+keyString(e.Key))
		case change.Truncate:
			clear(target)
		}
	}
}

// sameRow reports whether a and b hold the same columns with the same
// values (reflect.DeepEqual of their maps: rows of different Columns
// are not DeepEqual), a zero row only equal to another.
func sameRow(a, b change.Row) bool {
	return reflect.DeepEqual(a.Map(), b.Map())
}

// rowMaps returns the rows of a replayed target as maps, to compare
// with reflect.DeepEqual.
func rowMaps(target map[string]change.Row) map[string]map[string]any {
	out := make(map[string]map[string]any, len(target))
	for k, r := range target {
		out[k] = r.Map()
	}
	return out
}

func keyString(r change.Row) string {
	names := r.Names()
	sort.Strings(names)
	s := ""
	for _, n := range names {
		s += fmt.Sprintf("%s=%v;", n, r.Get(n))
	}
	return s
}

// tableRows reads a table through a snapshot-less path: a fresh source's
// snapshot decoder would be circular, so it uses the same text decoding
// on a plain query.
func (d *db) tableRows(tbl string, key ...string) map[string]change.Row {
	d.t.Helper()
	ctx := context.Background()
	conn, err := connect(ctx, d.dsn)
	if err != nil {
		d.t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, name := splitQualified(tbl)
	t, err := describeTable(ctx, conn, schema, name)
	if err != nil || t == nil {
		d.t.Fatalf("describe %s: %v", tbl, err)
	}
	types := newTypeRegistry()
	var oids []uint32
	for _, c := range t.Columns {
		oids = append(oids, c.TypeOID)
	}
	if err := types.ensure(ctx, conn, oids); err != nil {
		d.t.Fatal(err)
	}
	res := conn.PgConn().ExecParams(ctx, "SELECT * FROM "+t.ident(), nil, nil, nil, nil).Read()
	if res.Err != nil {
		d.t.Fatal(res.Err)
	}
	out := map[string]change.Row{}
	for _, vals := range res.Rows {
		m := map[string]any{}
		for i, c := range t.Columns {
			if vals[i] == nil {
				m[c.Name] = nil
				continue
			}
			v, err := types.decode(c.TypeOID, vals[i])
			if err != nil {
				d.t.Fatal(err)
			}
			m[c.Name] = v
		}
		k := map[string]any{}
		for _, n := range key {
			k[n] = m[n]
		}
		out[name+":"+keyString(change.RowOf(k))] = change.RowOf(m)
	}
	return out
}

func ackAll(t testing.TB, p *Postgres, e change.Event) {
	t.Helper()
	if err := p.Ack(context.Background(), change.Checkpoint{e.Position.Stream(): e.Position}); err != nil {
		t.Fatal(err)
	}
}

func mustConnect(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// waitSlotInactive waits (bounded) until no walsender holds slot.
func (d *db) waitSlotInactive(slot string) {
	d.t.Helper()
	for range 100 {
		var active bool
		if err := d.conn.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, slot).Scan(&active); err != nil || !active {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	d.t.Fatalf("slot %s still active", slot)
}
