package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

const topic = "app.public.users"

func cluster(t testing.TB, partitions int32) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

// produce writes n Debezium changes of `keys` users (an insert per key,
// then updates), plus a delete and its tombstone for key 0 at the end.
func produce(t testing.TB, brokers []string, from, n, keys int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		id := i % keys
		op := "u"
		if i < keys {
			op = "c"
		}
		v := fmt.Sprintf(`{"before":null,"after":{"id":%d,"version":%d},"source":{"connector":"postgresql","schema":"public","table":"users","txId":%d,"ts_ms":1767323045000},"op":%q,"ts_ms":1767323045001}`, id, i, 1000+i, op)
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf(`{"id":%d}`, id)), Value: []byte(v)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func source(t testing.TB, brokers []string, from change.Checkpoint) *Source {
	t.Helper()
	s, err := newSource(engine.Build{Logger: slog.New(slog.DiscardHandler)}, &dsl.Source{Type: "kafka", Name: "changes",
		Kafka: &dsl.KafkaSource{Brokers: brokers, Topics: []string{topic}, Group: "replica", Format: "debezium"}})
	if err != nil {
		t.Fatal(err)
	}
	s.extraOpts = []kgo.Opt{kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond), kgo.FetchMaxWait(200 * time.Millisecond), kgo.RebalanceTimeout(3 * time.Second)}
	s.revokeWait = 5 * time.Second
	if err := s.Open(context.Background(), from, nil); err != nil {
		t.Fatal(err)
	}
	return s
}

// readN reads until it holds n events (acknowledging each batch when ack
// is set) or the deadline passes.
func readN(t *testing.T, s *Source, n int, ack bool) []change.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []change.Event
	for len(out) < n {
		evs, err := s.Read(ctx)
		if err != nil {
			t.Fatalf("after %d of %d events: %v", len(out), n, err)
		}
		out = append(out, evs...)
		if ack {
			if err := s.Ack(ctx, through(evs)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return out
}

func through(evs []change.Event) change.Checkpoint {
	cp := change.Checkpoint{}
	for _, e := range evs {
		cp.Advance(e.Position)
	}
	return cp
}

// checkPartitionOrder checks positions are consecutive offsets per
// partition (nothing skipped, nothing twice) and each key's versions rise.
func checkPartitionOrder(t *testing.T, evs []change.Event, wantFirst map[string]uint64) {
	t.Helper()
	next := map[string]uint64{}
	for k, v := range wantFirst {
		next[k] = v
	}
	lastVersion := map[int64]int64{}
	for _, e := range evs {
		p := e.Position.Partition
		if e.Position.Source != "changes" || !strings.HasPrefix(p, topic+"/") || !e.Boundary {
			t.Fatalf("event position %+v boundary %v", e.Position, e.Boundary)
		}
		if e.Position.Offset != next[p] {
			t.Fatalf("partition %s: offset %d, want %d", p, e.Position.Offset, next[p])
		}
		next[p]++
		if e.Op == change.Mark {
			continue
		}
		id, v := e.After.Get("id").(int64), e.After.Get("version").(int64)
		if last, ok := lastVersion[id]; ok && v <= last {
			t.Fatalf("key %d: version %d after %d", id, v, last)
		}
		lastVersion[id] = v
	}
}

func TestReadAckResume(t *testing.T) {
	brokers := cluster(t, 3)
	produce(t, brokers, 0, 60, 6)
	s := source(t, brokers, nil)
	first := readN(t, s, 60, true)
	checkPartitionOrder(t, first, nil)
	if e := first[0]; e.Schema != "public" || e.Table != "users" || e.Key.IsZero() || e.Tx.ID == 0 {
		t.Fatalf("decoded event %+v", e)
	}
	s.Close()

	// Restart with no checkpoint: the group's committed offsets resume it.
	produce(t, brokers, 60, 12, 6)
	s = source(t, brokers, nil)
	second := readN(t, s, 12, true)
	wantFirst := map[string]uint64{}
	for p, pos := range through(first) {
		wantFirst[p.Partition] = pos.Offset + 1
	}
	checkPartitionOrder(t, second, wantFirst)
	s.Close()
}

// TestResumeFromSinkCheckpoint checks that positions passed to Open win
// over the group's offsets: a sink that committed further than the group
// (a crash between the sink's commit and the ack) is not fed twice.
func TestResumeFromSinkCheckpoint(t *testing.T) {
	brokers := cluster(t, 1)
	produce(t, brokers, 0, 20, 4)
	cp := change.Checkpoint{}
	cp.Advance(change.Position{Source: "changes", Partition: topic + "/0", Offset: 14})
	s := source(t, brokers, cp)
	defer s.Close()
	evs := readN(t, s, 5, false)
	checkPartitionOrder(t, evs, map[string]uint64{topic + "/0": 15})
}

// TestResumeHookWins checks that positions read through SetResume at
// assignment time win over Open's (stale) checkpoint and the group's
// offsets.
func TestResumeHookWins(t *testing.T) {
	brokers := cluster(t, 1)
	produce(t, brokers, 0, 20, 4)
	stale := change.Checkpoint{}
	stale.Advance(change.Position{Source: "changes", Partition: topic + "/0", Offset: 3})
	s, err := newSource(engine.Build{Logger: slog.New(slog.DiscardHandler)}, &dsl.Source{Type: "kafka", Name: "changes",
		Kafka: &dsl.KafkaSource{Brokers: brokers, Topics: []string{topic}, Group: "replica"}})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	s.SetResume(func(context.Context) (change.Checkpoint, error) {
		calls++
		fresh := change.Checkpoint{}
		fresh.Advance(change.Position{Source: "changes", Partition: topic + "/0", Offset: 16})
		return fresh, nil
	})
	if err := s.Open(context.Background(), stale, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := readN(t, s, 3, false)
	checkPartitionOrder(t, evs, map[string]uint64{topic + "/0": 17})
	if calls == 0 {
		t.Fatal("the resume hook was never called")
	}
}

// TestTombstonesAreMarks checks that null values and message events
// become Marks at their positions, so checkpoints advance past them.
func TestTombstonesAreMarks(t *testing.T) {
	brokers := cluster(t, 1)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer cl.Close()
	err := cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: topic, Key: []byte(`{"id":1}`), Value: []byte(`{"before":{"id":1},"after":null,"source":{"schema":"public","table":"users"},"op":"d"}`)},
		&kgo.Record{Topic: topic, Key: []byte(`{"id":1}`)},
		&kgo.Record{Topic: topic, Value: []byte(`{"source":{"schema":"","table":""},"op":"m","message":{"prefix":"p","content":"eA=="}}`)},
	).FirstErr()
	if err != nil {
		t.Fatal(err)
	}
	s := source(t, brokers, nil)
	defer s.Close()
	evs := readN(t, s, 3, false)
	got := []string{evs[0].Op.String(), evs[1].Op.String(), evs[2].Op.String()}
	if fmt.Sprint(got) != "[delete mark mark]" || evs[2].Position.Offset != 2 {
		t.Fatalf("ops %v, last offset %d", got, evs[2].Position.Offset)
	}
}

// TestBadRecordStops checks that a record that is not a change event
// stops the source with its coordinates instead of being dropped.
func TestBadRecordStops(t *testing.T) {
	brokers := cluster(t, 1)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(`hello`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	s := source(t, brokers, nil)
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := s.Read(ctx)
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "partition 0 offset 0") {
		t.Fatalf("got %v, want a permanent error naming partition 0 offset 0", err)
	}
}

// TestGroupSharesPartitions runs two sources in one group; the second
// joins while the first is consuming, and the partitions must be split
// with every record delivered exactly once across both. Acks come late
// and from another goroutine, as they do from sinks that flush later, so
// the first member's revocation has delivered records still unacknowledged
// and must wait for them before handing the partitions over.
func TestGroupSharesPartitions(t *testing.T) {
	brokers := cluster(t, 4)
	const total = 400
	produce(t, brokers, 0, total, 40)
	a := source(t, brokers, nil)
	defer a.Close()
	a.maxPoll = 10
	var mu sync.Mutex
	seen := map[string]int{}
	per := map[*Source]int{}
	count := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ackers sync.WaitGroup
	consume := func(s *Source) {
		acks := make(chan change.Checkpoint, 1000)
		ackers.Add(1)
		go func() {
			defer ackers.Done()
			for cp := range acks {
				time.Sleep(20 * time.Millisecond) // the sink flushes a while later
				if err := s.Ack(context.Background(), cp); err != nil {
					t.Error(err)
				}
			}
		}()
		defer close(acks)
		for ctx.Err() == nil {
			evs, err := s.Read(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			for _, e := range evs {
				seen[e.Position.Partition+"@"+fmt.Sprint(e.Position.Offset)]++
				count++
				per[s]++
			}
			done := count >= total
			mu.Unlock()
			acks <- through(evs)
			if done {
				cancel()
			}
			time.Sleep(5 * time.Millisecond) // leave the other member time to join
		}
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); consume(a) }()
	for {
		mu.Lock()
		started := per[a] > 0
		mu.Unlock()
		if started {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b := source(t, brokers, nil)
	defer b.Close()
	b.maxPoll = 10
	wg.Add(1)
	go func() { defer wg.Done(); consume(b) }()
	wg.Wait()
	ackers.Wait()
	var twice []string
	for k, n := range seen {
		if n > 1 {
			twice = append(twice, k)
		}
	}
	sort.Strings(twice)
	if len(seen) != total || len(twice) > 0 {
		t.Fatalf("%d distinct records of %d; delivered twice: %v", len(seen), total, twice)
	}
	if per[a] == 0 || per[b] == 0 {
		t.Fatalf("the partitions were not shared: first member %d records, second %d", per[a], per[b])
	}
}

// TestNativeFormat reads sluice's native events (as the Kafka sink writes
// them with format = "native"), with a tombstone among them.
func TestNativeFormat(t *testing.T) {
	brokers := cluster(t, 1)
	cl, _ := kgo.NewClient(kgo.SeedBrokers(brokers...))
	defer cl.Close()
	err := cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: topic, Key: []byte(`{"id":1}`), Value: []byte(`{"op":"insert","schema":"public","table":"users","key":{"id":1},"after":{"id":1,"total":12.50},"tx":{"id":9},"position":"777.3"}`)},
		&kgo.Record{Topic: topic, Key: []byte(`{"id":1}`)},
		&kgo.Record{Topic: topic, Key: []byte(`{"id":1}`), Value: []byte(`{"op":"delete","schema":"public","table":"users","key":{"id":1},"before":{"id":1}}`)},
	).FirstErr()
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSource(engine.Build{Logger: slog.New(slog.DiscardHandler)}, &dsl.Source{Type: "kafka", Name: "changes",
		Kafka: &dsl.KafkaSource{Brokers: brokers, Topics: []string{topic}, Group: "native", Format: "native"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Open(context.Background(), nil, nil); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := readN(t, s, 3, false)
	ins := evs[0]
	if ins.Op != change.Insert || ins.After.Get("total") != change.Numeric("12.50") || ins.Tx.ID != 9 ||
		ins.Position != (change.Position{Source: "changes", Partition: topic + "/0", Offset: 0}) {
		t.Fatalf("insert decoded as %+v", ins)
	}
	if evs[1].Op != change.Mark || evs[2].Op != change.Delete || evs[2].Position.Offset != 2 {
		t.Fatalf("ops %v %v at %d", evs[1].Op, evs[2].Op, evs[2].Position.Offset)
	}
}

// TestAckCommitsOnlyPartitionsItDelivered acknowledges a checkpoint that
// also holds a position of a partition the source delivered nothing of
// (as the engine does with what its sinks opened with, for a partition
// another process of the group owns): that position must not reach the
// group, or the partition's owner would be moved back, or here forward
// past records nobody applied.
func TestAckCommitsOnlyPartitionsItDelivered(t *testing.T) {
	brokers := cluster(t, 2)
	produceTo := func(part int32, n int) {
		t.Helper()
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := range n {
			v := fmt.Sprintf(`{"before":null,"after":{"id":%d},"source":{"connector":"postgresql","schema":"public","table":"users","txId":%d},"op":"c"}`, i, i)
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produceTo(0, 10)
	s := source(t, brokers, nil)
	cp := through(readN(t, s, 10, false))
	other := change.Stream{Source: "changes", Partition: topic + "/1"}
	cp[other] = change.Position{Source: other.Source, Partition: other.Partition, Offset: 7}
	if err := s.Ack(context.Background(), cp); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	produceTo(1, 10)
	s2 := source(t, brokers, nil)
	defer s2.Close()
	evs := readN(t, s2, 10, false)
	for _, e := range evs {
		if e.Position.Partition != other.Partition {
			t.Fatalf("read %s at %v again after it was committed", e.Position.Partition, e.Position)
		}
	}
	if first := evs[0].Position.Offset; first != 0 {
		t.Fatalf("partition 1 starts at offset %d: the other partition's position reached the group", first)
	}
}
