package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestDropThenRunStartsOver is issue 14's "starting over that works": a
// pipeline ran and committed, then `sluice drop FILE` and `sluice run
// FILE` must take a new snapshot and stream on, into MariaDB and into
// PostgreSQL. The checkpoint each sink keeps in its target used to make
// that run refuse to start (it would resume from a position the dropped
// slot no longer serves), so drop removes it, and the run after it gives
// no warning about a missing slot.
func TestDropThenRunStartsOver(t *testing.T) {
	for _, kind := range []string{"mysql", "postgres"} {
		t.Run(kind, func(t *testing.T) {
			cl := startCluster(t)
			src := cl.CreateDB(t)
			target := src
			if kind == "mysql" {
				srv := startMariaDB(t)
				target = srv.CreateDB(t)
			}
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			exec := func(q string) {
				t.Helper()
				if _, err := conn.Exec(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			exec(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
				INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 500) g`)
			table := "items"
			if kind == "postgres" {
				exec(`CREATE SCHEMA tgt`)
				table = "tgt.items"
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "again.hcl")
			pipeline := fmt.Sprintf(`pipeline "again" {
  state = %q
}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.items"]
  heartbeat = "1s"
}

sink %q "out" {
  from        = source.app
  dsn         = %q
  table       = %q
  auto_create = true
}
`, filepath.Join(dir, "again.db"), src, kind, target, table)
			if err := os.WriteFile(file, []byte(pipeline), 0o644); err != nil {
				t.Fatal(err)
			}
			read := targetReader(t, kind, target, table)

			run := startRun(t, file)
			waitRows(t, read, src, conn, run)
			run.stop(t)

			// Changes while the pipeline is stopped, then a deliberate drop.
			// (Rows deleted now would stay in the target: a new snapshot
			// writes the rows there are, it removes none. Issue 10's
			// re-sync is what removes them.)
			exec(`INSERT INTO items SELECT g, 'late ' || g FROM generate_series(501, 600) g;
				UPDATE items SET name = 'changed' WHERE id <= 10`)
			var out bytes.Buffer
			if code := (&cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}).drop([]string{file, "--yes"}); code != exitOK ||
				!strings.Contains(out.String(), "removed checkpoint of sink out in its target") {
				t.Fatalf("drop --yes: exit %d\n%s", code, out.String())
			}

			run = startRun(t, file)
			waitRows(t, read, src, conn, run)
			exec(`INSERT INTO items VALUES (1000, 'streamed')`)
			waitRows(t, read, src, conn, run)
			run.stop(t)
			if logs := run.out.String(); strings.Contains(logs, "missing although") {
				t.Errorf("the run after a drop warns about a missing slot:\n%s", logs)
			}
		})
	}
}

// targetReader returns a function reading the target table's rows as
// "id|name" lines in id order, as the target renders them.
func targetReader(t *testing.T, kind, dsn, table string) func() ([]string, error) {
	driver := "mysql"
	if kind == "postgres" {
		driver = "pgx"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func() ([]string, error) {
		rows, err := db.Query("SELECT id, name FROM " + table + " ORDER BY id")
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				return nil, err
			}
			out = append(out, id+"|"+name)
		}
		return out, rows.Err()
	}
}

// waitRows waits until the target holds exactly the source's rows.
func waitRows(t *testing.T, read func() ([]string, error), src string, conn *pgx.Conn, run *sluiceProc) {
	t.Helper()
	var want []string
	rows, err := conn.Query(context.Background(), "SELECT id::text, name FROM items ORDER BY items.id")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			t.Fatal(err)
		}
		want = append(want, id+"|"+name)
	}
	if rows.Close(); rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	deadline := time.Now().Add(60 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got, err = read(); err == nil && strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		select {
		case err := <-run.done:
			t.Fatalf("sluice run ended: %v\n%s", err, run.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
	first := 0
	for first < min(len(got), len(want)) && got[first] == want[first] {
		first++
	}
	t.Fatalf("the target does not equal the source after 60s (read error %v): %d rows, want %d; first difference at row %d: got %q, want %q\n%s",
		err, len(got), len(want), first, got[min(first, max(len(got)-1, 0))], want[min(first, len(want)-1)], run.out)
}
