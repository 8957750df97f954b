package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/format"
)

// resolvedState is the value of the sink's state record in
// CheckpointTopic (key "<pipeline>/<sink>#resolved"): the resolver's
// state, with the last T emitted, and the topics the sink writes, so
// that a restarted sink sends resolved records to all of them before it
// writes to any (an idle source still advances T).
type resolvedState struct {
	Resolver json.RawMessage `json:"resolver"`
	Topics   []string        `json:"topics"`
}

// restore takes the resolver's state and the written topics from the
// state record's value (nil: none yet). The state is kept by `sluice
// drop`: T goes on from it, never backwards.
func (s *Sink) restore(value []byte) error {
	if s.resolver == nil {
		return nil
	}
	var st resolvedState
	var err error
	if len(value) > 0 && string(value) != "null" {
		err = json.Unmarshal(value, &st)
	}
	if err == nil {
		err = s.resolver.Restore(st.Resolver)
	}
	if err != nil {
		return engine.Permanent(fmt.Errorf("%s: the resolved state in %s (key %q) is damaged (%v): produce a record with that key and the value null to start resolved timestamps over", s.label, CheckpointTopic, s.stateKey, err))
	}
	for _, t := range st.Topics {
		s.written[t] = true
	}
	return nil
}

// ensureStatic creates (once per Open) the topics the sink writes
// whatever the events, a topic without placeholders and the transactions
// topic, so that resolved records reach them before the first event.
func (s *Sink) ensureStatic(ctx context.Context) error {
	if s.static {
		return nil
	}
	if s.outbox == nil && !strings.Contains(s.topic, "{") {
		if err := s.ensure(ctx, s.topic, func(err error) error { return engine.Permanent(fmt.Errorf("%s%s: %v", s.topicRng, s.label, err)) }); err != nil {
			return err
		}
	}
	if s.txs != nil {
		if err := s.ensure(ctx, s.txTopic, func(err error) error { return engine.Permanent(fmt.Errorf("%s: transactions_topic: %v", s.label, err)) }); err != nil {
			return err
		}
	}
	s.static = true
	return nil
}

// produceResolved produces, in the open transaction, a resolved record to
// every partition of every topic the sink writes and the state record
// with res as the last T. The caller commits the transaction.
func (s *Sink) produceResolved(ctx context.Context, res *format.Resolved, now time.Time) error {
	parts, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	s.resolver.Emitted(*res, now)
	s.produceState(ctx)
	s.produceResolvedRecords(ctx, res, parts)
	return nil
}

// resolveAtLeastOnce is produceResolved without a transaction: the state
// record first, acknowledged before any resolved record is produced, so
// that no consumer sees a T the sink could forget.
func (s *Sink) resolveAtLeastOnce(ctx context.Context, res *format.Resolved, now time.Time) error {
	parts, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	s.resolver.Emitted(*res, now)
	for _, step := range []func(){func() { s.produceState(ctx) }, func() { s.produceResolvedRecords(ctx, res, parts) }} {
		step()
		if err := s.cl.Flush(ctx); err != nil {
			return fmt.Errorf("%s: flush: %w", s.label, err)
		}
		if err := s.firstProduceErr(); err != nil {
			return err
		}
	}
	return nil
}

// produceState produces the state record.
func (s *Sink) produceState(ctx context.Context) {
	st := resolvedState{Resolver: s.resolver.State()}
	for t := range s.written {
		st.Topics = append(st.Topics, t)
	}
	slices.Sort(st.Topics)
	value, _ := json.Marshal(st) // strings and raw JSON: cannot fail
	s.cl.Produce(ctx, &kgo.Record{Topic: CheckpointTopic, Key: []byte(s.stateKey), Value: value}, s.promise)
}

// produceResolvedRecords produces res to each partition of parts: a
// record without a key (as CockroachDB's), the resolved message as its
// value, and headers sluice.resolved (T) and, when known, the position's.
func (s *Sink) produceResolvedRecords(ctx context.Context, res *format.Resolved, parts map[string]int32) {
	value := s.format.AppendResolved(nil, res)
	headers := []kgo.RecordHeader{{Key: HeaderResolved, Value: []byte(res.Time.UTC().Format(time.RFC3339Nano))}}
	if !res.Position.IsZero() {
		headers = append(headers, kgo.RecordHeader{Key: HeaderSource, Value: []byte(res.Position.Source)})
		if res.Position.Partition != "" {
			headers = append(headers, kgo.RecordHeader{Key: HeaderPartition, Value: []byte(res.Position.Partition)})
		}
		headers = append(headers, kgo.RecordHeader{Key: HeaderPosition, Value: []byte(res.Position.String())})
	}
	pctx := context.WithValue(ctx, pinned{}, true)
	topics := make([]string, 0, len(parts))
	for t := range parts {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	for _, t := range topics {
		for p := range parts[t] {
			s.cl.Produce(pctx, &kgo.Record{Topic: t, Partition: p, Value: value, Headers: headers, Context: pctx}, s.promise)
		}
	}
}

// partitions asks the brokers how many partitions each topic the sink
// writes has (asked afresh each time: partitions may have been added). A
// topic that no longer exists is no longer one the sink writes.
func (s *Sink) partitions(ctx context.Context) (map[string]int32, error) {
	if err := s.ensureStatic(ctx); err != nil {
		return nil, err
	}
	out := map[string]int32{}
	if len(s.written) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrMetadataRequest()
	for t := range s.written {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, s.cl)
	if err != nil {
		return nil, s.classify("describe the topics for resolved records", err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case errors.Is(err, kerr.UnknownTopicOrPartition):
			delete(s.written, *t.Topic)
		case err != nil:
			return nil, s.classify("describe topic "+*t.Topic, err)
		default:
			out[*t.Topic] = int32(len(t.Partitions))
		}
	}
	return out, nil
}

// pinned is the context key that marks a record whose Partition is set
// by the sink (a resolved record, one per partition).
type pinned struct{}

// pinning is the producer's partitioner with resolved records: records
// whose context carries pinned go to their Partition, every other one as
// the wrapped partitioner decides.
type pinning struct{ kgo.Partitioner }

func (p pinning) ForTopic(topic string) kgo.TopicPartitioner {
	return &pinningTopic{inner: p.Partitioner.ForTopic(topic)}
}

type pinningTopic struct{ inner kgo.TopicPartitioner }

func isPinned(r *kgo.Record) bool { return r.Context != nil && r.Context.Value(pinned{}) != nil }

func (p *pinningTopic) RequiresConsistency(r *kgo.Record) bool {
	return isPinned(r) || p.inner.RequiresConsistency(r)
}

func (p *pinningTopic) Partition(r *kgo.Record, n int) int {
	if isPinned(r) {
		return int(r.Partition)
	}
	return p.inner.Partition(r, n)
}

func (p *pinningTopic) OnNewBatch() {
	if nb, ok := p.inner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

func (p *pinningTopic) PartitionByBackup(r *kgo.Record, n int, backup kgo.TopicBackupIter) int {
	if isPinned(r) {
		return int(r.Partition)
	}
	if b, ok := p.inner.(kgo.TopicBackupPartitioner); ok {
		return b.PartitionByBackup(r, n, backup)
	}
	return p.inner.Partition(r, n)
}
