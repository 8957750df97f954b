package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
)

// TestParallelSnapshotSurvivesSIGKILL, once per SQL target: the initial
// snapshot of a table of some 25 MB, split into key ranges read by three
// readers and written on three target connections (lanes), is SIGKILLed
// three times while it copies; after the copy, updates and deletes of
// rows each reader copied stream in. At the end the target equals the
// source row by row, as each database renders its values, and the
// target's checkpoint row holds every reader's stream: each range
// resumed where its lane committed, and the streamed changes landed on
// top of the copy.
func TestParallelSnapshotSurvivesSIGKILL(t *testing.T) {
	for _, sink := range []string{"mysql", "postgres"} {
		t.Run(sink, func(t *testing.T) { parallelSnapshotKill(t, sink) })
	}
}

func parallelSnapshotKill(t *testing.T, sink string) {
	const rows = 150_000
	ctx := context.Background()
	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, `CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL, amount numeric(20,4))`,
		fmt.Sprintf(`INSERT INTO big SELECT i, repeat(md5(i::text), 3), i * 1.0001 FROM generate_series(1, %d) i`, rows),
		`CREATE TABLE small (id int PRIMARY KEY, v text)`,
		`INSERT INTO small SELECT i, 'v' || i FROM generate_series(1, 500) i`)
	tgt := newTarget(t, sink)
	dir := t.TempDir()
	file := writeFile(t, dir, "parsnap.hcl", fmt.Sprintf(`pipeline "parsnap" {
  state = %q
}

source "postgres" "app" {
  dsn              = env("SOURCE_DSN")
  tables           = ["public.big", "public.small"]
  slot             = "e2e_parsnap_%s"
  heartbeat        = "1s"
  snapshot_workers = 3
}

sink %q "replica" {
  from        = source.app
  dsn         = env("TARGET_DSN")
  auto_create = true
}
`, dir+"/state.db", sink, sink))
	env := []string{"SOURCE_DSN=" + srcDSN, "TARGET_DSN=" + tgt.dsn}
	copied := func() int64 {
		var n int64
		if err := tgt.db.QueryRow("SELECT count(*) FROM big").Scan(&n); err != nil {
			return 0
		}
		return n
	}
	streams := func() string {
		var text string
		_ = tgt.db.QueryRow("SELECT checkpoint FROM sluice_checkpoints WHERE pipeline = 'parsnap' AND sink = 'replica'").Scan(&text)
		return text
	}
	rng := rand.New(rand.NewPCG(newSeed(t), 3))
	parallelSeen := false
	for k := 1; k <= 3; k++ {
		before := copied()
		target := before + 1 + rng.Int64N((rows-before)/4)
		p := startSluice(t, dir, file, env...)
		if !eventually(2*time.Minute, time.Millisecond, func() bool { return copied() >= target || !p.healthy() }) || !p.healthy() {
			t.Fatalf("kill %d: the copy did not reach %d rows (has %d)\n%s", k, target, copied(), p.logs.String())
		}
		p.kill()
		parallelSeen = parallelSeen || strings.Contains(streams(), "#")
		t.Logf("kill %d at %d copied rows; checkpoint %s", k, copied(), streams())
		if copied() >= rows {
			t.Fatalf("the copy finished before kill %d", k)
		}
	}
	if !parallelSeen {
		t.Fatalf("no lane committed a parallel reader's stream: checkpoint %s", streams())
	}
	p := startSluice(t, dir, file, env...)
	if !eventually(3*time.Minute, 20*time.Millisecond, func() bool { return copied() >= rows || !p.healthy() }) {
		t.Fatalf("the copy did not finish: %d rows\n%s", copied(), p.logs.String())
	}
	// Changes to rows spread over every range, after the copy.
	mustExec(t, src, `UPDATE big SET payload = 'changed ' || id, amount = -amount WHERE id % 997 = 0`,
		`DELETE FROM big WHERE id % 1009 = 0`, `UPDATE small SET v = NULL WHERE id % 7 = 0`)
	var lsn string
	if err := src.QueryRow("SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	want, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		t.Fatal(err)
	}
	if !eventually(2*time.Minute, 50*time.Millisecond, func() bool {
		pos, ok, err := checkpoint(tgt.db, "parsnap", "replica", "app")
		return (err == nil && ok && pos.Offset >= uint64(want)) || !p.healthy()
	}) || !p.healthy() {
		t.Fatalf("the changes after the copy were not committed\n%s", p.logs.String())
	}
	if err := p.stop(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, p.logs.String())
	}
	for _, part := range []string{`"partition":"#1"`, `"partition":"#2"`} {
		if !strings.Contains(streams(), part) {
			t.Errorf("the checkpoint lacks a reader's stream (%s): every reader should have copied rows: %s", part, streams())
		}
	}
	for table, cols := range map[string][]column{
		"big":   {{"id", kInt}, {"payload", kText}, {"amount", kDecimal}},
		"small": {{"id", kInt}, {"v", kText}},
	} {
		equal, sum, diff, err := tablesEqual(ctx, src, tgt, table, cols)
		if err != nil {
			t.Fatal(err)
		}
		if !equal {
			t.Fatalf("%s: target differs from the source: %s", table, diff)
		}
		t.Logf("%s: %s", table, sum)
	}
}
