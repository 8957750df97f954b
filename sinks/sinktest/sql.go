package sinktest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable/sqltabletest"
)

// SQLTable is the Factory of a SQL table sink (mysql, postgres) in its
// default configuration with auto_create: each case gets a database of
// its own (tg.CreateDB) and reads it back as text through tg.Open and
// tg.Text. The sink rejects a note longer than the 8 characters of its
// character varying(8) column, and empties the table on a truncate.
func SQLTable(tg sqltabletest.Target) Factory {
	return Factory{
		Name: tg.Name,
		Kind: Table,
		NewTarget: func(t *testing.T) *Target {
			dsn := tg.CreateDB(t)
			db, err := tg.Open(dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			cfg := dsl.TableSink{DSN: dsn, AutoCreate: true}
			block := &dsl.Sink{Type: tg.Name, Name: "acceptance"}
			if tg.Name == "mysql" {
				block.MySQL = &cfg
			} else {
				block.Postgres = &cfg
			}
			return &Target{
				New:  func(b engine.Build) (engine.Sink, error) { return tg.New(b, block) },
				Rows: func(t *testing.T, table string) []Row { return sqlRows(t, tg, db, table) },
			}
		},
		Reject: func(e change.Event) change.Event {
			after := e.After.Clone()
			after.Set("note", "far too long for eight")
			e.After = after
			return e
		},
		Truncate: TruncateEmpties,
	}
}

// sqlRows reads every row of table in a session of its own (so committed
// rows only), every column as the database's text; none when there is no
// such table in the database's current schema.
func sqlRows(t *testing.T, tg sqltabletest.Target, db *sql.DB, table string) []Row {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := "current_schema()"
	if tg.Name == "mysql" {
		schema = "DATABASE()"
	}
	var n int
	q := "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = " + schema + " AND table_name = '" + table + "'"
	if err := db.QueryRowContext(ctx, q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if n == 0 {
		return nil
	}
	rs, err := db.QueryContext(ctx, "SELECT * FROM "+tg.Quote(table)+" WHERE 1 = 0")
	if err != nil {
		t.Fatal(err)
	}
	cols, err := rs.Columns()
	rs.Close()
	if err != nil {
		t.Fatal(err)
	}
	var out []Row
	for _, vals := range tg.TextRows(t, db, table, cols, "") {
		r := Row{}
		for i, v := range vals {
			r[cols[i]] = v // "NULL" for nulls: Null
		}
		out = append(out, r)
	}
	return out
}
