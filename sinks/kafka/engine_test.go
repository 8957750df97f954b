package kafka_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	kafkasink "github.com/sluice-cdc/sluice/sinks/kafka"
	filesource "github.com/sluice-cdc/sluice/sources/file"
	"github.com/sluice-cdc/sluice/transforms"
)

// TestEngineFileToKafkaTwice runs a file of native events through the
// engine into an exactly-once Kafka sink twice (the second run finds
// everything committed) and then with more lines: a read_committed
// consumer sees every event once.
func TestEngineFileToKafkaTwice(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	src := fmt.Sprintf(`
pipeline "users" { state = %q }
source "file" "in" { path = %q }
transform "public" {
  from    = source.in
  exclude = ["password"]
}
sink "kafka" "events" {
  from         = transform.public
  brokers      = [%q]
  exactly_once = true
  tombstones   = true
  partitions   = 3
}
`, filepath.Join(dir, "state.db"), filepath.Join(dir, "in.jsonl"), c.ListenAddrs()[0])
	cfg, _, diags := dsl.Load("users.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	reg := components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"file": filesource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"kafka": kafkasink.New},
		Transform: transforms.New,
	}
	run := func() {
		g, err := components.Compile(cfg, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := g.Run(ctx, engine.RunOptions{Logger: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
	}
	appendLines(t, filepath.Join(dir, "in.jsonl"), 0, 300)
	run()
	run()
	appendLines(t, filepath.Join(dir, "in.jsonl"), 300, 500)
	run()

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("users.public.users"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const want = 500 + 500/10 // every tenth line is a delete, followed by a tombstone
	n := 0
	for n < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			n++
			var pos string
			for _, h := range r.Headers {
				if h.Key == kafkasink.HeaderPosition {
					pos = string(h.Value)
				}
			}
			kind := "value"
			if r.Value == nil {
				kind = "tombstone"
			}
			seen[pos+" "+kind]++
			if r.Value != nil && strings.Contains(string(r.Value), "hunter2") {
				t.Errorf("an excluded column reached Kafka: %s", r.Value)
			}
		})
	}
	if n != want || len(seen) != want {
		t.Fatalf("read_committed consumer saw %d records (%d distinct), want %d once each", n, len(seen), want)
	}
}

// appendLines appends native events [from, to): inserts, every tenth a
// delete of the row before it.
func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	for i := from; i < to; i++ {
		if i%10 == 9 {
			fmt.Fprintf(w, `{"op":"delete","schema":"public","table":"users","key":{"id":%d},"before":{"id":%d}}`+"\n", i-1, i-1)
			continue
		}
		fmt.Fprintf(w, `{"op":"insert","schema":"public","table":"users","key":{"id":%d},"after":{"id":%d,"email":"u%d@example.com","password":"hunter2"}}`+"\n", i, i, i)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
