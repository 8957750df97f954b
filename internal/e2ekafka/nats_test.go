package e2ekafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/internal/natstest"
	kafkasource "github.com/sluice-cdc/sluice/sources/kafka"
)

// TestNATSExactlyOnceUnderKill runs PostgreSQL → NATS JetStream while a
// workload of 50,000 changes runs (the one TestExactlyOnceUnderKill
// uses), SIGKILLs sluice twice mid-stream and restarts it, once at once
// and once only after the stream's duplicate window (1s) has passed, so
// that JetStream no longer knows the ids of what the killed process
// published: the restart must find where it stopped from the stream's
// last message. Reading the stream afterwards yields every change
// exactly once, each key's changes in the order they were made, and no
// message id twice.
func TestNATSExactlyOnceUnderKill(t *testing.T) {
	const (
		total  = 50_000
		pause  = 10 * time.Millisecond
		window = time.Second
	)
	js := natstest.Connect(t)
	dsn, conn, ctx := postgres(t, 4*time.Minute)
	setup(t)
	if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, ver int NOT NULL, note text); ALTER TABLE items REPLICA IDENTITY FULL"); err != nil {
		t.Fatal(err)
	}
	// Subjects and stream of this run only: a server keeps streams.
	run := fmt.Sprintf("eon%d", time.Now().UnixNano()%1_000_000_000)
	stream := "sluice_" + run
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })
	file := writePipeline(t, fmt.Sprintf(`
pipeline %q {}

source "postgres" "app" {
  dsn    = %q
  tables = ["public.items"]
}

sink "nats" "events" {
  from             = source.app
  url              = %q
  subject          = "%s.{schema}.{table}"
  stream           = %q
  format           = "debezium"
  duplicate_window = %q
}
`, run, dsn, natstest.URL(), run, stream, window.String()))
	proc := startInstance(t, file, "")
	waitForSlot(ctx, t, conn)

	var done atomic.Int64
	want := map[string][]string{}
	workload := make(chan error, 1)
	go func() { workload <- applyChanges(ctx, conn, total, pause, &done, want) }()
	start := time.Now()
	for k := 1; k <= 2; k++ {
		at := int64(k*total/3 + rand.IntN(total/6) - total/12)
		for done.Load() < at {
			if proc.exited() {
				t.Fatalf("sluice exited on its own before kill %d", k)
			}
			time.Sleep(20 * time.Millisecond)
		}
		proc.signal(syscall.SIGKILL)
		if k == 2 {
			time.Sleep(window + 500*time.Millisecond) // the ids of what it published are forgotten
		}
		proc.start()
		t.Logf("kill %d at %v, after %d changes", k, time.Since(start).Round(time.Millisecond), done.Load())
	}
	if err := <-workload; err != nil {
		t.Fatalf("workload: %v", err)
	}
	t.Logf("workload of %d changes done in %v", total, time.Since(start).Round(time.Millisecond))

	// Wait until the stream holds as many messages as changes were made,
	// then stop sluice and read it all: anything published twice would
	// be there too.
	count := func() uint64 {
		info, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatalf("stream %s: %v", stream, err)
		}
		return info.CachedInfo().State.Msgs
	}
	for n := count(); n < total; n = count() {
		if ctx.Err() != nil || proc.exited() {
			t.Fatalf("after %v the stream holds %d of %d changes (sluice exited: %v)", time.Since(start).Round(time.Second), n, total, proc.exited())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // room for a duplicate to arrive
	proc.signal(syscall.SIGTERM)

	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	ids := map[string]bool{}
	seen := 0
	for int(count()) > seen {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for m := range batch.Messages() {
			n++
			id := m.Headers().Get(jetstream.MsgIDHeader)
			if ids[id] {
				t.Fatalf("message id %s twice in the stream", id)
			}
			ids[id] = true
			e, row, err := kafkasource.DecodeDebezium(nil, m.Data())
			if err != nil || !row {
				t.Fatalf("message %s: not a row change (%v): %s", id, err, m.Data())
			}
			key, step := describe(e)
			got[key] = append(got[key], step)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		seen += n
	}
	if seen != total {
		t.Errorf("the stream holds %d changes, %d were made", seen, total)
	}
	sameChanges(t, want, got)
}
