package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/internal/kafkaconn"
	"github.com/sluice-cdc/sluice/sinks/txmeta"
)

// CheckpointTopic is the compacted topic where exactly-once sinks commit
// their checkpoints, one record per sink keyed "<pipeline>/<sink>".
const CheckpointTopic = "sluice_checkpoints"

// Header keys of every record the sink produces.
const (
	HeaderSource    = "sluice.source"    // the source block
	HeaderPartition = "sluice.partition" // the source partition ("topic/3" when the source is Kafka); absent when empty
	HeaderPosition  = "sluice.position"  // Position.String(): "OFFSET.INDEX"
	// HeaderResolved is on resolved records only: their T, RFC 3339.
	HeaderResolved = "sluice.resolved"
)

// maxBuffered bounds the records produced but not yet acknowledged, and
// so the sink's memory: Write blocks beyond it.
const maxBuffered = 10_000

// Sink is the Kafka sink. Build it with New; the zero value is not usable.
type Sink struct {
	label     string // `kafka sink "NAME"` for messages
	ckptKey   string // "<pipeline>/<sink>/": the prefix of this sink's checkpoint records
	txnID     string // "" without exactly_once
	brokers   []string
	topic     string // template with {schema} and {table}
	keyCols   []string
	tombs     bool
	parts     int32
	repl      int16
	format    format.Meta
	log       *slog.Logger
	topicRng  string    // where `topic` is written, for errors
	extraOpts []kgo.Opt // the tls and sasl blocks' options (kafkaconn)
	// linger and batchBytes are the producer's batching (producer_linger,
	// batch_bytes).
	linger     time.Duration
	batchBytes int32
	// outbox, when set, routes rows by expressions (see route); eval runs
	// them.
	outbox *dsl.KafkaOutbox
	eval   eventexpr.Evaluator
	// txs numbers transactions (transactions = true); their BEGIN and END
	// go to txTopic. nil when off.
	txs     *txmeta.Transactions
	txTopic string
	// resolver emits resolved records (resolved = "...") to every
	// partition of every topic in written; its state and the topics are
	// the record stateKey of CheckpointTopic. nil when off.
	resolver *txmeta.Resolver
	stateKey string
	written  map[string]bool
	static   bool // the topics written whatever the events are in written
	now      func() time.Time

	cl     *kgo.Client
	known  map[string]bool // topics that exist
	inTxn  bool
	broken error // set when a failed transaction leaves the client unusable
	// committed is the checkpoint as last committed, so a Flush writes
	// only the streams that moved (and nothing when none did).
	committed change.Checkpoint

	errMu      sync.Mutex
	produceErr error // the first produce failure since the last Flush
}

var (
	_ engine.Sink            = (*Sink)(nil)
	_ engine.CommittedReader = (*Sink)(nil)
	_ engine.Forgetter       = (*Sink)(nil)
)

// New builds the sink of a `sink "kafka"` block. It checks the block; it
// does not contact the brokers (Open does).
func New(b engine.Build, s *dsl.Sink) (engine.Sink, error) {
	return newSink(b, s)
}

func newSink(b engine.Build, s *dsl.Sink) (*Sink, error) {
	c := s.Kafka
	label := fmt.Sprintf("kafka sink %q", s.Name)
	if c == nil {
		return nil, engine.Permanent(fmt.Errorf("%s: block has no kafka configuration", label))
	}
	bad := func(attr, msg string, args ...any) error {
		return engine.Permanent(fmt.Errorf("%s%s: %s", dsl.At(c.Ranges, attr), label, fmt.Sprintf(msg, args...)))
	}
	if len(c.Brokers) == 0 {
		return nil, bad("brokers", `brokers is empty: list at least one "host:port"`)
	}
	f, err := format.Lookup(c.Format)
	if err != nil {
		return nil, bad("format", "%v", err)
	}
	if c.Schemas {
		d, ok := f.(format.Debezium)
		if !ok {
			return nil, bad("schemas", `schemas = true adds Debezium's schema part, which the %s format does not have: use format = "debezium" or remove schemas`, f.Name())
		}
		d.Schemas = true
		f = d
	}
	if err := checkTemplate(c.Topic); err != nil {
		return nil, bad("topic", "%v", err)
	}
	if c.ReplicationFactor > 32767 {
		return nil, bad("replication_factor", "replication_factor %d is too large", c.ReplicationFactor)
	}
	pipeline := b.Pipeline.Name
	txTopic := c.TransactionsTopic
	if txTopic == "" {
		txTopic = pipeline + ".transaction"
	}
	if c.Transactions {
		if c.Outbox != nil {
			return nil, bad("transactions", "transactions = true puts a transaction block in each event's value, and an outbox block makes the values itself: remove one of them")
		}
		if err := checkTopic(txTopic); err != nil {
			return nil, bad("transactions_topic", "transactions_topic: %v", err)
		}
	}
	logger := b.Logger
	if logger == nil {
		logger = slog.Default()
	}
	sk := &Sink{
		label:    label,
		ckptKey:  pipeline + "/" + s.Name + "/",
		brokers:  c.Brokers,
		topic:    c.Topic,
		keyCols:  c.Key,
		tombs:    c.Tombstones,
		parts:    int32(max(c.Partitions, 1)),
		repl:     int16(max(c.ReplicationFactor, 1)),
		format:   f.(format.Meta),
		log:      logger.With("sink", s.Name),
		topicRng: dsl.At(c.Ranges, "topic"),
		now:      time.Now,
	}
	if c.Transactions {
		sk.txs, sk.txTopic = txmeta.NewTransactions(), txTopic
	}
	if c.Resolved > 0 {
		sk.resolver, sk.stateKey = txmeta.NewResolver(c.Resolved), pipeline+"/"+s.Name+"#resolved"
	}
	sk.outbox = c.Outbox
	sk.linger, sk.batchBytes = 5*time.Millisecond, int32(1000012)
	if c.ProducerLinger > 0 {
		sk.linger = c.ProducerLinger
	}
	if c.BatchBytes > 0 {
		sk.batchBytes = int32(min(c.BatchBytes, 1<<30))
	}
	if sk.extraOpts, err = kafkaconn.Options(c.TLS, c.SASL); err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s: %w", label, err))
	}
	if inst := b.Pipeline.Instance; inst != "" && sk.resolver != nil {
		sk.stateKey += "." + inst
	}
	if c.ExactlyOnce {
		sk.txnID = "sluice." + pipeline + "." + s.Name
		if inst := b.Pipeline.Instance; inst != "" {
			sk.txnID += "." + inst
		}
	}
	return sk, nil
}

// Open connects and returns the committed checkpoint: with exactly_once
// the one in CheckpointTopic (after fencing any earlier producer with the
// same transactional id, which aborts its open transaction), otherwise
// the one decoded from saved.
func (s *Sink) Open(ctx context.Context, saved []byte) (change.Checkpoint, error) {
	_ = s.Close() // opened again after an error: start over
	opts := []kgo.Opt{
		kgo.SeedBrokers(s.brokers...),
		kgo.MaxBufferedRecords(maxBuffered),
		kgo.ProducerLinger(s.linger),
		kgo.ProducerBatchMaxBytes(s.batchBytes),
	}
	if s.txnID != "" {
		opts = append(opts, kgo.TransactionalID(s.txnID), kgo.TransactionTimeout(time.Minute))
	}
	if s.resolver != nil {
		opts = append(opts, kgo.RecordPartitioner(pinning{kgo.UniformBytesPartitioner(64<<10, true, true, nil)}))
	}
	cl, err := kgo.NewClient(append(opts, s.extraOpts...)...)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s: %v", s.label, err))
	}
	s.cl, s.known, s.inTxn, s.broken, s.produceErr, s.committed = cl, map[string]bool{}, false, nil, nil, change.Checkpoint{}
	s.written, s.static = map[string]bool{}, false
	if s.txs != nil {
		s.txs.Reset()
	}
	if err := kafkaconn.Ping(ctx, cl, s.label); err != nil {
		return nil, err
	}
	if s.txnID == "" {
		if s.resolver != nil {
			if err := s.ensureTopic(ctx, CheckpointTopic, 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
				return nil, err
			}
			_, state, err := readCheckpoint(ctx, cl, s.brokers, s.ckptKey, s.stateKey, s.extraOpts)
			if err != nil {
				return nil, fmt.Errorf("%s: read the resolved state from %s: %w", s.label, CheckpointTopic, err)
			}
			if err := s.restore(state); err != nil {
				return nil, err
			}
		}
		if saved == nil {
			return change.Checkpoint{}, nil
		}
		var cp change.Checkpoint
		if err := cp.UnmarshalJSON(saved); err != nil {
			return nil, engine.Permanent(fmt.Errorf("%s: the saved checkpoint in the state file is corrupt (%v): remove the sink's entry from the state file to produce from the beginning", s.label, err))
		}
		return cp, nil
	}
	// InitProducerID fences an earlier producer with our id and aborts
	// its open transaction, so the checkpoint topic's last stable offset
	// moves past it before we read.
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return nil, s.classify("initialise the transactional producer", err)
	}
	if err := s.ensureTopic(ctx, CheckpointTopic, 1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		return nil, err
	}
	cp, state, err := readCheckpoint(ctx, cl, s.brokers, s.ckptKey, s.stateKey, s.extraOpts)
	if err != nil {
		return nil, fmt.Errorf("%s: read the committed checkpoint from %s: %w", s.label, CheckpointTopic, err)
	}
	if err := s.restore(state); err != nil {
		return nil, err
	}
	s.committed = cp.Clone()
	return cp, nil
}

// Forget makes an exactly_once sink's checkpoint records in
// CheckpointTopic empty (engine.Forgetter): one record per stream with
// the value [], in one transaction, after fencing any producer with the
// sink's transactional id. Other sinks keep their checkpoint in the state
// file, which drop removes: there is nothing here to forget.
func (s *Sink) Forget(ctx context.Context) (bool, error) {
	if s.txnID == "" {
		return false, nil
	}
	cp, err := s.Open(ctx, nil)
	if err != nil {
		return false, err
	}
	defer s.Close()
	if len(cp) == 0 {
		return false, nil
	}
	var streams []change.Stream
	for st := range cp {
		streams = append(streams, st)
	}
	if err := s.commitCheckpoint(ctx, change.Checkpoint{}, streams); err != nil {
		return false, err
	}
	return true, nil
}

// Committed reads the checkpoint the sink has committed to Kafka so far,
// afresh: what a Kafka source needs when a partition moves to this
// process (see the source's SetResume, which the engine wires to this
// through engine.CommittedReader). Only exactly-once sinks keep a
// checkpoint in Kafka; the others report an error. Safe to call from
// another goroutine than Write and Flush.
func (s *Sink) Committed(ctx context.Context) (change.Checkpoint, error) {
	if s.txnID == "" {
		return nil, fmt.Errorf("%s: %w: only an exactly_once sink keeps its checkpoint in Kafka", s.label, engine.ErrNoCommitted)
	}
	if s.cl == nil {
		return nil, fmt.Errorf("%s: Committed before Open", s.label)
	}
	cp, _, err := readCheckpoint(ctx, s.cl, s.brokers, s.ckptKey, "", s.extraOpts)
	if err != nil {
		return nil, fmt.Errorf("%s: read the committed checkpoint from %s: %w", s.label, CheckpointTopic, err)
	}
	return cp, nil
}

// Write produces events (Marks are skipped). With exactly_once they join
// the open transaction, beginning one if needed; nothing is visible to
// read_committed consumers before Flush. Write blocks while the client's
// buffer is full. A produce failure is reported by this or a later Write,
// or by Flush. With transactions, each source transaction's BEGIN goes to
// the transactions topic before its first event and its END at the event
// that ends it (a Mark, usually).
func (s *Sink) Write(ctx context.Context, events []change.Event) error {
	if s.cl == nil {
		return fmt.Errorf("%s: Write before Open", s.label)
	}
	if s.broken != nil {
		return s.broken
	}
	if err := s.firstProduceErr(); err != nil {
		return err
	}
	if s.txnID != "" && !s.inTxn {
		if err := s.cl.BeginTransaction(); err != nil {
			return s.classify("begin a transaction", err)
		}
		s.inTxn = true
	}
	for i := range events {
		e := &events[i]
		if s.resolver != nil {
			s.resolver.Note(e)
		}
		if s.txs == nil {
			if e.Op != change.Mark {
				if err := s.produceEvent(ctx, e, nil); err != nil {
					return err
				}
			}
			continue
		}
		step := s.txs.Next(e)
		for _, t := range []*format.Transaction{step.Prev, step.Begin} {
			if t != nil {
				if err := s.produceTransaction(ctx, t, e); err != nil {
					return err
				}
			}
		}
		if e.Op != change.Mark {
			if err := s.produceEvent(ctx, e, step.Order); err != nil {
				return err
			}
		}
		if step.End != nil {
			if err := s.produceTransaction(ctx, step.End, e); err != nil {
				return err
			}
		}
	}
	return ctx.Err()
}

// produceEvent produces one data event (and its tombstone), or routes it
// through the outbox block.
func (s *Sink) produceEvent(ctx context.Context, e *change.Event, order *format.TxOrder) error {
	if s.outbox != nil {
		return s.route(ctx, e)
	}
	topic := render(s.topic, e)
	if err := s.ensure(ctx, topic, func(err error) error {
		return engine.Permanent(fmt.Errorf("%s%s: table %s: %v", s.topicRng, s.label, e.QualifiedTable(), err))
	}); err != nil {
		return err
	}
	key, err := recordKey(e, s.keyCols)
	if err != nil {
		return &engine.RejectError{Event: *e, Err: fmt.Errorf("%s: %v", s.label, err)}
	}
	headers := positionHeaders(e)
	s.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Value: s.format.AppendInTx(nil, e, order), Headers: headers}, s.promise)
	if s.tombs && e.Op == change.Delete {
		s.cl.Produce(ctx, &kgo.Record{Topic: topic, Key: key, Headers: headers}, s.promise)
	}
	return nil
}

// produceTransaction produces a BEGIN or END to the transactions topic,
// keyed {"id":"<txid>:<offset>"} as Debezium keys them, with the headers
// of e, the event it comes with.
func (s *Sink) produceTransaction(ctx context.Context, t *format.Transaction, e *change.Event) error {
	if err := s.ensure(ctx, s.txTopic, func(err error) error {
		return engine.Permanent(fmt.Errorf("%s: transactions_topic: %v", s.label, err))
	}); err != nil {
		return err
	}
	key, _ := json.Marshal(struct {
		ID string `json:"id"`
	}{t.ID})
	s.cl.Produce(ctx, &kgo.Record{Topic: s.txTopic, Key: key, Value: s.format.AppendTransaction(nil, t), Headers: positionHeaders(e)}, s.promise)
	return nil
}

// ensure creates topic unless the sink knows it; bad wraps a name Kafka
// refuses.
func (s *Sink) ensure(ctx context.Context, topic string, bad func(error) error) error {
	if s.known[topic] {
		return nil
	}
	if err := checkTopic(topic); err != nil {
		return bad(err)
	}
	if err := s.ensureTopic(ctx, topic, s.parts, nil); err != nil {
		return err
	}
	s.written[topic] = true
	return nil
}

// positionHeaders are the headers of every record: the event's stream
// and position.
func positionHeaders(e *change.Event) []kgo.RecordHeader {
	headers := []kgo.RecordHeader{{Key: HeaderSource, Value: []byte(e.Position.Source)}}
	if e.Position.Partition != "" {
		headers = append(headers, kgo.RecordHeader{Key: HeaderPartition, Value: []byte(e.Position.Partition)})
	}
	return append(headers, kgo.RecordHeader{Key: HeaderPosition, Value: []byte(e.Position.String())})
}

// Flush waits until every record written is acknowledged. With
// exactly_once it then commits them in one transaction with cp (a
// transaction of cp alone when nothing was written, so checkpoints still
// advance past filtered rows) and returns nil bytes: Kafka holds the
// checkpoint. Otherwise it returns cp as bytes for the state file.
//
// With resolved, when a resolved message is due (txmeta.Resolver.Due),
// Flush also produces it to every partition of every topic the sink
// writes, with the state record that keeps its T: with exactly_once in
// the same transaction, after the records it covers; otherwise once those
// are acknowledged, the state record first.
//
// After an error the open transaction is aborted and the sink must be
// opened again; the engine replays from the committed checkpoint.
func (s *Sink) Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error) {
	if s.cl == nil {
		return nil, fmt.Errorf("%s: Flush before Open", s.label)
	}
	if s.broken != nil {
		return nil, s.broken
	}
	now := s.now()
	var res format.Resolved
	due := false
	if s.resolver != nil {
		res, due = s.resolver.Due(cp, now)
	}
	if s.txnID == "" {
		if err := s.cl.Flush(ctx); err != nil {
			return nil, fmt.Errorf("%s: flush: %w", s.label, err)
		}
		if err := s.firstProduceErr(); err != nil {
			return nil, err
		}
		if due {
			if err := s.resolveAtLeastOnce(ctx, &res, now); err != nil {
				return nil, err
			}
		}
		return cp.MarshalJSON()
	}
	moved := s.moved(cp)
	if !s.inTxn && len(moved) == 0 && !due {
		return nil, nil // nothing written and the checkpoint is already committed
	}
	if due {
		if !s.inTxn {
			if err := s.cl.BeginTransaction(); err != nil {
				return nil, s.classify("begin a transaction", err)
			}
			s.inTxn = true
		}
		// In the transaction that commits what T covers, after it: a
		// read_committed consumer sees both or, after an abort, neither.
		if err := s.produceResolved(ctx, &res, now); err != nil {
			return nil, s.fail(err)
		}
	}
	if err := s.commitCheckpoint(ctx, cp, moved); err != nil {
		return nil, err
	}
	for _, st := range moved {
		s.committed[st] = cp[st]
	}
	return nil, nil
}

// commitCheckpoint writes one checkpoint record for each of streams (its
// position in cp; where cp lacks it, the empty checkpoint, which forgets
// the stream) in the open transaction, begun here if none is, and commits
// the transaction with every record produced in it.
func (s *Sink) commitCheckpoint(ctx context.Context, cp change.Checkpoint, streams []change.Stream) error {
	if !s.inTxn {
		if err := s.cl.BeginTransaction(); err != nil {
			return s.classify("begin a transaction", err)
		}
		s.inTxn = true
	}
	for _, st := range streams {
		one := change.Checkpoint{}
		if p, ok := cp[st]; ok {
			one[st] = p
		}
		value, err := one.MarshalJSON()
		if err != nil {
			return s.fail(err)
		}
		s.cl.Produce(ctx, &kgo.Record{Topic: CheckpointTopic, Key: []byte(s.ckptKey + st.String()), Value: value}, s.promise)
	}
	if err := s.cl.Flush(ctx); err != nil {
		return s.fail(fmt.Errorf("%s: flush: %w", s.label, err))
	}
	if err := s.firstProduceErr(); err != nil {
		return s.fail(err)
	}
	s.inTxn = false
	if err := s.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return s.fail(s.classify("commit the transaction", err))
	}
	return nil
}

// moved lists the streams whose position in cp differs from the
// committed one. Only those are written: with several processes sharing
// a Kafka source's partitions, each writes the streams it owns, and a
// process never overwrites a stream another one has moved on.
func (s *Sink) moved(cp change.Checkpoint) []change.Stream {
	var out []change.Stream
	for st, p := range cp {
		if q, ok := s.committed[st]; !ok || q != p {
			out = append(out, st)
		}
	}
	return out
}

// Close aborts an open transaction (best effort) and closes the client.
func (s *Sink) Close() error {
	if s.cl == nil {
		return nil
	}
	if s.inTxn {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.cl.AbortBufferedRecords(ctx)
		_ = s.cl.EndTransaction(ctx, kgo.TryAbort)
		cancel()
	}
	s.cl.Close()
	s.cl = nil
	return nil
}

// fail aborts the open transaction after err and marks the sink unusable
// until it is opened again.
func (s *Sink) fail(err error) error {
	if s.inTxn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.cl.AbortBufferedRecords(ctx)
		_ = s.cl.EndTransaction(ctx, kgo.TryAbort)
		cancel()
		s.inTxn = false
	}
	s.broken = fmt.Errorf("%s: unusable after an earlier failure, open it again: %w", s.label, err)
	return err
}

func (s *Sink) promise(r *kgo.Record, err error) {
	if err == nil {
		return
	}
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.produceErr == nil {
		s.produceErr = s.classify("produce to topic "+r.Topic, err)
	}
}

func (s *Sink) firstProduceErr() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.produceErr
}

// classify wraps a client error with what the sink was doing, marking
// the ones that retrying cannot fix as permanent.
func (s *Sink) classify(doing string, err error) error {
	switch {
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.TransactionalIDAuthorizationFailed):
		return engine.Permanent(fmt.Errorf("%s: %s: %w (another sluice process with transactional id %q took over: processes that run the same pipeline side by side need distinct %s values)", s.label, doing, err, s.txnID, engine.InstanceEnv))
	case errors.Is(err, kerr.TopicAuthorizationFailed), errors.Is(err, kerr.ClusterAuthorizationFailed):
		return engine.Permanent(fmt.Errorf("%s: %s: %w (grant the sink's principal write access)", s.label, doing, err))
	case errors.Is(err, kerr.InvalidTopicException):
		return engine.Permanent(fmt.Errorf("%s%s: %s: %w (topic names allow letters, digits, '.', '_' and '-': change the topic template)", s.topicRng, s.label, doing, err))
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kgo.ErrRecordTimeout):
		return fmt.Errorf("%s: %s: %w", s.label, doing, err)
	}
	return fmt.Errorf("%s: %s: %w", s.label, doing, err)
}

// render fills the topic template with the event's schema and table.
func render(tpl string, e *change.Event) string {
	if !strings.Contains(tpl, "{") {
		return tpl
	}
	return strings.NewReplacer("{schema}", e.Schema, "{table}", e.Table).Replace(tpl)
}

// checkTemplate rejects placeholders other than {schema} and {table}.
func checkTemplate(tpl string) error {
	if tpl == "" {
		return errors.New(`topic is empty: write a name or a template such as "app.{schema}.{table}"`)
	}
	rest := strings.NewReplacer("{schema}", "", "{table}", "").Replace(tpl)
	if i := strings.IndexAny(rest, "{}"); i >= 0 {
		return fmt.Errorf("topic %q: only {schema} and {table} can be replaced; remove the other braces", tpl)
	}
	return nil
}

// checkTopic applies Kafka's rules for topic names, which brokers enforce
// (kfake does not), so the error names the table and the template.
func checkTopic(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("topic %q is not a valid Kafka topic name (1 to 249 characters, not \".\" or \"..\"): change the topic template", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic %q has %q: topic names allow letters, digits, '.', '_' and '-'; change the topic template", name, r)
		}
	}
	return nil
}
