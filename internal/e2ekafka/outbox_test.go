package e2ekafka

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestOutboxRoutesExactlyOnce is the transactional-outbox pattern: an
// application inserts events into an outbox table (and deletes them in
// the same transaction, to keep it small), and the Kafka sink's outbox
// block routes each row to the topic of its aggregate type, keyed by its
// aggregate id, valued by its payload, with its id as a header, through
// two SIGKILLs of sluice. A read_committed consumer must find every event
// exactly once in its aggregate's topic, with its key and payload; the
// deletes are not routed.
func TestOutboxRoutesExactlyOnce(t *testing.T) {
	const total = 6_000
	types := []string{"order", "customer", "invoice"}
	brokers, dsn, conn, ctx := kafkaAndPostgres(t, 3*time.Minute)
	if _, err := conn.Exec(ctx, `CREATE TABLE outbox (id bigint PRIMARY KEY, aggregatetype text NOT NULL, aggregateid text NOT NULL, payload jsonb NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	file := writePipeline(t, fmt.Sprintf(`
pipeline "ob" {}

source "postgres" "app" {
  dsn    = %q
  tables = ["public.outbox"]
}

sink "kafka" "events" {
  from         = source.app
  brokers      = [%q]
  exactly_once = true
  partitions   = 3

  outbox {
    topic   = "'outbox.event.' + row.aggregatetype"
    key     = "row.aggregateid"
    value   = "row.payload"
    headers = { id = "string(row.id)" }
  }
}
`, dsn, brokers[0]))
	run := startInstance(t, file, "")
	waitForSlot(ctx, t, conn)

	var done atomic.Int64
	written := make(chan error, 1)
	go func() {
		for id := int64(0); id < total; {
			b := &pgx.Batch{}
			for n := 1 + rand.IntN(20); n > 0 && id < total; n-- {
				typ := types[id%3]
				b.Queue(`INSERT INTO outbox VALUES ($1, $2, $3, $4)`, id, typ, fmt.Sprintf("%s-%d", typ, id%50), fmt.Sprintf(`{"event": %d, "type": %q, "amount": 12.50}`, id, typ))
				b.Queue(`DELETE FROM outbox WHERE id = $1`, id)
				id++
			}
			if err := conn.SendBatch(ctx, b).Close(); err != nil {
				written <- err
				return
			}
			done.Store(id)
			time.Sleep(10 * time.Millisecond)
		}
		written <- nil
	}()
	start := time.Now()
	for k := 1; k <= 2; k++ {
		for done.Load() < int64(k*total/3) {
			time.Sleep(20 * time.Millisecond)
		}
		run.restart()
		t.Logf("kill %d at %v, after %d events", k, time.Since(start).Round(time.Millisecond), done.Load())
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}

	consumer := readCommitted(t, brokers, "outbox.event.order")
	consumer.AddConsumeTopics("outbox.event.customer", "outbox.event.invoice")
	seen := map[string]int{}
	bad := 0
	consume := func(wait time.Duration) int {
		pctx, pcancel := context.WithTimeout(ctx, wait)
		defer pcancel()
		n := 0
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			n++
			var v struct {
				Event  int64   `json:"event"`
				Type   string  `json:"type"`
				Amount float64 `json:"amount"`
			}
			var id string
			for _, h := range r.Headers {
				if h.Key == "id" {
					id = string(h.Value)
				}
			}
			err := json.Unmarshal(r.Value, &v)
			switch {
			case err != nil:
				t.Errorf("%s offset %d: value %q is not the payload: %v", r.Topic, r.Offset, r.Value, err)
			case r.Topic != "outbox.event."+v.Type || string(r.Key) != fmt.Sprintf("%s-%d", v.Type, v.Event%50) || id != fmt.Sprint(v.Event) || v.Amount != 12.5:
				if bad++; bad <= 5 {
					t.Errorf("event %d in %s with key %q and id header %q: want topic outbox.event.%s, key %s-%d, id %d", v.Event, r.Topic, r.Key, id, v.Type, v.Type, v.Event%50, v.Event)
				}
			}
			seen[fmt.Sprint(v.Event)]++
		})
		return n
	}
	for len(seen) < total {
		if ctx.Err() != nil || run.exited() {
			t.Fatalf("after %v the consumer has seen %d of %d events (sluice exited: %v)", time.Since(start).Round(time.Second), len(seen), total, run.exited())
		}
		consume(time.Second)
	}
	t.Logf("every event routed by %v", time.Since(start).Round(time.Millisecond))
	run.signal(syscall.SIGTERM)
	for consume(2*time.Second) > 0 {
	}
	twice := 0
	for id, n := range seen {
		if n != 1 {
			if twice++; twice <= 5 {
				t.Errorf("event %s routed %d times", id, n)
			}
		}
	}
	if twice > 0 || bad > 0 {
		t.Fatalf("%d events routed more than once, %d with a wrong topic, key or header", twice, bad)
	}
}
