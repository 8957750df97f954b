package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/sinks/webhook"
	kafkasource "github.com/sluice-cdc/sluice/sources/kafka"
	"github.com/sluice-cdc/sluice/transforms"
)

// TestEngineKafkaToWebhook runs Debezium records through the engine from
// the Kafka source to the webhook sink, stops gracefully, produces more
// and runs again: the receiver gets every change once, signed, and the
// second run starts where the first stopped.
func TestEngineKafkaToWebhook(t *testing.T) {
	const topic = "app.public.orders"
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	got := map[int64]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify([]byte("k3y"), body, r.Header.Get(webhook.HeaderSignature)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(body, &raws); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, raw := range raws {
			e, err := format.DecodeNative(raw)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			got[e.After.Get("order_id").(int64)]++
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg, _, diags := dsl.Load("orders.hcl", []byte(fmt.Sprintf(`
pipeline "orders" { state = %q }
source "kafka" "shop" {
  brokers = [%q]
  topics  = [%q]
}
transform "notable" {
  from  = source.shop
  where = "after.total >= 50"
}
sink "webhook" "notify" {
  from   = transform.notable
  url    = %q
  secret = "k3y"
  batch  = 25
}
`, filepath.Join(dir, "state.db"), c.ListenAddrs()[0], topic, srv.URL)), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	reg := components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"kafka": kafkasource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"webhook": webhook.New},
		Transform: transforms.New,
	}
	produce := func(from, to int) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		for i := from; i < to; i++ {
			v := fmt.Sprintf(`{"before":null,"after":{"order_id":%d,"total":%d},"source":{"connector":"postgresql","schema":"public","table":"orders","txId":%d},"op":"c"}`, i, i%100, i)
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf(`{"order_id":%d}`, i)), Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	notable := func(to int) int { // orders in [0, to) with total >= 50
		n := 0
		for i := 0; i < to; i++ {
			if i%100 >= 50 {
				n++
			}
		}
		return n
	}
	run := func(want int) {
		g, err := components.Compile(cfg, reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan error, 1)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		go func() {
			done <- g.Run(ctx, engine.RunOptions{Stop: stop, Logger: slog.New(slog.DiscardHandler), Linger: 20 * time.Millisecond})
		}()
		for {
			mu.Lock()
			n := len(got)
			mu.Unlock()
			if n >= want {
				break
			}
			select {
			case err := <-done:
				t.Fatalf("Run ended early: %v", err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	produce(0, 300)
	run(notable(300))
	produce(300, 500)
	run(notable(500))
	mu.Lock()
	defer mu.Unlock()
	for id, n := range got {
		if n != 1 || id%100 < 50 {
			t.Fatalf("order %d delivered %d times (total %d)", id, n, id%100)
		}
	}
	if len(got) != notable(500) {
		t.Fatalf("%d orders delivered, want %d", len(got), notable(500))
	}
}
