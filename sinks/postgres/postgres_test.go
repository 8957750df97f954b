package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/stdlib"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	"github.com/sluice-cdc/sluice/sinks/sqltable/sqltabletest"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m, &cluster)) }

func target() sqltabletest.Target {
	return sqltabletest.Target{
		Name:       "postgres",
		New:        New,
		CreateDB:   func(t testing.TB) string { return cluster.CreateDB(t) },
		Open:       func(dsn string) (*sql.DB, error) { return sql.Open("pgx", dsn) },
		Text:       func(col string) string { return col + "::text" },
		Quote:      dialect{}.Quote,
		RowVersion: "xmin::text",
		KillOthers: "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
		Outage: func(t testing.TB) (string, func(), func()) {
			// pgtest restarts (fast shutdown, every client cut off) but
			// cannot stay down.
			restart := func() {
				if err := cluster.Restart(); err != nil {
					t.Fatal(err)
				}
			}
			return cluster.CreateDB(t), restart, func() {}
		},
		BadDSN: func(secret string) string {
			return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:1/x?connect_timeout=2", secret)
		},
	}
}

var _ = stdlib.GetDefaultDriver // registers the "pgx" database/sql driver

func TestConformance(t *testing.T) { sqltabletest.Run(t, target()) }

func BenchmarkUpsert(b *testing.B) { sqltabletest.Bench(b, target()) }

// prepared gives a test a database prepared by stmts and an open sink
// configured by cfg writing into it.
func prepared(t *testing.T, cfg dsl.TableSink, stmts ...string) (*sql.DB, engine.Sink) {
	t.Helper()
	cfg.DSN = cluster.CreateDB(t)
	db, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, stmt := range stmts {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	s, err := New(engine.Build{Pipeline: engine.Pipeline{Name: "p"}}, &dsl.Sink{Type: "postgres", Name: "t", Postgres: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return db, s
}

// textRows reads a query's rows, all columns text, as "a|b|c".
func textRows(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]string, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(vals, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func event(op change.Op, table string, off uint64, row change.Row) change.Event {
	rel := &change.Relation{Schema: "public", Table: table, Columns: []change.Column{{Name: "id", Type: "integer", Key: true}}}
	return change.Event{Op: op, Schema: "public", Table: table, Relation: rel, After: row, Key: change.RowOf(map[string]any{"id": row.Get("id")}),
		Position: change.Position{Source: "s", Offset: off}, Boundary: true}
}

// TestUserTypes writes into columns of an enum, a domain, an enum array
// and types in another schema, which travel as arrays of their own type.
func TestUserTypes(t *testing.T) {
	db, s := prepared(t, dsl.TableSink{Table: "app.people"},
		"CREATE SCHEMA app",
		"CREATE TYPE app.mood AS ENUM ('sad', 'happy')",
		"CREATE DOMAIN app.posint AS integer CHECK (VALUE > 0)",
		"CREATE TABLE app.people (id int PRIMARY KEY, mood app.mood, n app.posint, moods app.mood[], code char(2))")
	ctx := context.Background()
	good := []change.Event{
		event(change.Insert, "people", 1, change.RowOf(map[string]any{"id": int64(1), "mood": "happy", "n": int64(3), "moods": []any{"sad", "happy"}, "code": "ab"})),
		event(change.Insert, "people", 2, change.RowOf(map[string]any{"id": int64(2), "mood": nil, "n": nil, "moods": nil, "code": "c"})),
	}
	if err := s.Write(ctx, good); err != nil {
		t.Fatal(err)
	}
	var rej *engine.RejectError
	bad := event(change.Insert, "people", 3, change.RowOf(map[string]any{"id": int64(3), "mood": "angry", "n": int64(1), "moods": nil, "code": "x"}))
	if err := s.Write(ctx, []change.Event{bad}); !errors.As(err, &rej) || rej.Event.Position != bad.Position {
		t.Fatalf("a value outside the enum: want a RejectError, got %v", err)
	}
	negative := event(change.Insert, "people", 4, change.RowOf(map[string]any{"id": int64(4), "mood": "sad", "n": int64(-1), "moods": nil, "code": "x"}))
	if err := s.Write(ctx, []change.Event{negative}); !errors.As(err, &rej) || rej.Event.Position != negative.Position {
		t.Fatalf("a value the domain's check refuses: want a RejectError, got %v", err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{{Source: "s"}: {Source: "s", Offset: 4}}); err != nil {
		t.Fatal(err)
	}
	got := textRows(t, db, "SELECT id::text, coalesce(mood::text, 'NULL'), coalesce(n::text, 'NULL'), coalesce(moods::text, 'NULL'), code::text FROM app.people ORDER BY id")
	if want := []string{"1|happy|3|{sad,happy}|ab", "2|NULL|NULL|NULL|c"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestUpdateArrayColumn runs mode "update" on an array column, which
// cannot travel in unnest's arrays: the rows go in a typed VALUES list.
func TestUpdateArrayColumn(t *testing.T) {
	db, s := prepared(t, dsl.TableSink{Mode: "update", Columns: []string{"tags", "title"}},
		"CREATE TABLE posts (id int PRIMARY KEY, tags text[], title varchar(10))",
		"INSERT INTO posts VALUES (1, '{a}', 'one'), (2, NULL, 'two')")
	ctx := context.Background()
	evs := []change.Event{
		event(change.Update, "posts", 1, change.RowOf(map[string]any{"id": int64(1), "tags": []any{"a", "b c"}, "title": "one"})),
		event(change.Update, "posts", 2, change.RowOf(map[string]any{"id": int64(2), "tags": []any{"x"}, "title": "second"})),
		event(change.Update, "posts", 3, change.RowOf(map[string]any{"id": int64(2), "tags": []any{"x"}, "title": "much too long"})),
	}
	var rej *engine.RejectError
	if err := s.Write(ctx, evs); !errors.As(err, &rej) || rej.Event.Position != evs[2].Position {
		t.Fatalf("want a RejectError for the too-long title, got %v", err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{{Source: "s"}: {Source: "s", Offset: 3}}); err != nil {
		t.Fatal(err)
	}
	got := textRows(t, db, "SELECT id::text, tags::text, title FROM posts ORDER BY id")
	if want := []string{`1|{a,"b c"}|one`, "2|{x}|second"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}
