package kafka_test

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/kafka"
	"github.com/sluice-cdc/sluice/sinks/sinktest"
)

// acceptanceTopic is the one topic, of one partition, every table goes
// to in the acceptance cases, so that the records have one order.
const acceptanceTopic = "sinktest.changes"

// TestAcceptance runs the acceptance kit every sink passes against an
// in-process Kafka cluster of its own per case, with exactly_once (the
// mode that promises what the kit checks; without it delivery is at least
// once) and the default Debezium format, read back from the start by a
// read_committed consumer. The sink refuses an event whose key it cannot
// encode as JSON: a NaN key (a float column holding NaN).
func TestAcceptance(t *testing.T) {
	sinktest.Run(t, sinktest.Factory{
		Name: "kafka",
		Kind: sinktest.Log,
		NewTarget: func(t *testing.T) *sinktest.Target {
			c, err := kfake.NewCluster(kfake.NumBrokers(1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			brokers := c.ListenAddrs()
			block := &dsl.Sink{Type: "kafka", Name: "events", Kafka: &dsl.KafkaSink{
				Brokers: brokers, Topic: acceptanceTopic, Format: "debezium", ExactlyOnce: true, Partitions: 1, ReplicationFactor: 1,
			}}
			return &sinktest.Target{
				New:      func(b engine.Build) (engine.Sink, error) { return kafka.New(b, block) },
				Messages: func(t *testing.T) []sinktest.Message { return committedRecords(t, brokers) },
			}
		},
		Reject: func(e change.Event) change.Event {
			nan := change.RowOf(map[string]any{"id": math.NaN()})
			after := e.After.Clone()
			after.Set("id", math.NaN())
			e.Key, e.After = nan, after
			return e
		},
		Truncate: sinktest.TruncateMessage,
	})
}

// committedRecords reads acceptanceTopic from the start up to its last
// stable offset, as a read_committed consumer sees it.
func committedRecords(t *testing.T, brokers []string) []sinktest.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1 // read_committed: the last stable offset
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = acceptanceTopic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp = 0, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("list offsets: %d topics in the answer", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); errors.Is(err, kerr.UnknownTopicOrPartition) {
		return nil
	} else if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	end := p.Offset
	if end <= 0 {
		return nil
	}
	// Control records (transaction markers) are kept to see the offsets
	// up to the end; aborted records are left out by read_committed.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{acceptanceTopic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords(), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []sinktest.Message
	for next := int64(0); next < end; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s up to offset %d of %d: %v", acceptanceTopic, next, end, ctx.Err())
		}
		fs.EachError(func(topic string, part int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, part, err) })
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if r.Attrs.IsControl() || r.Offset >= end {
				return
			}
			m, err := sinktest.DecodeDebezium(r.Key, r.Value)
			if err != nil {
				t.Fatalf("record at offset %d: %v", r.Offset, err)
			}
			out = append(out, m)
		})
	}
	return out
}
