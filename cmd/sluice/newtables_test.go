package main

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestTableCreatedByMigrationReachesTarget is issue 18's acceptance 3:
// a running `sluice run` with tables = ["public.*"] into MariaDB with
// auto_create; a migration creates a table and fills it (in its own
// transaction, then more changes); the target gets the table with every
// row, without a restart. Then a table created while sluice is stopped
// arrives when it starts again.
func TestTableCreatedByMigrationReachesTarget(t *testing.T) {
	cl := startCluster(t)
	src := cl.CreateDB(t)
	srv := startMariaDB(t)
	target := srv.CreateDB(t)
	mustExecPG(t, src, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 10) g`)
	dir := t.TempDir()
	file := writeFile(t, dir, "migrate.hcl", fmt.Sprintf(`pipeline "migrate" {
  state = %q
}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.*"]
  heartbeat = "1s"
}

sink "mysql" "out" {
  from        = source.app
  dsn         = %q
  auto_create = true
}
`, filepath.Join(dir, "migrate.db"), src, target))

	pg, my := openSQL(t, "pgx", src), openSQL(t, "mysql", target)
	// The rows as each database renders them, one string a row.
	pgRows := func(table string) []string {
		return renderedRows(t, pg, `SELECT id::text, note, amount::text, placed::text FROM `+table+` ORDER BY `+table+`.id`)
	}
	same := func(run *sluiceProc, table string) {
		t.Helper()
		want := pgRows(table)
		var got []string
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			got = tryRenderedRows(my, `SELECT CAST(id AS CHAR), note, CAST(amount AS CHAR), CAST(placed AS CHAR) FROM `+table+` ORDER BY id`)
			if slices.Equal(got, want) {
				return
			}
			select {
			case err := <-run.done:
				t.Fatalf("sluice run ended: %v\n%s", err, run.out)
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Fatalf("target %s holds\n%v\nwant the source's\n%v\n%s", table, got, want, run.out)
	}

	run := startRun(t, file)
	deadline := time.Now().Add(15 * time.Second)
	for len(tryRenderedRows(my, `SELECT CAST(id AS CHAR) FROM items`)) != 10 {
		if time.Now().After(deadline) {
			t.Fatalf("the snapshot of items never reached the target\n%s", run.out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The migration: created and filled in one transaction, then changed.
	mustExecPG(t, src, `BEGIN;
		CREATE TABLE orders (id bigint PRIMARY KEY, note text NOT NULL, amount numeric(10,2), placed date);
		INSERT INTO orders SELECT g, 'order ' || g, g * 1.25, date '2026-01-01' + g FROM generate_series(1, 200) g;
		COMMIT`)
	mustExecPG(t, src, `INSERT INTO orders VALUES (201, 'late', NULL, NULL)`)
	mustExecPG(t, src, `UPDATE orders SET note = 'changed', amount = 0.5 WHERE id % 10 = 0`)
	mustExecPG(t, src, `DELETE FROM orders WHERE id % 7 = 0`)
	same(run, "orders")
	run.stop(t)

	// Created and filled while sluice is stopped.
	mustExecPG(t, src, `CREATE TABLE refunds (id bigint PRIMARY KEY, note text NOT NULL, amount numeric(10,2), placed date);
		INSERT INTO refunds SELECT g, 'refund ' || g, g, date '2026-06-01' FROM generate_series(1, 30) g;
		UPDATE refunds SET note = 'partial' WHERE id = 3`)
	mustExecPG(t, src, `INSERT INTO orders VALUES (300, 'while stopped', 3.00, '2026-12-03')`)
	run = startRun(t, file)
	same(run, "refunds")
	same(run, "orders")
	if strings.Contains(run.out.String(), "tables added since the last snapshot are copied first") {
		t.Errorf("the table created while stopped was copied as well as streamed:\n%s", run.out)
	}
	run.stop(t)
}

func openSQL(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func renderedRows(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := queryRendered(db, query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return rows
}

// tryRenderedRows is renderedRows with an error (a table not created
// yet) as no rows.
func tryRenderedRows(db *sql.DB, query string) []string {
	rows, _ := queryRendered(db, query)
	return rows
}

func queryRendered(db *sql.DB, query string) ([]string, error) {
	rows, err := db.Query(query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = "NULL"
			if v.Valid {
				parts[i] = v.String
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out, rows.Err()
}
