package kafka_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/filerun"
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
	run := filerun.Runner(t, src, components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"file": filesource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"kafka": kafkasink.New},
		Transform: transforms.New,
	})
	filerun.AppendUsers(t, filepath.Join(dir, "in.jsonl"), 0, 300)
	run()
	run()
	filerun.AppendUsers(t, filepath.Join(dir, "in.jsonl"), 300, 500)
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
