package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/observe"
)

// resyncPipeline copies public.items into MariaDB (upsert) and logs every
// event to a JSON Lines file (append).
func resyncPipeline(t *testing.T, dir, src, target, snapshot string) string {
	return writeFile(t, dir, "resync.hcl", fmt.Sprintf(`pipeline "resync" {
  state = %q
}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.items"]
  snapshot  = %q
  heartbeat = "1s"
}

sink "mysql" "db" {
  from        = source.app
  dsn         = %q
  auto_create = true
}

sink "file" "log" {
  from = source.app
  path = %q
}
`, filepath.Join(dir, "resync.db"), src, snapshot, target, filepath.Join(dir, "log.jsonl")))
}

// resyncSetup starts PostgreSQL and MariaDB, fills public.items with n
// rows and writes resyncPipeline with the snapshot mode.
func resyncSetup(t *testing.T, n int, snapshot string) (src, target, dir, file string) {
	t.Helper()
	cl := startCluster(t)
	srv := startMariaDB(t)
	src, target = cl.CreateDB(t), srv.CreateDB(t)
	mustExecPG(t, src, fmt.Sprintf(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL);
		INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, %d) g; ANALYZE items`, n))
	dir = t.TempDir()
	return src, target, dir, resyncPipeline(t, dir, src, target, snapshot)
}

// churn changes random rows of items until stop, one change per
// transaction: updates, deletes, inserts and primary-key moves. It
// counts the changes that touched a row: each is one streamed event.
func churn(t *testing.T, dsn string, n int, stop <-chan struct{}, changes *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(ctx)
		next := n + 1
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := 1 + rand.IntN(n)
			var sql string
			var args []any
			switch i % 4 {
			case 0:
				sql, args = "UPDATE items SET name = name || '+', n = n + 1 WHERE id = $1", []any{id}
			case 1:
				sql, args = "DELETE FROM items WHERE id = $1", []any{id}
			case 2:
				sql, args = "INSERT INTO items VALUES ($1, 'back', 0) ON CONFLICT DO NOTHING", []any{id}
			case 3:
				sql, args = "UPDATE items SET id = $1 WHERE id = $2", []any{next, id}
				next++
			}
			tag, err := conn.Exec(ctx, sql, args...)
			if err != nil {
				t.Error(err)
				return
			}
			changes.Add(tag.RowsAffected())
			time.Sleep(time.Millisecond)
		}
	}()
	return &wg
}

// resyncJob returns the incremental snapshot of request id prefix from
// the pipeline's status, nil while there is none.
func resyncJob(st observe.Status, prefix string) *observe.Resync {
	for _, s := range st.Sources {
		for i := range s.Resync {
			if strings.HasPrefix(s.Resync[i].Request, prefix) {
				return &s.Resync[i]
			}
		}
	}
	return nil
}

// TestSnapshotCommandRecopiesWhileWritingAndKilled is issue 10's
// acceptance 1: a running PostgreSQL → MariaDB pipeline whose target was
// damaged; `sluice snapshot --table` re-copies the 200,000-row table
// while a writer inserts, updates, deletes and moves keys, and sluice is
// killed -9 twice during the copy. The target ends equal to the source
// row for row (both rendered as text by their own database), and the
// append-mode file sink holds every streamed change exactly once.
func TestSnapshotCommandRecopiesWhileWritingAndKilled(t *testing.T) {
	const n = 200_000
	src, target, dir, file := resyncSetup(t, n, "initial")
	my := openSQL(t, "mysql", target)
	pg := openSQL(t, "pgx", src)
	run := startRun(t, file)
	for deadline := time.Now().Add(2 * time.Minute); scalarSQL(t, my, "SELECT count(*) FROM items") != fmt.Sprint(n); {
		if time.Now().After(deadline) {
			t.Fatalf("the initial copy did not reach the target\n%s", run.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Damage the target behind sluice's back.
	if _, err := my.Exec("DELETE FROM items WHERE id % 97 = 0"); err != nil {
		t.Fatal(err)
	}
	if _, err := my.Exec("UPDATE items SET name = 'corrupt' WHERE id % 89 = 0"); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var changes atomic.Int64
	writes := churn(t, src, n, stop, &changes)
	code, out, errOut := runCLI(t, "snapshot", file, "--table", "public.items")
	if code != 0 || !strings.Contains(out, "took the copy") {
		t.Fatalf("sluice snapshot: exit %d\n%s%s", code, out, errOut)
	}
	for kill, at := range []float64{25, 60} {
		waitLong(t, file, fmt.Sprintf("%.0f%% of the copy", at), func(st observe.Status) bool {
			j := resyncJob(st, "snapshot-")
			return j != nil && j.Percent != nil && *j.Percent >= at
		})
		run.cmd.Process.Kill()
		<-run.done
		t.Logf("kill %d at %.0f%% of the copy, %d changes so far", kill+1, at, changes.Load())
		run = startRun(t, file)
	}
	waitLong(t, file, "the copy's end", func(st observe.Status) bool {
		j := resyncJob(st, "snapshot-")
		return j != nil && j.Done
	})
	close(stop)
	writes.Wait()
	waitTargetEqual(t, pg, my, "SELECT id, name, n FROM items ORDER BY id", run)
	run.stop(t)

	// The log: every streamed change once, every position once, and the
	// copy's rows as snapshot events.
	streamed, copied := readLog(t, filepath.Join(dir, "log.jsonl"))
	if int64(streamed) != changes.Load() {
		t.Errorf("the append sink holds %d streamed changes, the writer made %d", streamed, changes.Load())
	}
	if copied < 2*n-n/10 {
		t.Errorf("the append sink holds %d snapshot rows, want about %d (initial copy and re-copy)", copied, 2*n)
	}
	t.Logf("%d streamed changes, %d snapshot rows", streamed, copied)
}

// readLog counts a native JSON Lines log's streamed changes and snapshot
// rows, failing on a position seen twice.
func readLog(t *testing.T, path string) (streamed, copied int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e struct {
			Op        string `json:"op"`
			Partition string `json:"partition"`
			Position  string `json:"position"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%v: %s", err, sc.Text())
		}
		at := e.Partition + " " + e.Position // a parallel snapshot's readers number apart
		if seen[at] {
			t.Fatalf("position %s is in the log twice: %s", at, sc.Text())
		}
		seen[at] = true
		if e.Op == "snapshot" {
			copied++
		} else {
			streamed++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return streamed, copied
}

// waitLong is waitFor with room for a copy of many rows.
func waitLong(t *testing.T, file, what string, ok func(observe.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := tryStatus(file)
		if err == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("status never showed %s; last (%v):\n%s", what, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scalarSQL returns one value as the database renders it.
func scalarSQL(t *testing.T, db *sql.DB, query string) string {
	t.Helper()
	var v string
	if err := db.QueryRow(query).Scan(&v); err != nil {
		return err.Error()
	}
	return v
}

// TestIncrementalInitialCopyKilled: snapshot = "incremental" copies the
// table while a writer changes it and sluice is killed -9 twice during
// the copy; the target ends equal to the source, and the append sink
// holds every streamed change once.
func TestIncrementalInitialCopyKilled(t *testing.T) {
	const n = 100_000
	src, target, dir, file := resyncSetup(t, n, "incremental")
	run := startRun(t, file)
	// The writer starts once the slot exists: what commits before it is
	// in the copy, not in the stream.
	waitLong(t, file, "the copy's start", func(st observe.Status) bool { return resyncJob(st, "initial") != nil })
	stop := make(chan struct{})
	var changes atomic.Int64
	writes := churn(t, src, n, stop, &changes)
	for kill, at := range []float64{20, 55} {
		waitLong(t, file, fmt.Sprintf("%.0f%% of the copy", at), func(st observe.Status) bool {
			j := resyncJob(st, "initial")
			return j != nil && j.Percent != nil && *j.Percent >= at
		})
		run.cmd.Process.Kill()
		<-run.done
		t.Logf("kill %d at %.0f%% of the copy, %d changes so far", kill+1, at, changes.Load())
		run = startRun(t, file)
	}
	waitLong(t, file, "the copy's end", func(st observe.Status) bool {
		j := resyncJob(st, "initial")
		return j != nil && j.Done
	})
	close(stop)
	writes.Wait()
	waitTargetEqual(t, openSQL(t, "pgx", src), openSQL(t, "mysql", target), "SELECT id, name, n FROM items ORDER BY id", run)
	run.stop(t)
	streamed, copied := readLog(t, filepath.Join(dir, "log.jsonl"))
	if int64(streamed) != changes.Load() {
		t.Errorf("the append sink holds %d streamed changes, the writer made %d", streamed, changes.Load())
	}
	if copied < n-n/10 || copied > n+n/10 {
		t.Errorf("the append sink holds %d snapshot rows, want about %d", copied, n)
	}
}

// TestSnapshotRequestWhileStoppedWithWhereForOneSink: a request filed
// while the pipeline is stopped runs at its next start; --where copies
// only the rows it selects, and --sink only into that sink.
func TestSnapshotRequestWhileStoppedWithWhereForOneSink(t *testing.T) {
	_, target, dir, file := resyncSetup(t, 5000, "initial")
	my := openSQL(t, "mysql", target)
	run := startRun(t, file)
	for deadline := time.Now().Add(time.Minute); scalarSQL(t, my, "SELECT count(*) FROM items") != "5000"; {
		if time.Now().After(deadline) {
			t.Fatalf("the initial copy did not reach the target\n%s", run.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	run.stop(t)
	if _, err := my.Exec("DELETE FROM items WHERE id <= 1000"); err != nil {
		t.Fatal(err)
	}
	logged := lineCount(filepath.Join(dir, "log.jsonl"))

	code, out, errOut := runCLI(t, "snapshot", file, "--table", "public.items", "--where", "id <= 500", "--sink", "db")
	if code != 0 || !strings.Contains(out, "not running") {
		t.Fatalf("sluice snapshot: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "snapshot", file, "--table", "public.items", "--where", "nope > 1"); code == 0 || !strings.Contains(errOut, "nope") {
		t.Errorf("a predicate naming an unknown column was accepted (exit %d): %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "snapshot", file, "--table", "public.items", "--sink", "missing"); code == 0 || !strings.Contains(errOut, `sink "missing"`) {
		t.Errorf("an unknown sink was accepted (exit %d): %s", code, errOut)
	}
	run = startRun(t, file)
	waitLong(t, file, "the copy's end", func(st observe.Status) bool {
		j := resyncJob(st, "snapshot-")
		return j != nil && j.Done
	})
	for deadline := time.Now().Add(time.Minute); scalarSQL(t, my, "SELECT count(*) FROM items") != "4500"; {
		if time.Now().After(deadline) {
			t.Fatalf("the target holds %s rows, want 4500 (ids 1..500 copied again, 501..1000 not)\n%s", scalarSQL(t, my, "SELECT count(*) FROM items"), run.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := scalarSQL(t, my, "SELECT concat(min(id), '-', max(id)) FROM items WHERE id <= 1000"); got != "1-500" {
		t.Errorf("the copied ids are %s, want 1-500", got)
	}
	code, out, _ = runCLI(t, "status", file)
	if code != 0 || !strings.Contains(out, "incremental snapshots of source app") || !strings.Contains(out, "public.items: done, 500 rows") || !strings.Contains(out, "for sink db") {
		t.Errorf("status does not show the copy (exit %d):\n%s", code, out)
	}
	run.stop(t)
	if got := lineCount(filepath.Join(dir, "log.jsonl")); got != logged {
		t.Errorf("the file sink received %d lines of a copy for sink db", got-logged)
	}
}

// waitTargetEqual waits until the target renders the query's rows as the
// source does, and fails naming the first row that differs.
func waitTargetEqual(t *testing.T, source, target *sql.DB, query string, run *sluiceProc) {
	t.Helper()
	want := renderedRows(t, source, query)
	deadline := time.Now().Add(90 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got = tryRenderedRows(target, query); strings.Join(got, "\n") == strings.Join(want, "\n") {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	first := 0
	for first < min(len(got), len(want)) && got[first] == want[first] {
		first++
	}
	t.Fatalf("the target differs from the source: %d rows, want %d; first difference at row %d: %q, want %q\n%s", len(got), len(want), first,
		got[min(first, max(len(got)-1, 0))], want[min(first, len(want)-1)], run.out)
}
