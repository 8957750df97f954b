package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Atomic visibility workload: accounts whose balances always sum to the
// same total at the source.
const (
	atomicAccounts  = 2000
	atomicBalance   = 1000
	atomicTransfers = 1500
)

// TestAtomicVisibility checks that no half-applied source transaction is
// ever visible in a MariaDB or PostgreSQL target. Source transactions move amounts
// between accounts (two rows, or up to 400 rows at once, more than the
// sink's batch_size of 10), so the sum of balances is the same after
// every one of them; a reader polling the target all along must never
// see another sum, also across two SIGKILLs and restarts.
func TestAtomicVisibility(t *testing.T) {
	for _, sink := range []string{"mysql", "postgres"} {
		t.Run(sink, func(t *testing.T) { atomicVisibility(t, sink) })
	}
}

func atomicVisibility(t *testing.T, sink string) {
	ctx := context.Background()
	seed := newSeed(t)
	rng := rand.New(rand.NewPCG(seed, 2))

	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, "CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL)",
		fmt.Sprintf("INSERT INTO accounts SELECT g, %d FROM generate_series(1, %d) g", atomicBalance, atomicAccounts))
	const total = atomicAccounts * atomicBalance
	tgt := newTarget(t, sink)
	dir := t.TempDir()
	file := writeFile(t, dir, "atomic.hcl", replicaPipeline(dir, "atomic", "accounts", sink, "batch_size  = 10"))
	env := []string{"SOURCE_DSN=" + srcDSN, "TARGET_DSN=" + tgt.dsn}
	p := startSluice(t, dir, file, env...)

	// The snapshot may be committed row by row (each snapshot row is a
	// boundary); the invariant holds from the moment every account is there.
	if !eventually(60*time.Second, 50*time.Millisecond, func() bool {
		var n int64
		_ = tgt.db.QueryRow("SELECT count(*) FROM accounts").Scan(&n)
		return n == atomicAccounts || !p.healthy()
	}) || !p.healthy() {
		t.Fatalf("the snapshot did not reach the target within 60s\n%s", p.logs.String())
	}

	stop := make(chan struct{})
	var reads atomic.Int64
	var bad []string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			var sum, n int64
			if err := tgt.db.QueryRow("SELECT coalesce(sum(balance), 0), count(*) FROM accounts").Scan(&sum, &n); err != nil {
				bad = append(bad, err.Error())
				return
			}
			reads.Add(1)
			if sum != total || n != atomicAccounts {
				bad = append(bad, fmt.Sprintf("sum %d over %d accounts", sum, n))
			}
		}
	}()

	w := newWorkload(src, seed)
	kills := 0
	writeStart := time.Now()
	for i := 0; i < atomicTransfers; i++ {
		err := w.tx(ctx, func(tx *sql.Tx) error {
			if rng.IntN(10) == 0 { // wide: k accounts give 1 each to one outside their range
				k := 50 + rng.IntN(350)
				from := 2 + rng.IntN(atomicAccounts-k-1)
				if _, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance - 1 WHERE id BETWEEN $1 AND $2", from, from+k-1); err != nil {
					return err
				}
				_, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + $1 WHERE id = $2", k, from-1)
				return err
			}
			a, b := 1+rng.IntN(atomicAccounts), 1+rng.IntN(atomicAccounts-1)
			if b >= a {
				b++
			}
			amount := 1 + rng.IntN(100)
			if _, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, a); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "UPDATE accounts SET balance = balance + $1 WHERE id = $2", amount, b)
			return err
		})
		if err != nil {
			t.Fatalf("transfer %d: %v", i, err)
		}
		if i == atomicTransfers/3 || i == 2*atomicTransfers/3 {
			if !p.running() {
				t.Fatalf("sluice run exited on its own: %v\n%s", p.err, p.logs.String())
			}
			p.kill()
			kills++
			p = startSluice(t, dir, file, env...)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wrote := time.Since(writeStart)
	if !eventually(90*time.Second, 200*time.Millisecond, func() bool {
		pos, ok, err := checkpoint(tgt.db, "atomic", "replica", "app")
		return err == nil && ok && pos.Offset >= w.lastLSN || !p.healthy()
	}) || !p.healthy() {
		t.Fatalf("the target did not catch up within 90s\n%s", p.logs.String())
	}
	close(stop)
	wg.Wait()
	t.Logf("%d transfers in %.1fs, %d kills; the reader summed the target %d times", w.txs, wrote.Seconds(), kills, reads.Load())
	if len(bad) > 0 {
		t.Errorf("the reader saw %d states no source transaction left behind (half-applied transactions), first ones: %s", len(bad), strings.Join(bad[:min(5, len(bad))], "; "))
	}
	if reads.Load() < 100 {
		t.Errorf("the reader summed the target only %d times: the test did not observe the run", reads.Load())
	}
	cols := []column{{"id", kInt}, {"balance", kInt}}
	if equal, _, diff, err := tablesEqual(ctx, src, tgt, "accounts", cols); err != nil || !equal {
		t.Errorf("target accounts differ from the source: %v %s", err, diff)
	}
	if err := p.stop(); err != nil {
		t.Errorf("sluice run after SIGTERM: %v (want exit 0)\n%s", err, p.logs.String())
	}
}
