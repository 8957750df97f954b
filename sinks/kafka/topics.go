package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-cdc/sluice/engine/change"
)

// ensureTopic creates topic unless it exists, and remembers it.
func (s *Sink) ensureTopic(ctx context.Context, topic string, partitions int32, configs map[string]string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = topic
	t.NumPartitions = partitions
	t.ReplicationFactor = s.repl
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, kmsg.StringPtr(v)
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return s.classify("create topic "+topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			msg := ""
			if rt.ErrorMessage != nil {
				msg = " (" + *rt.ErrorMessage + ")"
			}
			return s.classify(fmt.Sprintf("create topic %q with %d partitions and replication factor %d%s", topic, partitions, s.repl, msg), err)
		}
	}
	s.known[topic] = true
	return nil
}

// readCheckpoint returns the checkpoint made of the last committed record
// of each key that starts with prefix (one per stream) in CheckpointTopic,
// reading it read_committed from the start to its last stable offset.
// Control records are kept so that the read knows it reached that offset
// even when the log ends with a commit or abort marker.
//
// It also returns the last committed value of the record stateKey (the
// resolved state; nil if there is none or stateKey is "").
func readCheckpoint(ctx context.Context, admin *kgo.Client, brokers []string, prefix, stateKey string, extra []kgo.Opt) (change.Checkpoint, []byte, error) {
	end, err := lastStableOffset(ctx, admin, CheckpointTopic, 0)
	if err != nil {
		return nil, nil, err
	}
	cp := change.Checkpoint{}
	if end <= 0 {
		return cp, nil, nil
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{CheckpointTopic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	last := map[string][]byte{}
	var state []byte
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return nil, nil, fmt.Errorf("partition %d: %w", errs[0].Partition, errs[0].Err)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			switch {
			case r.Attrs.IsControl():
			case strings.HasPrefix(string(r.Key), prefix):
				last[string(r.Key)] = r.Value
			case stateKey != "" && string(r.Key) == stateKey:
				state = r.Value
			}
			done = done || r.Offset >= end-1
		})
		if done {
			break
		}
	}
	for key, value := range last {
		var one change.Checkpoint
		if err := one.UnmarshalJSON(value); err != nil {
			return nil, nil, fmt.Errorf("the record with key %q is corrupt (%v): produce a record with that key and the value [] to forget the stream's position", key, err)
		}
		maps.Copy(cp, one)
	}
	return cp, state, nil
}

// lastStableOffset asks the partition's leader for its last stable offset
// (the end a read_committed consumer can reach).
func lastStableOffset(ctx context.Context, cl *kgo.Client, topic string, partition int32) (int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = partition
	rp.Timestamp = -1 // latest
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if t.Topic != topic || p.Partition != partition {
				continue
			}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return 0, fmt.Errorf("list offsets of %s/%d: %w", topic, partition, err)
			}
			return p.Offset, nil
		}
	}
	return 0, fmt.Errorf("list offsets of %s/%d: no answer for the partition", topic, partition)
}
