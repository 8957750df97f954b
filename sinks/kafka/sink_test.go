package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

func cluster(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func block(brokers []string, exactlyOnce bool) *dsl.Sink {
	return &dsl.Sink{Type: "kafka", Name: "events", Kafka: &dsl.KafkaSink{
		Brokers: brokers, Topic: "app.{schema}.{table}", Format: "debezium", Tombstones: true,
		ExactlyOnce: exactlyOnce, Partitions: 3, ReplicationFactor: 1,
	}}
}

func open(t testing.TB, b *dsl.Sink, saved []byte) (*Sink, change.Checkpoint) {
	t.Helper()
	return openInstance(t, b, saved, "")
}

// openInstance is open in the process named instance (engine.Pipeline.Instance).
func openInstance(t testing.TB, b *dsl.Sink, saved []byte, instance string) (*Sink, change.Checkpoint) {
	t.Helper()
	s, err := newSink(engine.Build{Pipeline: engine.Pipeline{Name: "shop", Instance: instance}, Logger: slog.New(slog.DiscardHandler)}, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := s.Open(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	return s, cp
}

// changes makes n changes of `keys` rows of public.users: inserts first,
// then updates, each its own source transaction (a Boundary) at LSN
// 100+i; every seventh change after the inserts is a delete followed by
// a re-insert so tombstones appear in the middle of a key's history.
func changes(from, n, keys int) []change.Event {
	out := make([]change.Event, 0, n)
	for i := from; i < from+n; i++ {
		id := int64(i % keys)
		e := change.Event{Schema: "public", Table: "users", Key: change.RowOf(map[string]any{"id": id}),
			Tx: change.Tx{ID: uint64(500 + i), CommitTime: time.Unix(1767323045, 0).UTC()}, Boundary: true,
			Position: change.Position{Source: "app", Offset: uint64(100 + i)}}
		row := change.RowOf(map[string]any{"id": id, "version": int64(i)})
		switch {
		case i < keys:
			e.Op, e.After = change.Insert, row
		case i%7 == 0:
			e.Op, e.Before = change.Delete, change.RowOf(map[string]any{"id": id})
		default:
			e.Op, e.After, e.Before = change.Update, row, change.RowOf(map[string]any{"id": id})
		}
		out = append(out, e)
	}
	return out
}

func through(events []change.Event) change.Checkpoint {
	cp := change.Checkpoint{}
	for i := range events {
		cp.Advance(events[i].Position)
	}
	return cp
}

// consumed is one record as a read_committed consumer saw it.
type consumed struct {
	key, pos string
	op       string // the Debezium op; "" for a tombstone
	version  int64
}

// consume reads topic from the start with isolation.level=read_committed
// until it holds want records, and fails if more arrive within a grace
// period.
func consume(t *testing.T, brokers []string, topic string, want int) []consumed {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []consumed
	deadline := time.Now().Add(20 * time.Second)
	grace := time.Time{}
	for {
		if len(out) >= want && grace.IsZero() {
			grace = time.Now().Add(300 * time.Millisecond)
		}
		if !grace.IsZero() && time.Now().After(grace) || time.Now().After(deadline) {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			c := consumed{key: string(r.Key)}
			for _, h := range r.Headers {
				if h.Key == HeaderPosition {
					c.pos = string(h.Value)
				}
			}
			if r.Value != nil {
				var env struct {
					Op     string         `json:"op"`
					After  map[string]any `json:"after"`
					Before map[string]any `json:"before"`
				}
				if err := json.Unmarshal(r.Value, &env); err != nil {
					t.Fatalf("record value %s: %v", r.Value, err)
				}
				c.op = env.Op
				if v, ok := env.After["version"].(float64); ok {
					c.version = int64(v)
				}
			}
			out = append(out, c)
		})
	}
	if len(out) != want {
		t.Fatalf("read_committed consumer saw %d records, want %d", len(out), want)
	}
	return out
}

// records is how many records events become with tombstones on.
func records(events []change.Event) int {
	n := len(events)
	for _, e := range events {
		if e.Op == change.Delete {
			n++
		}
	}
	return n
}

// checkOncePerKeyInOrder checks that the consumer saw every event of
// events exactly once, each key's changes in source order.
func checkOncePerKeyInOrder(t *testing.T, got []consumed, events []change.Event) {
	t.Helper()
	want := map[string][]string{}
	for _, e := range events {
		k := fmt.Sprintf(`{"id":%d}`, e.Key.Get("id"))
		want[k] = append(want[k], e.Position.String())
		if e.Op == change.Delete {
			want[k] = append(want[k], "tombstone "+e.Position.String())
		}
	}
	have := map[string][]string{}
	for _, c := range got {
		p := c.pos
		if c.op == "" {
			p = "tombstone " + p
		}
		have[c.key] = append(have[c.key], p)
	}
	if len(have) != len(want) {
		t.Fatalf("keys: got %d, want %d", len(have), len(want))
	}
	for k, w := range want {
		if strings.Join(have[k], ",") != strings.Join(w, ",") {
			t.Fatalf("key %s: got positions %v, want %v", k, have[k], w)
		}
	}
}

func TestExactlyOnceRecordsKeysHeadersTombstones(t *testing.T) {
	brokers := cluster(t)
	s, cp := open(t, block(brokers, true), nil)
	defer s.Close()
	if len(cp) != 0 {
		t.Fatalf("fresh cluster: checkpoint %v, want empty", cp)
	}
	ctx := context.Background()
	evs := changes(0, 60, 5)
	for i := 0; i < len(evs); i += 20 {
		if err := s.Write(ctx, evs[i:i+20]); err != nil {
			t.Fatal(err)
		}
		if saved, err := s.Flush(ctx, through(evs[:i+20])); err != nil || saved != nil {
			t.Fatalf("Flush: %q, %v; want nil bytes (Kafka holds the checkpoint)", saved, err)
		}
	}
	got := consume(t, brokers, "app.public.users", records(evs))
	checkOncePerKeyInOrder(t, got, evs)
	// The topic was created with the block's partition count.
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer cl.Close()
	parts, err := partitionsOf(ctx, cl, "app.public.users")
	if err != nil || parts != 3 {
		t.Fatalf("topic has %d partitions (%v), want 3", parts, err)
	}
	_, back := open(t, block(brokers, true), nil)
	if !back.Covers(evs[59].Position) || back.Covers(change.Position{Source: "app", Offset: 160}) {
		t.Fatalf("reopened checkpoint %v, want through %v", back, evs[59].Position)
	}
	if now, err := s.Committed(ctx); err != nil || fmt.Sprint(now) != fmt.Sprint(back) {
		t.Fatalf("Committed = %v, %v; want %v", now, err, back)
	}
}

// TestCrashBeforeCommit writes a batch, flushes it, writes another and
// never flushes nor closes (a SIGKILL): the reopened sink reads the first
// checkpoint, the replayed batch is committed once, and a read_committed
// consumer sees every change exactly once.
func TestCrashBeforeCommit(t *testing.T) {
	brokers := cluster(t)
	ctx := context.Background()
	evs := changes(0, 40, 4)
	crashed, _ := open(t, block(brokers, true), nil)
	if err := crashed.Write(ctx, evs[:25]); err != nil {
		t.Fatal(err)
	}
	if _, err := crashed.Flush(ctx, through(evs[:25])); err != nil {
		t.Fatal(err)
	}
	if err := crashed.Write(ctx, evs[25:]); err != nil {
		t.Fatal(err)
	}
	if err := crashed.cl.Flush(ctx); err != nil { // the records reach the broker, uncommitted
		t.Fatal(err)
	}

	s, cp := open(t, block(brokers, true), nil) // fences the crashed producer
	defer s.Close()
	if want := through(evs[:25]); fmt.Sprint(cp) != fmt.Sprint(want) {
		t.Fatalf("after the crash Open returned %v, want %v", cp, want)
	}
	var replay []change.Event
	for _, e := range evs {
		if !cp.Covers(e.Position) {
			replay = append(replay, e)
		}
	}
	if err := s.Write(ctx, replay); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, through(evs)); err != nil {
		t.Fatal(err)
	}
	checkOncePerKeyInOrder(t, consume(t, brokers, "app.public.users", records(evs)), evs)

	// The crashed process, if it were still alive, is fenced for good.
	_, err := crashed.Flush(ctx, through(evs))
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "another sluice process") {
		t.Fatalf("zombie Flush: got %v, want a permanent fencing error", err)
	}
	crashed.Close()
}

func TestAtLeastOnceSavesCheckpointBytes(t *testing.T) {
	brokers := cluster(t)
	ctx := context.Background()
	b := block(brokers, false)
	b.Kafka.Format = "native"
	b.Kafka.Tombstones = false
	b.Kafka.Topic = "flat"
	s, _ := open(t, b, nil)
	evs := changes(0, 10, 10)
	if err := s.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	saved, err := s.Flush(ctx, through(evs))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	checkOncePerKeyInOrder(t, consume(t, brokers, "flat", 10), evs)
	_, cp := open(t, b, saved)
	if fmt.Sprint(cp) != fmt.Sprint(through(evs)) {
		t.Fatalf("Open(saved) = %v, want %v", cp, through(evs))
	}
}

func TestRecordKey(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.FixedZone("x", 3600))
	for _, tc := range []struct {
		name string
		e    change.Event
		cols []string
		want string
	}{
		{"primary key", change.Event{Op: change.Insert, Key: change.RowOf(map[string]any{"id": int64(1)})}, nil, `{"id":1}`},
		{"composite sorted", change.Event{Op: change.Insert, Key: change.RowOf(map[string]any{"b": "x", "a": int64(2)})}, nil, `{"a":2,"b":"x"}`},
		{"composite in table order", change.Event{Op: change.Insert, Key: change.MakeRow(change.NewColumns("b", "c", "a"), []any{"x", change.Unsent, int64(2)})}, nil, `{"a":2,"b":"x"}`},
		{"configured in table order", change.Event{Op: change.Update, After: change.MakeRow(change.NewColumns("id", "email"), []any{int64(3), "a@b"})}, []string{"id", "email"}, `{"email":"a@b","id":3}`},
		{"numeric exact", change.Event{Op: change.Insert, Key: change.RowOf(map[string]any{"n": change.Numeric("12.50")})}, nil, `{"n":12.50}`},
		{"time utc", change.Event{Op: change.Insert, Key: change.RowOf(map[string]any{"t": ts})}, nil, `{"t":"2026-01-02T02:04:05.000006Z"}`},
		{"configured from row", change.Event{Op: change.Update, After: change.RowOf(map[string]any{"email": "a@b", "id": int64(3)})}, []string{"email"}, `{"email":"a@b"}`},
		{"no key", change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"v": int64(1)})}, nil, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := recordKey(&tc.e, tc.cols)
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
	e := change.Event{Op: change.Delete, Schema: "public", Table: "users", Before: change.RowOf(map[string]any{"id": int64(1)})}
	if _, err := recordKey(&e, []string{"email"}); err == nil || !strings.Contains(err.Error(), `key column "email"`) {
		t.Fatalf("missing key column: got %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*dsl.KafkaSink)
		want string
	}{
		{"format", func(c *dsl.KafkaSink) { c.Format = "avro" }, `unknown format "avro"`},
		{"template", func(c *dsl.KafkaSink) { c.Topic = "app.{db}.{table}" }, "only {schema} and {table}"},
		{"schemas native", func(c *dsl.KafkaSink) { c.Schemas = true; c.Format = "native" }, "schemas = true adds Debezium's schema part"},
		{"brokers", func(c *dsl.KafkaSink) { c.Brokers = nil }, "brokers is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := block([]string{"127.0.0.1:1"}, true)
			tc.edit(b.Kafka)
			_, err := New(engine.Build{}, b)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !engine.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent error containing %q", err, tc.want)
			}
		})
	}
}

func TestBadTopicNameIsPermanent(t *testing.T) {
	brokers := cluster(t)
	b := block(brokers, false)
	b.Kafka.Topic = "bad topic {table}"
	s, _ := open(t, b, nil)
	defer s.Close()
	err := s.Write(context.Background(), changes(0, 1, 1))
	if err == nil || !strings.Contains(err.Error(), "bad topic users") {
		t.Fatalf("got %v, want an error naming the topic", err)
	}
	var rej *engine.RejectError
	if errors.As(err, &rej) {
		t.Fatalf("a bad topic template is a configuration error, not a rejected row: %v", err)
	}
}

func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) (int, error) {
	req := kmsgMetadata(topic)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	for _, t := range resp.Topics {
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("no metadata for %s", topic)
}

func kmsgMetadata(topic string) *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestMarksOnlyAdvanceCheckpoint checks that a Flush after Marks alone
// commits the checkpoint, so filtered rows do not hold it back.
func TestMarksOnlyAdvanceCheckpoint(t *testing.T) {
	brokers := cluster(t)
	s, _ := open(t, block(brokers, true), nil)
	defer s.Close()
	ctx := context.Background()
	marks := []change.Event{{Op: change.Mark, Position: change.Position{Source: "app", Offset: 77}, Boundary: true}}
	if err := s.Write(ctx, marks); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, through(marks)); err != nil {
		t.Fatal(err)
	}
	_, cp := open(t, block(brokers, true), nil)
	if !cp.Covers(marks[0].Position) {
		t.Fatalf("checkpoint %v does not cover the mark at 77", cp)
	}
	// A Flush with nothing new commits no transaction.
	before, err := lastStableOffset(ctx, s.cl, CheckpointTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, through(marks)); err != nil {
		t.Fatal(err)
	}
	if after, _ := lastStableOffset(ctx, s.cl, CheckpointTopic, 0); after != before {
		t.Fatalf("an idle Flush moved the checkpoint topic from offset %d to %d", before, after)
	}
}

func benchmarkSink(b *testing.B, exactlyOnce bool) {
	brokers := cluster(b)
	s, _ := open(b, block(brokers, exactlyOnce), nil)
	defer s.Close()
	ctx := context.Background()
	const flushEvery = 1000
	evs := changes(0, flushEvery, 500)
	b.ResetTimer()
	for n := 0; n < b.N; n += flushEvery {
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
		if _, err := s.Flush(ctx, through(evs)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkExactlyOnce measures events/s into kfake with a transaction
// per 1000 events (Debezium format, tombstones on).
func BenchmarkExactlyOnce(b *testing.B) { benchmarkSink(b, true) }

// BenchmarkAtLeastOnce is the same with the idempotent producer.
func BenchmarkAtLeastOnce(b *testing.B) { benchmarkSink(b, false) }

// TestTwoInstancesKeepTheirStreams runs two exactly-once sinks of the same
// pipeline side by side (distinct instances), as two processes
// sharing a Kafka source's partitions do: neither fences the other, each
// commits the streams it moves, and a stale position one of them still
// holds for a stream the other moved on never overwrites it.
func TestTwoInstancesKeepTheirStreams(t *testing.T) {
	brokers := cluster(t)
	ctx := context.Background()
	a, _ := openInstance(t, block(brokers, true), nil, "a")
	defer a.Close()
	b, _ := openInstance(t, block(brokers, true), nil, "b")
	defer b.Close()
	if a.txnID == b.txnID {
		t.Fatalf("both instances use transactional id %q", a.txnID)
	}
	p := func(part string, off uint64) change.Position {
		return change.Position{Source: "changes", Partition: part, Offset: off}
	}
	write := func(s *Sink, cp change.Checkpoint, pos change.Position) {
		t.Helper()
		e := changes(0, 1, 1)[0]
		e.Position = pos
		if err := s.Write(ctx, []change.Event{e}); err != nil {
			t.Fatal(err)
		}
		cp.Advance(pos)
		if _, err := s.Flush(ctx, cp.Clone()); err != nil {
			t.Fatal(err)
		}
	}
	cpA, cpB := change.Checkpoint{}, change.Checkpoint{}
	write(b, cpB, p("in/0", 3)) // b owned partition 0 first
	write(a, cpA, p("in/0", 5)) // then a took it over and moved on
	write(b, cpB, p("in/1", 8)) // b still holds in/0 at 3 in its checkpoint
	_, got := open(t, block(brokers, true), nil)
	want := change.Checkpoint{}
	want.Advance(p("in/0", 5))
	want.Advance(p("in/1", 8))
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("committed checkpoint %v, want %v", got, want)
	}
}

// TestForgetEmptiesTheCommittedCheckpoint: `sluice drop` calls Forget, so
// that an exactly-once sink opened afterwards starts with nothing
// committed; an at-least-once sink keeps nothing in Kafka to forget.
func TestForgetEmptiesTheCommittedCheckpoint(t *testing.T) {
	brokers := cluster(t)
	ctx := context.Background()
	evs := changes(0, 10, 4)
	s, _ := open(t, block(brokers, true), nil)
	if err := s.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, through(evs)); err != nil {
		t.Fatal(err)
	}
	s.Close()

	f, err := newSink(engine.Build{Pipeline: engine.Pipeline{Name: "shop"}, Logger: slog.New(slog.DiscardHandler)}, block(brokers, true))
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := f.Forget(ctx); err != nil || !removed {
		t.Fatalf("Forget: %v, %v; want a checkpoint removed", removed, err)
	}
	if removed, err := f.Forget(ctx); err != nil || removed {
		t.Fatalf("second Forget: %v, %v; want nothing left to remove", removed, err)
	}
	again, cp := open(t, block(brokers, true), nil)
	again.Close()
	if len(cp) != 0 {
		t.Errorf("Open after Forget returned %v, want an empty checkpoint", cp)
	}
	plain, err := newSink(engine.Build{Pipeline: engine.Pipeline{Name: "shop"}}, block(brokers, false))
	if err != nil {
		t.Fatal(err)
	}
	if removed, err := plain.Forget(ctx); err != nil || removed {
		t.Errorf("at-least-once Forget: %v, %v; want nothing to remove", removed, err)
	}
}
