package kafka

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/engine/change"
	kafkasource "github.com/sluice-cdc/sluice/sources/kafka"
)

// TestDebeziumFixturesFieldByField writes the events of Debezium's
// example records (schemaless ones: create, updates, delete, snapshot
// reads) through the sink and checks each produced record against the
// original field by field: the key, before, after, op and the source
// fields a consumer reads (connector, schema, table, txId, lsn, ts_ms,
// snapshot), and a tombstone with the same key after the delete.
func TestDebeziumFixturesFieldByField(t *testing.T) {
	files, _ := filepath.Glob("../../sources/kafka/testdata/debezium/*.json")
	type fixture struct {
		Key   json.RawMessage `json:"key"`
		Value json.RawMessage `json:"value"`
	}
	var want []fixture
	var events []change.Event
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var fx fixture
		if err := json.Unmarshal(raw, &fx); err != nil {
			t.Fatal(err)
		}
		var v map[string]json.RawMessage
		if json.Unmarshal(fx.Value, &v) != nil || v["schema"] != nil || v["op"] == nil {
			continue // wrapped (typed values differ by design), tombstones, truncate without key
		}
		e, row, err := kafkasource.DecodeDebezium(fx.Key, fx.Value)
		if err != nil || !row || e.Op == change.Truncate {
			continue
		}
		var src struct {
			Lsn uint64 `json:"lsn"`
		}
		var payload struct {
			Source json.RawMessage `json:"source"`
		}
		_ = json.Unmarshal(fx.Value, &payload)
		_ = json.Unmarshal(payload.Source, &src)
		e.Position = change.Position{Source: "app", Offset: src.Lsn}
		events = append(events, e)
		want = append(want, fx)
		if e.Op == change.Delete {
			want = append(want, fixture{Key: fx.Key}) // the tombstone
		}
	}
	if len(events) < 5 {
		t.Fatalf("only %d fixtures with rows", len(events))
	}
	brokers := cluster(t)
	b := block(brokers, false)
	b.Kafka.Topic = "golden"
	b.Kafka.Partitions = 1
	s, _ := open(t, b, nil)
	defer s.Close()
	ctx := context.Background()
	if err := s.Write(ctx, events); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("golden"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got []*kgo.Record
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for len(got) < len(want) && pctx.Err() == nil {
		got = append(got, cl.PollFetches(pctx).Records()...)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, r := range got {
		if !sameJSON(r.Key, want[i].Key) {
			t.Errorf("record %d: key %s, want %s", i, r.Key, want[i].Key)
		}
		if want[i].Value == nil {
			if r.Value != nil {
				t.Errorf("record %d: want a tombstone after the delete, got %s", i, r.Value)
			}
			continue
		}
		var g, w map[string]json.RawMessage
		if err := json.Unmarshal(r.Value, &g); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		_ = json.Unmarshal(want[i].Value, &w)
		for _, f := range []string{"before", "after", "op"} {
			if !sameJSON(g[f], w[f]) {
				t.Errorf("record %d: %s is %s, Debezium wrote %s", i, f, g[f], w[f])
			}
		}
		var gs, ws map[string]any
		_ = json.Unmarshal(g["source"], &gs)
		_ = json.Unmarshal(w["source"], &ws)
		for _, f := range []string{"connector", "schema", "table", "txId", "lsn", "ts_ms"} {
			if !reflect.DeepEqual(gs[f], ws[f]) {
				t.Errorf("record %d: source.%s is %v, Debezium wrote %v", i, f, gs[f], ws[f])
			}
		}
		if snap := ws["snapshot"]; (snap == "false" || snap == false) != (gs["snapshot"] == "false") {
			t.Errorf("record %d: source.snapshot is %v, Debezium wrote %v", i, gs["snapshot"], snap)
		}
		if _, ok := g["ts_ms"]; !ok {
			t.Errorf("record %d: no top-level ts_ms", i)
		}
	}
}

// sameJSON compares two JSON texts by value (key order and spacing aside).
func sameJSON(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b) || string(a) == "null" || string(b) == "null"
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// TestSchemasRoundTrip writes events with schemas = true (Kafka Connect's
// JSON converter with schemas.enable) and decodes the records with the
// Kafka source's Debezium decoder: the wrapper is there and the change
// comes back the same, typed values included.
func TestSchemasRoundTrip(t *testing.T) {
	brokers := cluster(t)
	b := block(brokers, false)
	b.Kafka.Topic = "typed"
	b.Kafka.Schemas = true
	b.Kafka.Tombstones = false
	s, _ := open(t, b, nil)
	defer s.Close()
	ctx := context.Background()
	when := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	e := change.Event{Op: change.Insert, Schema: "public", Table: "orders", Key: change.RowOf(map[string]any{"id": int64(1)}),
		After:    change.RowOf(map[string]any{"id": int64(1), "total": change.Numeric("12.50"), "placed_at": when, "note": "gift", "paid": true}),
		Tx:       change.Tx{ID: 7, CommitTime: when.Truncate(time.Millisecond)},
		Position: change.Position{Source: "app", Offset: 99}, Boundary: true}
	if err := s.Write(ctx, []change.Event{e}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("typed"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) == 0 && pctx.Err() == nil {
		recs = cl.PollFetches(pctx).Records()
	}
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(recs[0].Value, &top); err != nil || top["schema"] == nil || top["payload"] == nil {
		t.Fatalf("value is not {schema, payload}: %s", recs[0].Value)
	}
	got, row, err := kafkasource.DecodeDebezium(recs[0].Key, recs[0].Value)
	if err != nil || !row {
		t.Fatalf("decode: %v", err)
	}
	for col, want := range e.After.All() {
		if !reflect.DeepEqual(got.After.Get(col), want) {
			t.Errorf("column %s: got %#v, want %#v", col, got.After.Get(col), want)
		}
	}
	if got.Tx != e.Tx || got.Op != e.Op || got.Table != e.Table {
		t.Errorf("decoded %+v, want %+v", got, e)
	}
}
