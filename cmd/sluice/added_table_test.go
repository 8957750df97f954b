package main

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestTableAddedLaterReachesEverySink is issue 9's "tables added later
// reach every sink, each exactly once, whatever each sink's own
// progress": two sinks of one source, one of them held back by a lock on
// its target and the process killed, so that the other has committed
// further; then a table is added to `tables`. Its copy used to be
// numbered after the slowest sink's position, which the faster sink had
// committed past, so the faster sink skipped every row of it.
func TestTableAddedLaterReachesEverySink(t *testing.T) {
	cl := startCluster(t)
	src, fast, slow := cl.CreateDB(t), cl.CreateDB(t), cl.CreateDB(t)
	mustExecPG(t, src, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 1000) g;
		CREATE TABLE extra (id bigint PRIMARY KEY, note text NOT NULL);
		INSERT INTO extra SELECT g, 'extra ' || g FROM generate_series(1, 500) g`)
	dir := t.TempDir()
	pipeline := func(tables string) string {
		return writeFile(t, dir, "added.hcl", fmt.Sprintf(`pipeline "added" {
  state = %q
}

source "postgres" "app" {
  dsn       = %q
  tables    = [%s]
  heartbeat = "1s"
}

sink "postgres" "fast" {
  from        = source.app
  dsn         = %q
  auto_create = true
}

sink "postgres" "slow" {
  from        = source.app
  dsn         = %q
  auto_create = true
}
`, filepath.Join(dir, "added.db"), src, tables, fast, slow))
	}
	count := func(dsn, table string) int64 {
		return scalar[int64](t, dsn, "SELECT count(*) FROM "+table)
	}
	waitCount := func(run *sluiceProc, dsn, table string, n int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if scalar[bool](t, dsn, "SELECT to_regclass('"+table+"') IS NOT NULL") && count(dsn, table) == n {
				return
			}
			select {
			case err := <-run.done:
				t.Fatalf("sluice run ended: %v\n%s", err, run.out)
			case <-time.After(100 * time.Millisecond):
			}
		}
		t.Fatalf("%s holds %d rows after 60s, want %d\n%s", table, count(dsn, table), n, run.out)
	}

	run := startRun(t, pipeline(`"public.items"`))
	waitCount(run, fast, "items", 1000)
	waitCount(run, slow, "items", 1000)
	// Hold the slow sink back while the fast one commits 100 more rows,
	// then kill the process: the sinks' positions differ.
	release := lockTarget(t, slow, "items")
	mustExecPG(t, src, `INSERT INTO items SELECT g, 'late ' || g FROM generate_series(1001, 1100) g`)
	waitCount(run, fast, "items", 1100)
	run.cmd.Process.Kill()
	<-run.done
	release()
	if n := count(slow, "items"); n != 1000 {
		t.Fatalf("the slow sink holds %d rows at the kill, want 1000: the test did not make the sinks' positions differ", n)
	}

	run = startRun(t, pipeline(`"public.items", "public.extra"`))
	for _, dsn := range []string{fast, slow} {
		waitCount(run, dsn, "items", 1100)
		waitCount(run, dsn, "extra", 500)
	}
	mustExecPG(t, src, `INSERT INTO extra VALUES (501, 'streamed')`)
	for _, dsn := range []string{fast, slow} {
		waitCount(run, dsn, "extra", 501)
		if got := scalar[string](t, dsn, "SELECT string_agg(id || '=' || note, ',' ORDER BY id) FROM extra"); got != scalar[string](t, src, "SELECT string_agg(id || '=' || note, ',' ORDER BY id) FROM extra") {
			t.Errorf("extra differs from the source in %s", dsn)
		}
	}
	run.stop(t)
}

// mustExecPG runs SQL on a PostgreSQL database.
func mustExecPG(t *testing.T, dsn, sql string) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
