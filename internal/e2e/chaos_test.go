package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Chaos workload size: the acceptance floor is 100,000 source changes,
// one transaction of 50,000 rows among them.
const (
	chaosSmallChanges = 52_000
	chaosBigRows      = 50_000
	chaosWriteFor     = 25 * time.Second
	chaosKills        = 5
	chaosCatchUp      = 150 * time.Second
)

// chaosLogSink adds to the chaos pipeline a change log (append mode) of
// public.items in the same target as the keyed replica.
const chaosLogSink = `
sink %q "log" {
  from        = source.app
  dsn         = env("TARGET_DSN")
  table       = "items_log"
  mode        = "append"
  auto_create = true
}
`

// TestChaos is issue 4's crash acceptance, once per SQL target: a writer
// makes over 100,000 changes (inserts, updates, deletes, primary-key
// updates, multi-row transactions, one transaction of 50,000 rows) while
// `sluice run` is SIGKILLed at five random moments and restarted each
// time. At the end the upsert target equals the source row by row, and
// the append target holds every change exactly once (subtest items).
//
// It is also issue 9's fidelity acceptance: the fidelity cases
// (fidelity_workload_test.go: TOASTed text and jsonb, bytea, uuid,
// arrays, numeric(40,35) and unconstrained numeric, timestamptz, a
// partitioned table, key updates leaving TOAST values unchanged, a
// pre-created target with NOT NULL columns, TRUNCATE, ADD COLUMN with a
// default, integer → bigint) run beside it, each with a pipeline and
// process of its own killed at the same moments, and each target must
// then equal its source column by column, as both databases render the
// values in SQL (fidelity_checker_test.go; one subtest per case).
func TestChaos(t *testing.T) {
	for _, sink := range []string{"mysql", "postgres"} {
		t.Run(sink, func(t *testing.T) { chaos(t, sink) })
	}
}

func chaos(t *testing.T, sink string) {
	ctx := context.Background()
	seed := newSeed(t)
	rng := rand.New(rand.NewPCG(seed, 1))

	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, itemsDDL)
	tgt := newTarget(t, sink)
	dir := t.TempDir()
	file := writeFile(t, dir, "chaos.hcl", replicaPipeline(dir, "chaos", "items", sink)+fmt.Sprintf(chaosLogSink, sink))
	env := []string{"SOURCE_DSN=" + srcDSN, "TARGET_DSN=" + tgt.dsn}
	fids := setupFidelity(t, ctx, sink, seed)

	// The pipeline is established (slot, snapshot of the empty table, a
	// heartbeat committed by both sinks) before the writer starts, so that
	// the change log must hold exactly the writer's changes: a crash
	// before any commit makes the source read the snapshot again as the
	// table is by then (sources/postgres doc.go), which an append sink
	// records on top of the streamed changes.
	began := time.Now()
	p := startSluice(t, dir, file, env...)
	if !eventually(60*time.Second, 100*time.Millisecond, func() bool {
		_, ok1, _ := checkpoint(tgt.db, "chaos", "replica", "app")
		_, ok2, _ := checkpoint(tgt.db, "chaos", "log", "app")
		return (ok1 && ok2) || !p.healthy()
	}) || !p.healthy() {
		t.Fatalf("the pipeline committed nothing within 60s\n%s", p.logs.String())
	}
	for _, f := range fids {
		f.start(t)
	}
	eventually(60*time.Second, 100*time.Millisecond, func() bool {
		for _, f := range fids {
			if !f.committed(0) && f.p.healthy() {
				return false
			}
		}
		return true
	})
	for _, f := range fids {
		f.note("before the writers started")
		if !f.committed(0) && f.p.healthy() {
			f.trouble = append(f.trouble, fmt.Sprintf("the pipeline committed nothing within 60s of its first start: %s", logExcerpt(f.p.logs.String())))
		}
	}

	w := newWorkload(src, seed)
	bigDone := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() { writerDone <- w.run(ctx, chaosSmallChanges, chaosBigRows, chaosWriteFor, bigDone) }()
	for _, f := range fids {
		go func() {
			defer close(f.done)
			f.werr = f.w.run(ctx, f.c, chaosWriteFor)
		}()
	}
	writeStart := time.Now()

	var killLog []string
	for k := 1; k <= chaosKills; k++ {
		if k == 3 { // one kill lands while the 50,000-row transaction is streamed or applied
			select {
			case <-bigDone:
			case err := <-writerDone:
				writerDone <- err
			}
			time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
		} else {
			time.Sleep(500*time.Millisecond + time.Duration(rng.Int64N(int64(4500*time.Millisecond))))
		}
		if !p.running() {
			t.Fatalf("sluice run exited on its own before kill %d: %v\n%s", k, p.err, p.logs.String())
		}
		p.kill()
		for _, f := range fids {
			f.note(fmt.Sprintf("before kill %d", k))
			f.p.kill()
		}
		var rows int64 // stays 0 while the table does not exist yet
		_ = tgt.db.QueryRow("SELECT count(*) FROM items_log").Scan(&rows)
		killLog = append(killLog, fmt.Sprintf("kill %d at %.1fs: %d source changes made, %d in the change log",
			k, time.Since(writeStart).Seconds(), w.changesNow(), rows))
		time.Sleep(time.Duration(rng.Int64N(int64(500 * time.Millisecond))))
		p = startSluice(t, dir, file, env...)
		for _, f := range fids {
			f.start(t)
		}
	}
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
	wrote := time.Since(writeStart)
	for _, f := range fids {
		<-f.done
	}
	fidDeadline := time.Now().Add(fidCatchUp)

	// The items pipeline, as issue 4 accepts it: caught up, the replica
	// equal to the source row by row, the change log exactly once, and
	// sluice status showing what the targets hold.
	t.Run("items", func(t *testing.T) {
		for _, l := range killLog {
			t.Log(l)
		}
		t.Logf("writer: %d changes (%d inserts, %d updates of which %d primary-key updates, %d deletes) in %d transactions, %.1fs",
			w.changes(), w.inserts, w.updates, w.pkUpdates, w.deletes, w.txs, wrote.Seconds())
		if w.changes() < 100_000 {
			t.Fatalf("the writer made only %d changes; the test needs 100,000", w.changes())
		}

		// Caught up: both sinks committed the writer's last transaction.
		caughtUp := func() bool {
			for _, s := range []string{"replica", "log"} {
				pos, ok, err := checkpoint(tgt.db, "chaos", s, "app")
				if err != nil || !ok || pos.Offset < w.lastLSN {
					return false
				}
			}
			return true
		}
		if !eventually(chaosCatchUp, 250*time.Millisecond, func() bool { return caughtUp() || !p.healthy() }) || !p.healthy() {
			t.Fatalf("the target did not catch up with the source within %v (healthy: %t)\n%s", chaosCatchUp, p.healthy(), p.logs.String())
		}
		t.Logf("caught up %.1fs after the writer finished; %.1fs from the first start", time.Since(writeStart.Add(wrote)).Seconds(), time.Since(began).Seconds())

		// Row by row: the ordered checksum over all columns.
		var equal bool
		var sum, diff string
		var err error
		if !eventually(10*time.Second, 500*time.Millisecond, func() bool {
			equal, sum, diff, err = tablesEqual(ctx, src, tgt, "items", itemsColumns)
			return err != nil || equal
		}) || err != nil {
			t.Fatalf("target items differ from the source: %v %s", err, diff)
		}
		t.Log(sum)

		// Exactly once: one change-log row per source change, per position.
		if dup := queryInt(t, tgt.db, "SELECT count(*) - count(DISTINCT __position) FROM items_log"); dup != 0 {
			t.Errorf("%d change-log rows repeat a position (changes applied twice)", dup)
		}
		ops := map[string]int64{}
		rows, err := tgt.db.QueryContext(ctx, "SELECT __op, count(*) FROM items_log GROUP BY __op")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var op string
			var n int64
			if err := rows.Scan(&op, &n); err != nil {
				t.Fatal(err)
			}
			ops[op] = n
		}
		rows.Close()
		wantOps := map[string]int64{"insert": w.inserts, "update": w.updates, "delete": w.deletes}
		if fmt.Sprint(ops) != fmt.Sprint(wantOps) {
			t.Errorf("change log per op = %v, the source made %v", ops, wantOps)
		}

		if err := p.stop(); err != nil {
			t.Errorf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, p.logs.String())
		}
		if strings.Contains(p.logs.String(), "panic") {
			t.Errorf("the last run logged a panic:\n%s", p.logs.String())
		}

		// After the graceful stop, sluice status shows what the targets hold
		// and the source acknowledged the last transaction.
		st := status(t, dir, file, env...)
		if st.Running {
			t.Errorf("sluice status says running after the process exited")
		}
		app := change.Stream{Source: "app"}
		if len(st.Sinks) != 2 || len(st.Sources) != 1 {
			t.Fatalf("sluice status shows %d sinks and %d sources, want 2 and 1: %+v", len(st.Sinks), len(st.Sources), st)
		}
		for _, s := range st.Sinks {
			pos, _, err := checkpoint(tgt.db, "chaos", s.Name, "app")
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Committed[app]; got != pos {
				t.Errorf("sluice status shows sink %s at %v, its target table at %v", s.Name, got, pos)
			}
		}
		if acked := st.Sources[0].Acked[app]; acked.Offset < w.lastLSN {
			t.Errorf("source app acknowledged %v, before the last transaction (WAL %d)", acked, w.lastLSN)
		}
	})

	// The fidelity cases, each on its own (fidelity_chaos_test.go).
	for _, f := range fids {
		t.Run(f.c.name, func(t *testing.T) { f.check(t, ctx, fidDeadline) })
	}
}
