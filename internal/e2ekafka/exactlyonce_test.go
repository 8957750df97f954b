package e2ekafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/engine/change"
	kafkasource "github.com/sluice-cdc/sluice/sources/kafka"
)

// TestExactlyOnceUnderKill runs PostgreSQL → Kafka with exactly_once while
// a workload of 50,000 changes (inserts, updates, deletes in transactions
// of 1 to 40 changes, about 2,000 changes a second) runs, SIGKILLs sluice
// five times at random moments of it and restarts it. A read_committed consumer must see every change
// exactly once, and each key's changes in the order they were made: each
// row carries a version its every change increments, so a change repeated
// or lost shows in the key's sequence.
func TestExactlyOnceUnderKill(t *testing.T) {
	const (
		total = 50_000
		kills = 5
		// pause between the workload's transactions (of 20 changes on
		// average): it spreads the workload over about 25s, so sluice is
		// streaming, not restarting, when each kill lands.
		pause = 10 * time.Millisecond
		topic = "eo.public.items"
	)
	brokers, dsn, conn, ctx := kafkaAndPostgres(t, 4*time.Minute)
	// FULL: a delete's before carries the version too.
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, ver int NOT NULL, note text); ALTER TABLE items REPLICA IDENTITY FULL"); err != nil {
		t.Fatal(err)
	}
	file := writePipeline(t, fmt.Sprintf(`
pipeline "eo" {}

source "postgres" "app" {
  dsn    = %q
  tables = ["public.items"]
}

sink "kafka" "events" {
  from         = source.app
  brokers      = [%q]
  topic        = "eo.{schema}.{table}"
  format       = "debezium"
  key          = ["id"]
  exactly_once = true
  partitions   = 3
}
`, dsn, brokers[0]))
	run := startInstance(t, file, "")
	waitForSlot(ctx, t, conn)

	var done atomic.Int64 // changes committed so far
	want := map[string][]string{}
	workload := make(chan error, 1)
	go func() { workload <- applyChanges(ctx, conn, total, pause, &done, want) }()
	start := time.Now()
	for k := 1; k <= kills; k++ {
		at := int64(k*total/(kills+1) + rand.IntN(total/(kills+1)/2) - total/(kills+1)/4)
		for done.Load() < at {
			if run.exited() {
				t.Fatalf("sluice exited on its own before kill %d", k)
			}
			time.Sleep(20 * time.Millisecond)
		}
		run.restart()
		t.Logf("kill %d at %v, after %d changes", k, time.Since(start).Round(time.Millisecond), done.Load())
	}
	if err := <-workload; err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload of %d changes done in %v", total, time.Since(start).Round(time.Millisecond))

	got := map[string][]string{}
	seen := 0
	consumer := readCommitted(t, brokers, topic)
	consume := func(wait time.Duration) int {
		pctx, pcancel := context.WithTimeout(ctx, wait)
		defer pcancel()
		fs := consumer.PollFetches(pctx)
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			e, row, err := kafkasource.DecodeDebezium(r.Key, r.Value)
			if err != nil || !row {
				t.Fatalf("partition %d offset %d: not a row change (%v): %s", r.Partition, r.Offset, err, r.Value)
			}
			id, step := describe(e)
			got[id] = append(got[id], step)
			n++
		})
		return n
	}
	for seen < total {
		if ctx.Err() != nil || run.exited() {
			t.Fatalf("after %v the consumer has seen %d of %d changes (sluice exited: %v)", time.Since(start).Round(time.Second), seen, total, run.exited())
		}
		seen += consume(time.Second)
	}
	t.Logf("consumer saw all %d changes by %v", total, time.Since(start).Round(time.Millisecond))
	// Anything applied twice would come after: stop sluice, read the rest.
	run.signal(syscall.SIGTERM)
	for n := consume(2 * time.Second); n > 0; n = consume(2 * time.Second) {
		seen += n
	}
	if seen != total {
		t.Errorf("the consumer saw %d changes, %d were made", seen, total)
	}
	sameChanges(t, want, got)
}

// sameChanges fails the test unless each key's consumed changes are the
// ones made, in the order made: none lost, none repeated.
func sameChanges(t *testing.T, want, got map[string][]string) {
	t.Helper()
	var bad []string
	for id, steps := range want {
		if !slices.Equal(got[id], steps) {
			bad = append(bad, fmt.Sprintf("id %s: made %v, consumed %v", id, steps, got[id]))
		}
	}
	for id, steps := range got {
		if _, ok := want[id]; !ok {
			bad = append(bad, fmt.Sprintf("id %s: never made, consumed %v", id, steps))
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Fatalf("%d keys differ, e.g.:\n%s", len(bad), strings.Join(bad[:min(len(bad), 5)], "\n"))
	}
}

// applyChanges makes total changes of items in transactions of 1 to 40,
// one round trip each, pause apart, and records each key's changes in want as
// describe writes them, once their transaction has committed.
func applyChanges(ctx context.Context, conn *pgx.Conn, total int, pause time.Duration, done *atomic.Int64, want map[string][]string) error {
	ver := map[int]int{} // live keys and their versions
	var live []int
	next := 0
	for made := 0; made < total; {
		n := min(1+rand.IntN(40), total-made)
		var b pgx.Batch
		steps := map[int][]string{}
		for range n {
			switch r := rand.IntN(10); {
			case len(live) < 100 || r < 4:
				id := next
				next++
				ver[id] = 1
				live = append(live, id)
				b.Queue("INSERT INTO items VALUES ($1, 1, $2)", id, fmt.Sprintf("item %d", id))
				steps[id] = append(steps[id], "c1")
			case r < 8:
				id := live[rand.IntN(len(live))]
				ver[id]++
				b.Queue("UPDATE items SET ver = $2, note = $3 WHERE id = $1", id, ver[id], fmt.Sprintf("item %d v%d", id, ver[id]))
				steps[id] = append(steps[id], fmt.Sprintf("u%d", ver[id]))
			default:
				i := rand.IntN(len(live))
				id := live[i]
				live[i] = live[len(live)-1]
				live = live[:len(live)-1]
				b.Queue("DELETE FROM items WHERE id = $1", id)
				steps[id] = append(steps[id], fmt.Sprintf("d%d", ver[id]))
				delete(ver, id)
			}
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		if err := tx.SendBatch(ctx, &b).Close(); err != nil {
			_ = tx.Rollback(ctx)
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return err
		}
		for id, s := range steps {
			key := fmt.Sprint(id)
			want[key] = append(want[key], s...)
		}
		made += n
		done.Store(int64(made))
		time.Sleep(pause)
	}
	return nil
}

// describe returns an event's key and its step: the op's letter and the
// row's version ("c1", "u2", "d2").
func describe(e change.Event) (id, step string) {
	switch e.Op {
	case change.Insert:
		return fmt.Sprint(e.After.Get("id")), fmt.Sprintf("c%v", e.After.Get("ver"))
	case change.Update:
		return fmt.Sprint(e.After.Get("id")), fmt.Sprintf("u%v", e.After.Get("ver"))
	case change.Delete:
		return fmt.Sprint(e.Before.Get("id")), fmt.Sprintf("d%v", e.Before.Get("ver"))
	}
	return "?", e.Op.String()
}

// waitForSlot waits until sluice has created the pipeline's replication
// slot in the test's database, so the workload's changes are all streamed
// rather than some snapshotted.
func waitForSlot(ctx context.Context, t *testing.T, conn *pgx.Conn) {
	t.Helper()
	for {
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = current_database()").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if ctx.Err() != nil {
			t.Fatal("sluice created no replication slot")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
