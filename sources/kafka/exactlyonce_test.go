package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	kafkasink "github.com/sluice-cdc/sluice/sinks/kafka"
)

// TestKafkaToKafkaExactlyOnceAcrossCrash runs this source into an
// exactly-once Kafka sink, crashes both with a transaction open and
// nothing acknowledged to the group, and resumes from the sink's committed
// checkpoint: a read_committed consumer of the output sees every input
// record exactly once, in order per input partition.
func TestKafkaToKafkaExactlyOnceAcrossCrash(t *testing.T) {
	brokers := cluster(t, 3)
	const total = 150
	produce(t, brokers, 0, total, 15)
	ctx := context.Background()
	sinkBlock := &dsl.Sink{Type: "kafka", Name: "out", Kafka: &dsl.KafkaSink{Brokers: brokers, Topic: "out", Format: "native", ExactlyOnce: true, Partitions: 2}}
	build := engine.Build{Pipeline: engine.Pipeline{Name: "replica"}, Logger: slog.New(slog.DiscardHandler)}

	// Run 1: flush every batch, acknowledge nothing, and stop mid-batch.
	sink1, err := kafkasink.New(build, sinkBlock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sink1.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	src1 := source(t, brokers, nil)
	src1.maxPoll = 20
	written := 0
	cp := change.Checkpoint{}
	for written < total/2 {
		evs := readN(t, src1, 1, false)
		if err := sink1.Write(ctx, evs); err != nil {
			t.Fatal(err)
		}
		written += len(evs)
		for _, e := range evs {
			cp.Advance(e.Position)
		}
		if written < total/2 {
			if _, err := sink1.Flush(ctx, cp.Clone()); err != nil {
				t.Fatal(err)
			}
		}
	}
	src1.Close() // the group's offsets stay uncommitted; sink1 is abandoned with its transaction open

	// Run 2: the sink's checkpoint is where the source resumes.
	sink2, err := kafkasink.New(build, sinkBlock)
	if err != nil {
		t.Fatal(err)
	}
	defer sink2.Close()
	from, err := sink2.Open(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(from) == 0 {
		t.Fatal("the sink committed checkpoints in run 1 but Open found none")
	}
	src2 := source(t, brokers, from)
	defer src2.Close()
	remaining := total
	for _, p := range from {
		remaining -= int(p.Offset) + 1
	}
	got := 0
	for got < remaining {
		evs := readN(t, src2, 1, false)
		got += len(evs)
		if err := sink2.Write(ctx, evs); err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			from.Advance(e.Position)
		}
		if _, err := sink2.Flush(ctx, from.Clone()); err != nil {
			t.Fatal(err)
		}
		if err := src2.Ack(ctx, from.Clone()); err != nil {
			t.Fatal(err)
		}
	}
	if got != remaining {
		t.Fatalf("run 2 read %d events, want the %d after the checkpoint", got, remaining)
	}

	// Every input record once, in order per input partition.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]int{}
	last := map[string]uint64{}
	deadline, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for n := 0; n < total; {
		fs := cl.PollFetches(deadline)
		if deadline.Err() != nil {
			t.Fatalf("output holds %d records, want %d", n, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var part, pos string
			for _, h := range r.Headers {
				switch h.Key {
				case kafkasink.HeaderPartition:
					part = string(h.Value)
				case kafkasink.HeaderPosition:
					pos = string(h.Value)
				}
			}
			p, err := change.ParsePosition(change.Stream{Source: "changes", Partition: part}, pos)
			if err != nil || !strings.HasPrefix(part, topic+"/") {
				t.Fatalf("record headers %v: %v", r.Headers, err)
			}
			id := fmt.Sprintf("%s@%d", part, p.Offset)
			seen[id]++
			if seen[id] > 1 {
				t.Fatalf("input record %s is in the output twice", id)
			}
			n++
			stream := fmt.Sprintf("out/%d<-%s", r.Partition, part)
			if prev, ok := last[stream]; ok && p.Offset <= prev {
				t.Fatalf("%s: input offset %d after %d: order lost", stream, p.Offset, prev)
			}
			last[stream] = p.Offset
		})
	}
	if len(seen) != total {
		t.Fatalf("%d distinct input records in the output, want %d", len(seen), total)
	}
}
