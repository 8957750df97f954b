package e2ekafka

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"
)

// partitionKey names one partition of one topic.
type partitionKey struct {
	topic     string
	partition int32
}

func (k partitionKey) String() string { return fmt.Sprintf("%s/%d", k.topic, k.partition) }

// nativeMessage is a record value or a line in the native format: a
// change (tx.commit_time), a resolved message, or a transaction event.
type nativeMessage struct {
	Resolved *time.Time `json:"resolved"`
	Status   string     `json:"status"`
	Tx       *struct {
		CommitTime time.Time `json:"commit_time"`
	} `json:"tx"`
}

// resolvedLog is what a read_committed consumer of each partition saw:
// per partition, the changes' commit times and the resolved timestamps,
// checked as they arrive.
type resolvedLog struct {
	t        *testing.T
	last     map[partitionKey]time.Time // the partition's last resolved T
	resolved map[partitionKey]int
	changes  int
	bad      int
}

func newResolvedLog(t *testing.T) *resolvedLog {
	return &resolvedLog{t: t, last: map[partitionKey]time.Time{}, resolved: map[partitionKey]int{}}
}

// add checks one message of a partition: a resolved T is not lower than
// the partition's previous one, and a change is committed after the
// partition's last T.
func (l *resolvedLog) add(k partitionKey, offset int64, value []byte) {
	var m nativeMessage
	if err := json.Unmarshal(value, &m); err != nil {
		l.t.Fatalf("%s offset %d: %s: %v", k, offset, value, err)
	}
	switch {
	case m.Resolved != nil:
		if m.Resolved.Before(l.last[k]) {
			l.fail("%s offset %d: resolved %v after resolved %v: T went backwards", k, offset, *m.Resolved, l.last[k])
		}
		l.last[k] = *m.Resolved
		l.resolved[k]++
	case m.Tx != nil:
		l.changes++
		if !m.Tx.CommitTime.After(l.last[k]) {
			l.fail("%s offset %d: a change committed at %v after resolved %v", k, offset, m.Tx.CommitTime, l.last[k])
		}
	case m.Status == "":
		l.fail("%s offset %d: neither a change nor a resolved message: %s", k, offset, value)
	}
}

func (l *resolvedLog) fail(format string, args ...any) {
	if l.bad++; l.bad <= 10 {
		l.t.Errorf(format, args...)
	}
}

// TestResolvedUnderKill is PostgreSQL → Kafka with exactly_once and
// resolved = "1s" while a writer commits transactions into two tables
// (3 partitions each) and sluice is SIGKILLed twice. A read_committed
// consumer of each partition must find, for every resolved T, no later
// change in that partition committed at or before T; T never goes back
// across the restarts; every partition gets resolved messages, until one
// past the writer's last commit; and every change arrives exactly once.
func TestResolvedUnderKill(t *testing.T) {
	const (
		txs   = 900
		kills = 2
		pause = 15 * time.Millisecond
	)
	brokers, dsn, conn, ctx := kafkaAndPostgres(t, 4*time.Minute)
	if _, err := conn.Exec(ctx, "CREATE TABLE a (id int PRIMARY KEY, note text); CREATE TABLE b (id int PRIMARY KEY, note text)"); err != nil {
		t.Fatal(err)
	}
	file := writePipeline(t, fmt.Sprintf(`
pipeline "rs" {}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.a", "public.b"]
  heartbeat = "1s"
}

sink "kafka" "events" {
  from         = source.app
  brokers      = [%q]
  topic        = "rs.{schema}.{table}"
  format       = "native"
  exactly_once = true
  partitions   = 3
  resolved     = "1s"
}
`, dsn, brokers[0]))
	run := startInstance(t, file, "")
	waitForSlot(ctx, t, conn)

	var done atomic.Int64 // transactions committed
	rows := 0
	written := make(chan error, 1)
	go func() {
		id := 0
		for n := 0; n < txs; n++ {
			b := &pgx.Batch{}
			for k := 1 + rand.IntN(10); k > 0; k-- {
				b.Queue(fmt.Sprintf("INSERT INTO %s VALUES ($1, $2)", []string{"a", "b"}[rand.IntN(2)]), id, fmt.Sprintf("row %d", id))
				id++
			}
			tx, err := conn.Begin(ctx)
			if err == nil {
				err = tx.SendBatch(ctx, b).Close()
			}
			if err == nil {
				err = tx.Commit(ctx)
			}
			if err != nil {
				written <- err
				return
			}
			rows = id
			done.Store(int64(n + 1))
			time.Sleep(pause)
		}
		written <- nil
	}()
	start := time.Now()
	for k := 1; k <= kills; k++ {
		for done.Load() < int64(k*txs/(kills+1)) {
			if run.exited() {
				t.Fatalf("sluice exited on its own before kill %d", k)
			}
			time.Sleep(20 * time.Millisecond)
		}
		run.restart()
		t.Logf("kill %d at %v, after %d transactions", k, time.Since(start).Round(time.Millisecond), done.Load())
	}
	if err := <-written; err != nil {
		t.Fatalf("writer: %v", err)
	}
	// Every change is committed before the server's now.
	var end time.Time
	if err := conn.QueryRow(ctx, "SELECT now()").Scan(&end); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d rows in %d transactions by %v; waiting for resolved past %v", rows, txs, time.Since(start).Round(time.Millisecond), end)

	log := newResolvedLog(t)
	consumer := readCommitted(t, brokers, "rs.public.a")
	consumer.AddConsumeTopics("rs.public.b")
	consume := func(wait time.Duration) int {
		pctx, pcancel := context.WithTimeout(ctx, wait)
		defer pcancel()
		n := 0
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			n++
			log.add(partitionKey{r.Topic, r.Partition}, r.Offset, r.Value)
		})
		return n
	}
	past := func() bool {
		for _, topic := range []string{"rs.public.a", "rs.public.b"} {
			for p := range int32(3) {
				if log.last[partitionKey{topic, p}].Before(end) {
					return false
				}
			}
		}
		return true
	}
	for !past() {
		if ctx.Err() != nil || run.exited() {
			t.Fatalf("after %v: resolved so far %v, want every partition past %v (sluice exited: %v)", time.Since(start).Round(time.Second), log.last, end, run.exited())
		}
		consume(time.Second)
	}
	run.signal(syscall.SIGTERM)
	for consume(2*time.Second) > 0 {
	}
	t.Logf("resolved messages per partition: %v", log.resolved)
	if log.changes != rows {
		t.Errorf("the consumer saw %d changes, %d rows were inserted", log.changes, rows)
	}
	if log.bad > 0 {
		t.Fatalf("%d violations of the resolved promise", log.bad)
	}
}

// TestResolvedWhileIdle: with the source idle for 10s (heartbeat "1s"),
// resolved messages with increasing T keep arriving, at least 5 of them,
// in every partition of the Kafka sink's topic and in the file sink.
func TestResolvedWhileIdle(t *testing.T) {
	brokers, dsn, conn, ctx := kafkaAndPostgres(t, 2*time.Minute)
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "changes.jsonl")
	file := writePipeline(t, fmt.Sprintf(`
pipeline "idle" {}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.items"]
  heartbeat = "1s"
}

sink "kafka" "events" {
  from         = source.app
  brokers      = [%q]
  topic        = "idle.{schema}.{table}"
  format       = "native"
  exactly_once = true
  partitions   = 2
  resolved     = "1s"
}

sink "file" "log" {
  from     = source.app
  path     = %q
  resolved = "1s"
}
`, dsn, brokers[0], out))
	run := startInstance(t, file, "")
	waitForSlot(ctx, t, conn)
	if _, err := conn.Exec(ctx, "INSERT INTO items VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	consumer := readCommitted(t, brokers, "idle.public.items")
	log := newResolvedLog(t)
	poll := func() {
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer pcancel()
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			log.add(partitionKey{r.Topic, r.Partition}, r.Offset, r.Value)
		})
	}
	for log.changes == 0 {
		if ctx.Err() != nil || run.exited() {
			t.Fatalf("the insert never reached Kafka (sluice exited: %v)", run.exited())
		}
		poll()
	}
	// From here on the source is idle.
	before := map[partitionKey]int{}
	for k, n := range log.resolved {
		before[k] = n
	}
	fileBefore := len(fileResolved(t, out))
	for idle := time.Now(); time.Since(idle) < 10*time.Second; {
		poll()
	}
	for p := range int32(2) {
		k := partitionKey{"idle.public.items", p}
		if n := log.resolved[k] - before[k]; n < 5 {
			t.Errorf("%s: %d resolved messages in 10 idle seconds, want at least 5", k, n)
		}
	}
	ts := fileResolved(t, out)[fileBefore:]
	if len(ts) < 5 {
		t.Errorf("the file got %d resolved lines in 10 idle seconds, want at least 5", len(ts))
	}
	for i := 1; i < len(ts); i++ {
		if !ts[i].After(ts[i-1]) {
			t.Errorf("file: resolved %v after %v", ts[i], ts[i-1])
		}
	}
	if log.bad > 0 {
		t.Fatalf("%d violations", log.bad)
	}
	t.Logf("Kafka resolved per partition %v (before idling %v); file: %d resolved lines while idle", log.resolved, before, len(ts))
}

// fileResolved returns the resolved timestamps of a native file, in order.
func fileResolved(t *testing.T, path string) []time.Time {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []time.Time
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m nativeMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			break // a line being written
		}
		if m.Resolved != nil {
			out = append(out, *m.Resolved)
		}
	}
	return out
}
