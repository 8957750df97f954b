package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/internal/kafkaconn"
)

// maxPoll is the most records one Read returns.
const maxPoll = 1000

// Source is the Kafka source. Build it with New.
type Source struct {
	name string
	// instance is the process's among those running the pipeline side by
	// side (engine.Pipeline.Instance): the group's static member id.
	instance string
	label    string // `kafka source "NAME"`
	brokers  []string
	topics   []string
	group    string
	native   bool
	log      *slog.Logger
	obs      engine.Observer // takes the consumer-group lag (engine.SourceLagObserver)
	// revokeWait bounds how long a revocation waits for the sinks to
	// acknowledge what was delivered of the revoked partitions.
	revokeWait time.Duration
	conn       []kgo.Opt // the tls and sasl blocks' options (kafkaconn)
	extraOpts  []kgo.Opt // tests: shorter group timeouts
	maxPoll    int       // the most records one Read returns

	cl *kgo.Client
	// resume, when set, reads the sinks' committed positions afresh at
	// each partition assignment (see SetResume).
	resume func(ctx context.Context) (change.Checkpoint, error)

	mu        sync.Mutex
	acks      *sync.Cond
	from      change.Checkpoint   // committed positions: Open's, advanced by Ack
	delivered map[partition]int64 // the last offset Read returned, per owned partition
	acked     map[partition]int64 // the last offset acknowledged
	committed map[partition]int64 // the offset committed to the group (next to read)
	// hwm is, per owned partition fetched from, its end at the last fetch
	// (the last stable offset: records are read committed); first is the
	// first offset fetched of it since it was assigned. See lagLocked.
	hwm     map[partition]int64
	first   map[partition]int64
	closing bool
}

type partition struct {
	topic string
	part  int32
}

var (
	_ engine.Source       = (*Source)(nil)
	_ engine.ResumeSetter = (*Source)(nil)
)

// New builds the source of a `source "kafka"` block. It does not contact
// the brokers (Open does).
func New(b engine.Build, s *dsl.Source) (engine.Source, error) {
	return newSource(b, s)
}

func newSource(b engine.Build, s *dsl.Source) (*Source, error) {
	c := s.Kafka
	label := fmt.Sprintf("kafka source %q", s.Name)
	if c == nil {
		return nil, engine.Permanent(fmt.Errorf("%s: block has no kafka configuration", label))
	}
	switch {
	case len(c.Brokers) == 0:
		return nil, engine.Permanent(fmt.Errorf(`%s%s: brokers is empty: list at least one "host:port"`, dsl.At(c.Ranges, "brokers"), label))
	case len(c.Topics) == 0:
		return nil, engine.Permanent(fmt.Errorf("%s%s: topics is empty: list the topics to consume", dsl.At(c.Ranges, "topics"), label))
	case c.Group == "":
		return nil, engine.Permanent(fmt.Errorf("%s%s: group is empty: name the consumer group", dsl.At(c.Ranges, "group"), label))
	case c.Format != "" && c.Format != "debezium" && c.Format != "native":
		return nil, engine.Permanent(fmt.Errorf(`%s%s: unknown format %q: use "debezium" or "native"`, dsl.At(c.Ranges, "format"), label, c.Format))
	}
	logger := b.Logger
	if logger == nil {
		logger = slog.Default()
	}
	src := &Source{
		instance: b.Pipeline.Instance,
		name:     s.Name, label: label, brokers: c.Brokers, topics: c.Topics, group: c.Group,
		native: c.Format == "native", log: logger.With("source", s.Name), revokeWait: 30 * time.Second, maxPoll: maxPoll,
		obs: b.Observer,
	}
	src.acks = sync.NewCond(&src.mu)
	conn, err := kafkaconn.Options(c.TLS, c.SASL)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s: %w", label, err))
	}
	src.conn = conn
	return src, nil
}

// Open joins the consumer group. Partitions are assigned as the group
// balances; each resumes after its position in from when from has one.
func (s *Source) Open(ctx context.Context, from change.Checkpoint, _ engine.State) error {
	_ = s.Close() // opened again after an error: start over
	s.mu.Lock()
	s.from = from.Clone()
	s.delivered, s.acked, s.committed = map[partition]int64{}, map[partition]int64{}, map[partition]int64{}
	s.hwm, s.first = map[partition]int64{}, map[partition]int64{}
	s.closing = false
	s.mu.Unlock()
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.ConsumerGroup(s.group),
		kgo.ConsumeTopics(s.topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.AdjustFetchOffsetsFn(s.adjust),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.lost),
	}, append(s.conn, s.extraOpts...)...)
	if inst := s.instance; inst != "" {
		// Static membership: a restarted process rejoins as the member it
		// was and gets its partitions back at once, instead of leaving
		// them unread until the group's session timeout expires its
		// predecessor (45 s by default).
		opts = append(opts, kgo.InstanceID(inst))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return engine.Permanent(fmt.Errorf("%s: %v", s.label, err))
	}
	if err := kafkaconn.Ping(ctx, cl, s.label); err != nil {
		cl.Close()
		return err
	}
	s.mu.Lock()
	s.cl = cl
	s.mu.Unlock()
	return nil
}

// Read returns the next records as events, one Boundary each. It blocks
// until there is at least one.
func (s *Source) Read(ctx context.Context) ([]change.Event, error) {
	if s.cl == nil {
		return nil, fmt.Errorf("%s: Read before Open", s.label)
	}
	for {
		s.cl.AllowRebalance()
		fs := s.cl.PollRecords(ctx, s.maxPoll)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if fs.IsClientClosed() {
			return nil, fmt.Errorf("%s: %w", s.label, kgo.ErrClientClosed)
		}
		for _, fe := range fs.Errors() {
			if errors.Is(fe.Err, context.Canceled) || errors.Is(fe.Err, context.DeadlineExceeded) {
				continue
			}
			err := fmt.Errorf("%s: topic %s partition %d: %w", s.label, fe.Topic, fe.Partition, fe.Err)
			if errors.Is(fe.Err, kerr.TopicAuthorizationFailed) || errors.Is(fe.Err, kerr.GroupAuthorizationFailed) {
				err = engine.Permanent(err)
			}
			return nil, err
		}
		events, err := s.decode(fs)
		s.reportLag()
		if err != nil || len(events) > 0 {
			return events, err
		}
	}
}

// decode turns fetched records into events, skipping those at or before
// the committed positions.
func (s *Source) decode(fs kgo.Fetches) ([]change.Event, error) {
	var out []change.Event
	var err error
	s.mu.Lock()
	defer s.mu.Unlock()
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		end := p.LastStableOffset
		if end < 0 {
			end = p.HighWatermark
		}
		if end >= 0 {
			s.hwm[partition{p.Topic, p.Partition}] = end
		}
	})
	fs.EachRecord(func(r *kgo.Record) {
		if _, ok := s.first[partition{r.Topic, r.Partition}]; !ok {
			s.first[partition{r.Topic, r.Partition}] = r.Offset
		}
		if err != nil {
			return
		}
		pos := change.Position{Source: s.name, Partition: r.Topic + "/" + strconv.Itoa(int(r.Partition)), Offset: uint64(r.Offset)}
		if s.from.Covers(pos) {
			return
		}
		e, row, derr := s.decodeRecord(r)
		if derr != nil {
			err = engine.Permanent(fmt.Errorf("%s: topic %s partition %d offset %d: %v (the record is not a %s change event: fix the producer, or move the group past it with kafka-consumer-groups --reset-offsets)",
				s.label, r.Topic, r.Partition, r.Offset, derr, s.formatName()))
			return
		}
		if !row {
			e = change.Event{Op: change.Mark}
		}
		e.Position, e.Boundary = pos, true
		out = append(out, e)
		s.delivered[partition{r.Topic, r.Partition}] = r.Offset
	})
	return out, err
}

func (s *Source) decodeRecord(r *kgo.Record) (change.Event, bool, error) {
	if !s.native {
		return DecodeDebezium(r.Key, r.Value)
	}
	if len(r.Value) == 0 || string(r.Value) == "null" {
		return change.Event{}, false, nil
	}
	e, err := format.DecodeNative(r.Value)
	e.Position = change.Position{}
	return e, err == nil, err
}

func (s *Source) formatName() string {
	if s.native {
		return "native"
	}
	return "debezium"
}

// Ack records that every event at or before cp is durable in every sink
// and commits the next offsets to the group. A failed group commit is
// logged, not returned: the sinks' checkpoints are the truth and the next
// Ack commits again. Only partitions this member has delivered records of
// since they were assigned are committed: cp also carries the positions
// the sinks opened with for partitions another process of the group owns
// now, and committing those would move that process's offsets back.
func (s *Source) Ack(ctx context.Context, cp change.Checkpoint) error {
	commit := map[string]map[int32]kgo.EpochOffset{}
	s.mu.Lock()
	for st, pos := range cp {
		if st.Source != s.name {
			continue
		}
		p, ok := parsePartition(st.Partition)
		if !ok {
			continue
		}
		s.from.Advance(pos)
		if _, owned := s.delivered[p]; !owned {
			continue
		}
		off := int64(pos.Offset)
		if a, seen := s.acked[p]; !seen || off > a {
			s.acked[p] = off
		}
		if c, seen := s.committed[p]; !seen || off+1 > c {
			if commit[p.topic] == nil {
				commit[p.topic] = map[int32]kgo.EpochOffset{}
			}
			commit[p.topic][p.part] = kgo.EpochOffset{Epoch: -1, Offset: off + 1}
		}
	}
	s.acks.Broadcast()
	cl := s.cl
	s.mu.Unlock()
	s.reportLag()
	if len(commit) > 0 && cl != nil {
		s.commit(ctx, cl, commit)
	}
	return nil
}

// reportLag gives the observer the consumer-group lag of every owned
// partition fetched from (engine.ReportSourceLag): the partition's end at
// the last fetch minus the next offset after what every sink has made
// durable (the one Ack commits to the group). A partition nothing was
// fetched of since its assignment is not reported. The end is as of the
// last fetch that returned the partition, and a transactional producer's
// commit marker counts as a record until a record after it is read.
func (s *Source) reportLag() {
	if s.obs == nil {
		return
	}
	s.mu.Lock()
	parts := make([]engine.PartitionLag, 0, len(s.hwm))
	for p, end := range s.hwm {
		next := end // fetched, with no record: nothing to read
		if f, ok := s.first[p]; ok {
			next = f
		}
		if pos, ok := s.from[change.Stream{Source: s.name, Partition: p.topic + "/" + strconv.Itoa(int(p.part))}]; ok && int64(pos.Offset)+1 > next {
			next = int64(pos.Offset) + 1
		}
		parts = append(parts, engine.PartitionLag{Topic: p.topic, Partition: p.part, HighWatermark: end, Committed: next})
	}
	s.mu.Unlock()
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Topic != parts[j].Topic {
			return parts[i].Topic < parts[j].Topic
		}
		return parts[i].Partition < parts[j].Partition
	})
	engine.ReportSourceLag(s.obs, s.name, parts)
}

// commit commits offsets to the group and remembers the ones that took.
func (s *Source) commit(ctx context.Context, cl *kgo.Client, offsets map[string]map[int32]kgo.EpochOffset) {
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			s.log.Warn("committing offsets to the consumer group failed; the next acknowledgement retries", "group", s.group, "err", err)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					s.log.Warn("committing an offset failed", "topic", t.Topic, "partition", p.Partition, "err", err)
					continue
				}
				s.committed[partition{t.Topic, p.Partition}] = offsets[t.Topic][p.Partition].Offset
			}
		}
	})
}

// SetResume gives the source a function that reads the positions the
// sinks downstream have committed now (the lowest per stream, as in
// engine's checkpoint Min). The source calls it whenever partitions are
// assigned, before Open's checkpoint, because a partition that moves here
// from another process was committed there after this process started.
// Without it, a moved partition resumes at the group's committed offset,
// which lags the other process's sinks by what they committed but had
// not acknowledged when it died, so those events are applied again.
// Call it before Open; the engine does (engine.ResumeSetter).
func (s *Source) SetResume(fn func(ctx context.Context) (change.Checkpoint, error)) {
	s.resume = fn
}

// adjust starts each assigned partition after the committed position
// sluice holds for it, or at the group's offset if that is further.
func (s *Source) adjust(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var fresh change.Checkpoint
	if s.resume != nil {
		cp, err := s.resume(ctx)
		if err != nil {
			// Without fresh positions, a partition taken over from a
			// dead process could be applied twice: better not consume.
			return nil, fmt.Errorf("%s: read the sinks' committed positions for the assigned partitions: %w", s.label, err)
		}
		fresh = cp
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range fresh {
		if p.Source == s.name {
			s.from.Advance(p)
		}
	}
	for topic, parts := range offsets {
		for part, off := range parts {
			s.forget(partition{topic, part})
			pos, ok := s.from[change.Stream{Source: s.name, Partition: topic + "/" + strconv.Itoa(int(part))}]
			if !ok {
				continue
			}
			next := int64(pos.Offset) + 1
			if group := off.EpochOffset().Offset; group > next {
				next = group
			}
			parts[part] = kgo.NewOffset().At(next)
		}
	}
	return offsets, nil
}

// revoked waits until what was delivered of the revoked partitions is
// acknowledged (up to revokeWait), commits it, and forgets them, so the
// next owner starts right after.
func (s *Source) revoked(ctx context.Context, cl *kgo.Client, revoked map[string][]int32) {
	deadline := time.Now().Add(s.revokeWait)
	timer := time.AfterFunc(s.revokeWait, func() {
		s.mu.Lock()
		s.acks.Broadcast()
		s.mu.Unlock()
	})
	defer timer.Stop()
	commit := map[string]map[int32]kgo.EpochOffset{}
	s.mu.Lock()
	for topic, parts := range revoked {
		for _, part := range parts {
			p := partition{topic, part}
			for !s.closing && time.Now().Before(deadline) && s.unacked(p) {
				s.acks.Wait()
			}
			if s.unacked(p) {
				s.log.Warn("partition revoked before the sinks acknowledged all of it; its next owner re-reads the rest", "topic", topic, "partition", part)
			}
			if a, ok := s.acked[p]; ok && a+1 > s.committed[p] {
				if commit[topic] == nil {
					commit[topic] = map[int32]kgo.EpochOffset{}
				}
				commit[topic][part] = kgo.EpochOffset{Epoch: -1, Offset: a + 1}
			}
		}
	}
	s.mu.Unlock()
	if len(commit) > 0 {
		s.commit(ctx, cl, commit)
	}
	s.lost(ctx, cl, revoked)
}

// unacked reports whether Read returned records of p that are not
// acknowledged yet. Call with mu held.
func (s *Source) unacked(p partition) bool {
	d, ok := s.delivered[p]
	if !ok {
		return false
	}
	a, ok := s.acked[p]
	return !ok || a < d
}

// lost forgets partitions taken away without a chance to commit.
func (s *Source) lost(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range parts {
		for _, part := range ps {
			s.forget(partition{topic, part})
		}
	}
}

// forget drops the tracking of a partition this member no longer owns
// (or owns afresh). Call with mu held.
func (s *Source) forget(p partition) {
	delete(s.delivered, p)
	delete(s.acked, p)
	delete(s.committed, p)
	delete(s.hwm, p)
	delete(s.first, p)
}

// Close leaves the group (committing what was acknowledged) and closes
// the client.
func (s *Source) Close() error {
	s.mu.Lock()
	cl := s.cl
	s.closing = true
	s.acks.Broadcast()
	s.mu.Unlock()
	if cl == nil {
		return nil
	}
	// A commit racing with the close fails harmlessly (logged): the
	// client stays valid to call until Close returns.
	cl.CloseAllowingRebalance()
	s.mu.Lock()
	s.cl = nil
	s.mu.Unlock()
	return nil
}

// parsePartition reads "topic/3".
func parsePartition(s string) (partition, bool) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return partition{}, false
	}
	n, err := strconv.ParseInt(s[i+1:], 10, 32)
	if err != nil {
		return partition{}, false
	}
	return partition{s[:i], int32(n)}, true
}
