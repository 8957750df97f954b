package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/observe"
	"github.com/sluice-cdc/sluice/verify"
)

// repairJobs returns the incremental snapshots `sluice verify --repair`
// requested, and the rows they re-read.
func repairJobs(st observe.Status) (jobs []observe.Resync, rows int64) {
	for _, s := range st.Sources {
		for _, j := range s.Resync {
			if strings.HasPrefix(j.Request, "verify-") {
				jobs = append(jobs, j)
				rows += j.RowsDone
			}
		}
	}
	return jobs, rows
}

// sameRows fails unless the target holds the source's rows, row for row
// (each rendered as text by its own database), within a minute.
func sameRows(t *testing.T, srcDSN, targetDSN string) {
	t.Helper()
	const q = "SELECT id, name, n FROM items ORDER BY id"
	want := renderedRows(t, openSQL(t, "pgx", srcDSN), q)
	my := openSQL(t, "mysql", targetDSN)
	var got []string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if got = tryRenderedRows(my, q); slices.Equal(got, want) {
			return
		}
	}
	first := 0
	for first < min(len(got), len(want)) && got[first] == want[first] {
		first++
	}
	t.Fatalf("the target differs from the source: %d rows, want %d; first difference at row %d", len(got), len(want), first)
}

// TestVerifyRepairRecopiesOnlyTheDifferingRanges is the acceptance test
// of `sluice verify --repair`: a running PostgreSQL → MariaDB pipeline
// copied 49,990 rows; behind its back, target rows are deleted and
// corrupted and rows the source lacks are inserted, in four narrow key
// regions (one across a chunk boundary, one after the source's last
// key). `verify --repair --chunk 1000` has the pipeline copy again only
// the differing chunks' ranges, for that sink only, deleting the
// target-only keys: the rows re-read are those ranges' rows (4,995, a
// tenth of the table), a following `sluice verify` exits 0, and the
// target equals the source row for row. Stopped, the pipeline takes the
// repair at its next start, and verify exits 1 meanwhile.
func TestVerifyRepairRecopiesOnlyTheDifferingRanges(t *testing.T) {
	const n = 49_990
	cl := startCluster(t)
	srv := startMariaDB(t)
	src, target := cl.CreateDB(t), srv.CreateDB(t)
	// Keys 1-50,000 but for a gap at 40,001-40,010.
	mustExecPG(t, src, `CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, n int NOT NULL);
		INSERT INTO items SELECT g, 'item ' || g, g FROM generate_series(1, 50000) g WHERE g NOT BETWEEN 40001 AND 40010; ANALYZE items`)
	dir := t.TempDir()
	file := resyncPipeline(t, dir, src, target, "initial")
	my := openSQL(t, "mysql", target)
	run := startRun(t, file)
	for deadline := time.Now().Add(2 * time.Minute); scalarSQL(t, my, "SELECT count(*) FROM items") != fmt.Sprint(n); {
		if time.Now().After(deadline) {
			t.Fatalf("the initial copy did not reach the target\n%s", run.out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	sameRows(t, src, target)
	if code, out, errOut := runCLI(t, "verify", file, "--chunk", "1000"); code != 0 {
		t.Fatalf("verify after the initial copy: exit %d\n%s%s", code, out, errOut)
	}

	// Chunks of 1,000 source keys differ: (10000, 11000], (31000, 32000]
	// and (32000, 33000]; (40000, 41007], which ends at the target's
	// 1,000th key (the target has 3 more), and the last, (49007, end].
	for _, sql := range []string{
		"DELETE FROM items WHERE id BETWEEN 10201 AND 10210",
		"UPDATE items SET name = 'corrupt' WHERE id BETWEEN 10250 AND 10254",
		"DELETE FROM items WHERE id BETWEEN 31995 AND 31999",
		"UPDATE items SET n = -1 WHERE id BETWEEN 32001 AND 32005",
		"INSERT INTO items VALUES (40003, 'extra', 0), (40005, 'extra', 0), (40007, 'extra', 0)",
		"INSERT INTO items VALUES (60001, 'extra', 0), (60002, 'extra', 0)",
	} {
		if _, err := my.Exec(sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	code, out, errOut := runCLI(t, "verify", file, "--repair", "--chunk", "1000", "--recheck-wait", "300ms", "--wait-timeout", "40s")
	t.Logf("sluice verify --repair:\n%s%s", out, errOut)
	if code != 0 {
		t.Fatalf("verify --repair: exit %d; sluice run says:\n%s", code, run.out)
	}
	for _, want := range []string{
		"15 missing in target, 5 extra in target, 10 different",
		"4 differing key range(s) of (id)",
		"[10001 … 11000] [31001 … 33000] [40003 … 41007] [49008 … 60002]",
		"re-copied 4 range(s) for sink db: 4995 rows re-read, of 49990 rows in public.items",
		"public.items → sink.db (table items, upsert, delete hard, key id): 49990 source rows, 49990 target rows, 50 chunk(s): equal",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not say %q", want)
		}
	}
	// The copies' own count: 1,000 + 2,000 + 997 + 993 rows read, and the
	// 5 target-only keys deleted.
	jobs, reread := repairJobs(statusJSON(t, file))
	if len(jobs) != 4 || reread != 4995 {
		t.Fatalf("%d copies re-read %d rows; want 4 copies of 4,995 rows (of %d)", len(jobs), reread, n)
	}
	for _, j := range jobs {
		if j.Sink != "db" || !j.Done {
			t.Fatalf("copy %s: for sink %q, done %v; want sink db, done", j.Request, j.Sink, j.Done)
		}
	}
	if code, out, errOut := runCLI(t, "verify", file, "--chunk", "1000"); code != 0 {
		t.Fatalf("verify after the repair: exit %d\n%s%s", code, out, errOut)
	}
	sameRows(t, src, target)

	// A stopped pipeline: the repair waits for its next start.
	run.stop(t)
	if _, err := my.Exec("DELETE FROM items WHERE id = 20000"); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "verify", file, "--repair", "--chunk", "1000", "--rechecks", "0")
	if code != 1 || !strings.Contains(out, "runs when `sluice run` next starts") {
		t.Fatalf("verify --repair of a stopped pipeline: exit %d, want 1 and when it runs\n%s%s", code, out, errOut)
	}
	run = startRun(t, file)
	waitLong(t, file, "the repair's copy after the restart", func(st observe.Status) bool {
		jobs, _ := repairJobs(st)
		return len(jobs) == 5 && !slices.ContainsFunc(jobs, func(j observe.Resync) bool { return !j.Done })
	})
	sameRows(t, src, target)
	if code, out, errOut := runCLI(t, "verify", file, "--chunk", "1000"); code != 0 {
		t.Fatalf("verify after the repair at start: exit %d\n%s%s", code, out, errOut)
	}
	run.stop(t)

	// The file sink of the same source got none of the copies: its log
	// holds the initial snapshot only.
	if streamed, copied := readLog(t, filepath.Join(dir, "log.jsonl")); streamed != 0 || copied != n {
		t.Errorf("the file sink holds %d streamed and %d snapshot rows; want 0 and %d", streamed, copied, n)
	}
}

// TestRepairPlan: one request per source and sink, with every range and
// target-only key of its tables; pairs that cannot be repaired are named
// with the reason, equal and skipped ones are left alone.
func TestRepairPlan(t *testing.T) {
	rg := func(from, to string, extra ...string) verify.Range {
		r := verify.Range{From: []string{from}, To: []string{to}}
		for _, k := range extra {
			r.Extra = append(r.Extra, []string{k})
		}
		return r
	}
	rep := &verify.Report{Pairs: []*verify.Pair{
		{Source: "app", Table: "public.a", Sink: "db", Missing: 1, Ranges: []verify.Range{rg("1", "10"), rg("50", "60", "55")}},
		{Source: "app", Table: "public.b", Sink: "db", Extra: 1, Ranges: []verify.Range{rg("7", "7", "7")}},
		{Source: "app", Table: "public.a", Sink: "other", Different: 2, Ranges: []verify.Range{rg("3", "4")}},
		{Source: "app", Table: "public.c", Sink: "db"},
		{Source: "app", Table: "public.d", Sink: "db", Different: 1, Unrepairable: "the sink's key is read from source columns (name)"},
		{Source: "app", Table: "public.e", Sink: "db", Error: "connection refused"},
		{Source: "app", Table: "public.f", Sink: "db", Failed: 2},
		{Source: "app", Sink: "log", Skipped: "file sink"},
	}}
	jobs, refused := repairPlan(rep, "verify-x")
	if len(jobs) != 2 {
		t.Fatalf("%d requests, want 2 (sinks db and other)", len(jobs))
	}
	db, other := jobs[0].req, jobs[1].req
	wantDB := state.SnapshotRequest{ID: "verify-x-1", Source: "app", Sink: "db", Tables: []string{"public.a", "public.b"},
		Ranges: []state.KeyRange{{Table: "public.a", From: []string{"1"}, To: []string{"10"}}, {Table: "public.a", From: []string{"50"}, To: []string{"60"}},
			{Table: "public.b", From: []string{"7"}, To: []string{"7"}}},
		Absent: []state.TableKey{{Table: "public.a", Key: []string{"55"}}, {Table: "public.b", Key: []string{"7"}}}}
	if fmt.Sprintf("%+v", db) != fmt.Sprintf("%+v", wantDB) {
		t.Errorf("request for db:\n got %+v\nwant %+v", db, wantDB)
	}
	if other.ID != "verify-x-2" || other.Sink != "other" || len(other.Ranges) != 1 || len(other.Absent) != 0 {
		t.Errorf("request for other: %+v", other)
	}
	got := strings.Join(refused, "\n")
	for _, want := range []string{"public.d → sink.db: not repaired: the sink's key", "public.e → sink.db: not repaired: its comparison failed (connection refused)", "public.f → sink.db: not repaired: its 2 source rows a transform failed on"} {
		if !strings.Contains(got, want) {
			t.Errorf("refusals do not say %q:\n%s", want, got)
		}
	}
	if len(refused) != 3 {
		t.Errorf("%d refusals, want 3:\n%s", len(refused), got)
	}
}
