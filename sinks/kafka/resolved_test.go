package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/txmeta"
)

var commit0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// metaBlock is a native-format sink of public.users and public.orders
// into 3-partition topics with resolved every second.
func metaBlock(brokers []string, exactlyOnce, transactions bool) *dsl.Sink {
	return &dsl.Sink{Type: "kafka", Name: "events", Kafka: &dsl.KafkaSink{
		Brokers: brokers, Topic: "app.{schema}.{table}", Format: "native", ExactlyOnce: exactlyOnce, Partitions: 3,
		Resolved: time.Second, Transactions: transactions, TransactionsTopic: "app.transaction",
	}}
}

// clock is the sinks' time in these tests: each Flush is in an interval
// of its own when tick moves it on.
type clock struct{ now time.Time }

func (c *clock) tick() time.Time { c.now = c.now.Add(time.Second); return c.now }

// pgTx is a PostgreSQL transaction: n rows over tables at the commit LSN
// (keys id0, id0+1, ...), then its commit Mark.
func pgTx(xid, lsn uint64, at time.Time, id0 int, tables ...string) []change.Event {
	tx := change.Tx{ID: xid, CommitTime: at}
	var out []change.Event
	for i, tb := range tables {
		id := int64(id0 + i)
		out = append(out, change.Event{Op: change.Insert, Schema: "public", Table: tb, Key: change.RowOf(map[string]any{"id": id}), After: change.RowOf(map[string]any{"id": id}), Tx: tx,
			Position: change.Position{Source: "app", Offset: lsn, Index: uint32(i)}})
	}
	return append(out, change.Event{Op: change.Mark, Tx: tx, Boundary: true, Position: change.Position{Source: "app", Offset: lsn, Index: 1<<32 - 1}})
}

// record is one record a read_committed consumer saw, decoded.
type record struct {
	topic     string
	partition int32
	resolved  time.Time // set for resolved records
	commit    time.Time // a data event's tx.commit_time
	status    string    // "begin" or "end" for transaction events
	value     map[string]any
}

// readAll reads topics from the start (read_committed) until nothing new
// comes for a while.
func readAll(t *testing.T, brokers []string, topics ...string) []record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []record
	quiet := time.Now().Add(time.Second)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(quiet) && time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			quiet = time.Now().Add(time.Second)
			rec := record{topic: r.Topic, partition: r.Partition}
			if err := json.Unmarshal(r.Value, &rec.value); err != nil {
				t.Fatalf("%s/%d offset %d: %s: %v", r.Topic, r.Partition, r.Offset, r.Value, err)
			}
			switch v := rec.value; {
			case v["resolved"] != nil:
				rec.resolved, _ = time.Parse(time.RFC3339Nano, v["resolved"].(string))
				if r.Key != nil || header(r, HeaderResolved) != v["resolved"] {
					t.Errorf("resolved record with key %q and header %q: %s", r.Key, header(r, HeaderResolved), r.Value)
				}
			case v["status"] != nil:
				rec.status = v["status"].(string)
			default:
				rec.commit, _ = time.Parse(time.RFC3339Nano, v["tx"].(map[string]any)["commit_time"].(string))
			}
			out = append(out, rec)
		})
	}
	return out
}

func header(r *kgo.Record, key string) any {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return nil
}

// checkResolved checks what a consumer of each partition sees: resolved
// records in every partition of topics (partitions each), T increasing,
// and after each T no data event committed at or before it. It returns
// the highest T.
func checkResolved(t *testing.T, recs []record, partitions int32, topics ...string) time.Time {
	t.Helper()
	type tp struct {
		topic string
		p     int32
	}
	last := map[tp]time.Time{}
	var high time.Time
	for _, r := range recs {
		k := tp{r.topic, r.partition}
		switch {
		case !r.resolved.IsZero():
			if !r.resolved.After(last[k]) {
				t.Errorf("%s/%d: resolved %v after %v", r.topic, r.partition, r.resolved, last[k])
			}
			last[k] = r.resolved
			if r.resolved.After(high) {
				high = r.resolved
			}
		case !r.commit.IsZero() && !r.commit.After(last[k]):
			t.Errorf("%s/%d: a change committed at %v after resolved %v", r.topic, r.partition, r.commit, last[k])
		}
	}
	for _, topic := range topics {
		for p := range partitions {
			if last[tp{topic, p}].IsZero() {
				t.Errorf("%s/%d: no resolved record", topic, p)
			}
		}
	}
	return high
}

func openAt(t *testing.T, b *dsl.Sink, c *clock) (*Sink, change.Checkpoint) {
	t.Helper()
	s, cp := open(t, b, nil)
	s.now = func() time.Time { return c.now }
	return s, cp
}

// TestResolvedExactlyOnce: with exactly_once the resolved records are in
// the transaction that commits what they cover: every partition of every
// topic written gets them, after the changes they cover; a transaction
// aborted by a crash shows neither; an idle source (heartbeats only)
// still moves T; and a reopened sink never sends a lower T.
func TestResolvedExactlyOnce(t *testing.T) {
	testResolved(t, true)
}

// TestResolvedAtLeastOnce is the same with the idempotent producer: the
// state record keeps T in CheckpointTopic.
func TestResolvedAtLeastOnce(t *testing.T) {
	testResolved(t, false)
}

func testResolved(t *testing.T, exactlyOnce bool) {
	brokers := cluster(t)
	c := &clock{now: commit0.Add(time.Hour)}
	s, cp := openAt(t, metaBlock(brokers, exactlyOnce, false), c)
	ctx := context.Background()
	flush := func(events []change.Event) {
		t.Helper()
		if err := s.Write(ctx, events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			cp.Advance(e.Position)
		}
		c.tick()
		if _, err := s.Flush(ctx, cp); err != nil {
			t.Fatal(err)
		}
	}
	lsn, id := uint64(100), 0
	for i := range 20 {
		tables := []string{"users", "orders", "users", "orders", "users", "users"}[:1+i%6]
		flush(pgTx(uint64(1000+i), lsn, commit0.Add(time.Duration(i)*time.Second), id, tables...))
		lsn, id = lsn+10, id+len(tables)
	}
	// Written, then a crash before the commit: aborted (exactly_once) or
	// delivered without the resolved record its Flush would have added.
	crashed := pgTx(2000, lsn, commit0.Add(30*time.Second), id, "users", "orders")
	if err := s.Write(ctx, crashed); err != nil {
		t.Fatal(err)
	}
	s.Close()
	last := s.resolver.Last()

	s, _ = openAt(t, metaBlock(brokers, exactlyOnce, false), c)
	defer s.Close()
	if !s.resolver.Last().Equal(last) {
		t.Fatalf("reopened: last T %v, want %v", s.resolver.Last(), last)
	}
	// Replayed, with a commit time earlier than the last one seen (not
	// monotonic in commit order), though not earlier than T: no lower T.
	flush(pgTx(2000, lsn, commit0.Add(18500*time.Millisecond), id, "users", "orders"))
	if !s.resolver.Last().Equal(last) {
		t.Errorf("after the replay: last T %v, want %v still", s.resolver.Last(), last)
	}
	// Idle: heartbeats only.
	for i := range 3 {
		lsn += 10
		flush(pgTx(3000+uint64(i), lsn, commit0.Add(time.Duration(40+i)*time.Second), 0))
	}
	recs := readAll(t, brokers, "app.public.users", "app.public.orders")
	high := checkResolved(t, recs, 3, "app.public.users", "app.public.orders")
	if want := commit0.Add(42*time.Second - txmeta.CommitSkew); !high.Equal(want) {
		t.Errorf("highest T %v, want the last heartbeat's commit time less CommitSkew, %v", high, want)
	}
	data := 0
	for _, r := range recs {
		if !r.commit.IsZero() {
			data++
		}
	}
	if want := id + 2; exactlyOnce && data != want {
		t.Errorf("%d changes, want %d once each", data, want)
	}
}

// TestTransactionRecords: BEGIN and END on the transactions topic with
// the counts of each transaction's events, per table, and each event's
// transaction block in order; heartbeats get none.
func TestTransactionRecords(t *testing.T) {
	brokers := cluster(t)
	c := &clock{now: commit0.Add(time.Hour)}
	s, cp := openAt(t, metaBlock(brokers, true, true), c)
	defer s.Close()
	ctx := context.Background()
	lsn, id := uint64(100), 0
	want := map[string]map[string]float64{} // transaction id → table → events
	for i := range 30 {
		tables := []string{"users", "orders", "users", "orders", "users", "users", "orders"}[:1+i%7]
		events := pgTx(uint64(1000+i), lsn, commit0.Add(time.Duration(i)*time.Second), id, tables...)
		if i%5 == 4 {
			events = append(events, pgTx(uint64(5000+i), lsn+5, commit0.Add(time.Duration(i)*time.Second), 0)...) // a heartbeat
		}
		txid := fmt.Sprintf("%d:%d", 1000+i, lsn)
		want[txid] = map[string]float64{}
		for _, tb := range tables {
			want[txid]["public."+tb]++
		}
		if err := s.Write(ctx, events); err != nil {
			t.Fatal(err)
		}
		for _, e := range events {
			cp.Advance(e.Position)
		}
		c.tick()
		if _, err := s.Flush(ctx, cp); err != nil {
			t.Fatal(err)
		}
		lsn, id = lsn+10, id+len(tables)
	}
	recs := readAll(t, brokers, "app.public.users", "app.public.orders", "app.transaction")
	checkResolved(t, recs, 3, "app.public.users", "app.public.orders", "app.transaction")
	got := map[string]map[string]float64{}
	orders := map[string][]float64{}
	begun := map[string]bool{}
	for _, r := range recs {
		switch r.status {
		case "begin":
			begun[r.value["id"].(string)] = true
		case "end":
			txid := r.value["id"].(string)
			if !begun[txid] {
				t.Errorf("END of %s without its BEGIN", txid)
			}
			got[txid] = map[string]float64{}
			total := 0.0
			for _, dc := range r.value["data_collections"].([]any) {
				m := dc.(map[string]any)
				got[txid][m["data_collection"].(string)] = m["event_count"].(float64)
				total += m["event_count"].(float64)
			}
			if r.value["event_count"].(float64) != total {
				t.Errorf("END %s: event_count %v, tables add up to %v", txid, r.value["event_count"], total)
			}
		case "":
			if o, ok := r.value["transaction"].(map[string]any); ok {
				orders[o["id"].(string)] = append(orders[o["id"].(string)], o["total_order"].(float64))
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("END counts\n got %v\nwant %v", got, want)
	}
	for txid, o := range orders {
		n := 0.0
		for _, tb := range want[txid] {
			n += tb
		}
		seen := map[float64]bool{}
		for _, x := range o {
			seen[x] = true
		}
		for i := 1.0; i <= n; i++ {
			if !seen[i] {
				t.Errorf("transaction %s: orders %v, want 1..%v", txid, o, n)
				break
			}
		}
	}
}

func TestTransactionsConfigErrors(t *testing.T) {
	b := metaBlock([]string{"127.0.0.1:1"}, true, true)
	b.Kafka.Outbox = &dsl.KafkaOutbox{}
	if _, err := newSink(engine.Build{}, b); err == nil || !strings.Contains(err.Error(), "outbox") {
		t.Errorf("transactions with an outbox block: %v", err)
	}
	b = metaBlock([]string{"127.0.0.1:1"}, true, true)
	b.Kafka.TransactionsTopic = "app transactions"
	if _, err := newSink(engine.Build{}, b); err == nil || !strings.Contains(err.Error(), "transactions_topic") {
		t.Errorf("a bad transactions_topic: %v", err)
	}
}
