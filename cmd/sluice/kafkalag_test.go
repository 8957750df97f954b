package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/observe"
)

// kafkaLag sums a status's Kafka partitions' lag for source.
func kafkaLag(st observe.Status, source string) (parts int, lag int64) {
	for _, s := range st.Sources {
		if s.Name != source {
			continue
		}
		for _, p := range s.Kafka {
			parts++
			lag += p.Lag
		}
	}
	return parts, lag
}

// TestKafkaLagInStatusAndWait runs a Kafka (kfake) → webhook pipeline as
// a separate process whose webhook holds every request: status --json
// shows the consumer-group lag of both partitions (every record produced,
// none durable), the text status and /metrics show it too, and wait
// --max-lag-records 0 times out saying which partition is behind. Once
// the webhook answers, the lag goes to 0 and the same wait succeeds.
func TestKafkaLagInStatusAndWait(t *testing.T) {
	const topic, records = "app.public.orders", 40
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	for i := range records {
		v := fmt.Sprintf(`{"before":null,"after":{"order_id":%d},"source":{"connector":"postgresql","schema":"public","table":"orders","txId":%d},"op":"c"}`, i, i)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Key: []byte(fmt.Sprintf(`{"order_id":%d}`, i)), Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	dir := t.TempDir()
	file := filepath.Join(dir, "k.hcl")
	src := fmt.Sprintf(`pipeline "k" { state = %q }
source "kafka" "shop" {
  brokers = [%q]
  topics  = [%q]
  group   = "k"
}
sink "webhook" "notify" {
  from = source.shop
  url  = %q
}
`, filepath.Join(dir, "k.db"), c.ListenAddrs()[0], topic, srv.URL)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	p := startRun(t, file, "--http", addr)
	st := waitFor(t, file, "the lag of both partitions", func(st observe.Status) bool {
		n, lag := kafkaLag(st, "shop")
		return n == 2 && lag == records
	})
	for _, s := range st.Sources {
		for _, part := range s.Kafka {
			if part.Topic != topic || part.Lag != part.HighWatermark-part.Committed || part.Committed != 0 {
				t.Errorf("partition %+v: want topic %s, committed 0, lag = high watermark - committed", part, topic)
			}
		}
	}
	m := scrape(t, addr)
	if v := metric(t, m, `sluice_source_kafka_lag_records{partition="0",source="shop",topic="`+topic+`"}`) +
		metric(t, m, `sluice_source_kafka_lag_records{partition="1",source="shop",topic="`+topic+`"}`); v != records {
		t.Errorf("sluice_source_kafka_lag_records sums to %v, want %d", v, records)
	}
	var text strings.Builder
	tc := &cli{stdin: strings.NewReader(""), stdout: &text, stderr: &text}
	if code := tc.status([]string{file}); code != exitOK || !strings.Contains(text.String(), "KAFKA SOURCE") || !strings.Contains(text.String(), topic) {
		t.Errorf("status text (exit %d) lacks the Kafka lag:\n%s", code, text.String())
	}
	if code, out := runWait(file, "--max-lag", "1h", "--max-lag-records", "0", "--for", "0s", "--timeout", "1s"); code != exitFindings || !strings.Contains(out, "records behind (max 0)") {
		t.Errorf("wait while behind: exit %d, %q; want 1, records behind", code, out)
	}
	close(release)
	if code, out := runWait(file, "--max-lag", "1h", "--max-lag-records", "0", "--for", "0s", "--timeout", "20s"); code != exitOK || !strings.Contains(out, "Kafka partition") {
		t.Fatalf("wait after the webhook answered: exit %d, %q\n%s", code, out, p.out)
	}
	if n, lag := kafkaLag(statusJSON(t, file), "shop"); n != 2 || lag != 0 {
		t.Errorf("after catching up: %d partitions, lag %d; want 2, 0", n, lag)
	}
	p.stop(t)
}
