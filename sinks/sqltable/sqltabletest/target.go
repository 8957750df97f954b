package sqltabletest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Target is one kind of database under test.
type Target struct {
	// Name is the sink type: "mysql" or "postgres"; expectations that
	// differ between targets are keyed by it.
	Name string
	// New is the sink's constructor (components.Kinds's signature).
	New func(b engine.Build, s *dsl.Sink) (engine.Sink, error)
	// CreateDB returns the DSN of a database of the test's own.
	CreateDB func(t testing.TB) string
	// Open opens a reader on dsn that returns every value as text
	// ([]byte or string) when selected through Text.
	Open func(dsn string) (*sql.DB, error)
	// Text returns an SQL expression reading quoted column col as text.
	Text func(col string) string
	// Quote quotes an identifier.
	Quote func(ident string) string
	// KillOthers is a statement that ends every other session on the
	// current database, as a restart of the target would.
	KillOthers string
	// Outage gives the target-outage case a database on a server it
	// may take down: down stops the server (or restarts it, where the
	// harness can only restart), up brings it back.
	Outage func(t testing.TB) (dsn string, down, up func())
	// RowVersion is an SQL expression that changes whenever a row is
	// written, even with equal values ("xmin::text"); "" where the
	// server itself never rewrites an identical row (MySQL).
	RowVersion string
	// BadDSN returns a DSN with password secret that cannot connect.
	BadDSN func(secret string) string
}

// block builds the dsl block of a sink named "t" writing to dsn.
func (tg Target) block(dsn string, c dsl.TableSink) *dsl.Sink {
	c.DSN = dsn
	s := &dsl.Sink{Type: tg.Name, Name: "t"}
	if tg.Name == "mysql" {
		s.MySQL = &c
	} else {
		s.Postgres = &c
	}
	return s
}

// env is one test's database and sink.
type env struct {
	t    *testing.T
	tg   Target
	dsn  string
	db   *sql.DB
	cfg  dsl.TableSink
	sink engine.Sink
	// pending are the events written since the last flush, replayed
	// after a retriable error the way the engine does.
	pending []change.Event
	cp      change.Checkpoint
}

func newEnv(t *testing.T, tg Target, cfg dsl.TableSink) *env {
	t.Helper()
	dsn := tg.CreateDB(t)
	db, err := tg.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &env{t: t, tg: tg, dsn: dsn, db: db, cfg: cfg}
	e.open()
	t.Cleanup(func() { e.sink.Close() })
	return e
}

var build = engine.Build{Pipeline: engine.Pipeline{Name: "conformance"}}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// open (re)builds and opens the sink, returning its checkpoint.
func (e *env) open() change.Checkpoint {
	e.t.Helper()
	if e.sink != nil {
		e.sink.Close()
	}
	s, err := e.tg.New(build, e.tg.block(e.dsn, e.cfg))
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	e.sink = s
	cp, err := s.Open(ctx(e.t), nil)
	if err != nil {
		e.t.Fatalf("Open: %v", err)
	}
	e.cp = cp
	e.pending = nil
	return cp
}

// write passes events to Write; after a retriable error it reopens the
// sink and replays what was written since the last flush, as the engine
// does. It returns permanent errors and rejects.
func (e *env) write(evs ...change.Event) error {
	e.t.Helper()
	e.pending = append(e.pending, evs...)
	err := e.sink.Write(ctx(e.t), evs)
	for try := 0; err != nil && try < 3; try++ {
		var rej *engine.RejectError
		if errors.As(err, &rej) || engine.IsPermanent(err) {
			return err
		}
		e.t.Logf("retriable: %v", err)
		pending := e.pending
		e.open()
		e.pending = pending
		err = e.sink.Write(ctx(e.t), pending)
	}
	return err
}

func (e *env) mustWrite(evs ...change.Event) {
	e.t.Helper()
	if err := e.write(evs...); err != nil {
		e.t.Fatalf("Write: %v", err)
	}
}

// flush commits with a checkpoint advanced past every pending event.
func (e *env) flush() {
	e.t.Helper()
	for _, ev := range e.pending {
		e.cp.Advance(ev.Position)
	}
	if _, err := e.sink.Flush(ctx(e.t), e.cp.Clone()); err != nil {
		e.t.Fatalf("Flush: %v", err)
	}
	e.pending = nil
}

// exec runs DDL or DML on the test database directly.
func (e *env) exec(stmt string) {
	e.t.Helper()
	if _, err := e.db.ExecContext(ctx(e.t), stmt); err != nil {
		e.t.Fatalf("%s: %v", stmt, err)
	}
}

// rows returns the rows of table, ordered by the first column, as
// "v1|v2|...", NULL for nulls.
func (e *env) rows(table string, cols ...string) []string {
	e.t.Helper()
	var out []string
	for _, r := range e.tg.TextRows(e.t, e.db, table, cols, e.tg.Quote(table)+"."+e.tg.Quote(cols[0])) {
		out = append(out, strings.Join(r, "|"))
	}
	return out
}

// TextRows reads cols of table from db as the database renders them as
// text, "NULL" for nulls, ordered by orderBy (an SQL expression; "" for
// the table's order): what a target holds, read without sluice's
// encoders.
func (tg Target) TextRows(t testing.TB, db *sql.DB, table string, cols []string, orderBy string) [][]string {
	t.Helper()
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = tg.Text(tg.Quote(c))
	}
	q := fmt.Sprintf("SELECT %s FROM %s", strings.Join(exprs, ", "), tg.Quote(table))
	if orderBy != "" {
		q += " ORDER BY " + orderBy
	}
	rs, err := db.QueryContext(ctx(t), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	var out [][]string
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
				parts[i] = "NULL"
			case []byte:
				parts[i] = string(v)
			default:
				parts[i] = fmt.Sprint(v)
			}
		}
		out = append(out, parts)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (e *env) expectRows(table string, cols []string, want ...string) {
	e.t.Helper()
	got := e.rows(table, cols...)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.t.Errorf("%s rows:\n got %q\nwant %q", table, got, want)
	}
}
