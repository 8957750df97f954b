package e2ekafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/sluice-cdc/sluice/internal/testcerts"
	kafkasource "github.com/sluice-cdc/sluice/sources/kafka"
)

// TestScaleOutKafkaToKafkaExactlyOnce runs Kafka → Kafka with
// exactly_once in two processes of one consumer group, told apart by
// --instance (without it they would share a transactional id and fence
// each other). One is SIGKILLed and restarted while the broker refuses
// every offset commit, so its partitions resume from the checkpoints the
// Kafka sink committed in its transactions. A read_committed consumer of
// the output must see every record exactly once.
//
// The secure variant runs the same through a TLS listener that requires a
// client certificate and a SCRAM-SHA-512 login, so the source's and the
// sink's tls and sasl blocks carry the consumer group, the transactions
// and the checkpoint reads.
func TestScaleOutKafkaToKafkaExactlyOnce(t *testing.T) {
	setup(t)
	t.Parallel()
	t.Run("plaintext", func(t *testing.T) { copyExactlyOnce(t, nil, nil, "") })
	t.Run("tls and scram-sha-512", func(t *testing.T) {
		certs := testcerts.New(t)
		server := []kfake.Opt{kfake.TLS(certs.ServerConfig(true)), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "sluice", "copy-pw")}
		client := []kgo.Opt{kgo.DialTLSConfig(certs.ClientConfig()), kgo.SASL(scram.Auth{User: "sluice", Pass: "copy-pw"}.AsSha512Mechanism())}
		blocks := fmt.Sprintf(`
  tls {
    ca_file   = %q
    cert_file = %q
    key_file  = %q
  }
  sasl {
    mechanism = "scram-sha-512"
    username  = "sluice"
    password  = "copy-pw"
  }
`, certs.CAFile, certs.ClientCert, certs.ClientKey)
		copyExactlyOnce(t, server, client, blocks)
	})
}

// copyExactlyOnce is TestScaleOutKafkaToKafkaExactlyOnce against a
// cluster with the given server options, reached with the client options
// (the test's producer and consumer) and the blocks (sluice's source and
// sink).
func copyExactlyOnce(t *testing.T, server []kfake.Opt, client []kgo.Opt, blocks string) {
	const (
		topic      = "shop.public.orders"
		out        = "copy.orders"
		partitions = 6
		total      = 8_000
		perTick    = 40 // every 100ms: about 20s of records
	)
	brokers := commitlessCluster(t, topic, partitions, server...)
	file := writePipeline(t, fmt.Sprintf(`
pipeline "copy" {}

source "kafka" "shop" {
  brokers = [%q]
  topics  = [%q]
  group   = "sluice-copy"
  format  = "debezium"
%s}

sink "kafka" "copy" {
  from         = source.shop
  brokers      = [%q]
  topic        = %q
  format       = "debezium"
  key          = ["order_id"]
  exactly_once = true
  partitions   = 3
%s}
`, brokers[0], topic, blocks, brokers[0], out, blocks))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	produced := make(chan error, 1)
	go func() { produced <- produce(ctx, brokers, topic, total, perTick, client...) }()
	a := startInstance(t, file, "a")
	b := startInstance(t, file, "b")
	start := time.Now()
	time.Sleep(time.Duration(3000+rand.IntN(4000)) * time.Millisecond)
	a.restart()
	t.Logf("killed instance a at %v", time.Since(start).Round(time.Millisecond))
	if err := <-produced; err != nil {
		t.Fatalf("produce: %v", err)
	}

	consumer := readCommitted(t, brokers, out, client...)
	times := map[string]int{}
	consume := func(wait time.Duration) int {
		pctx, pcancel := context.WithTimeout(ctx, wait)
		defer pcancel()
		n := 0
		consumer.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			e, row, err := kafkasource.DecodeDebezium(r.Key, r.Value)
			if err != nil || !row {
				t.Fatalf("partition %d offset %d: not a row change (%v): %s", r.Partition, r.Offset, err, r.Value)
			}
			times[fmt.Sprint(e.After.Get("order_id"))]++
			n++
		})
		return n
	}
	for len(times) < total {
		if ctx.Err() != nil || a.exited() || b.exited() {
			t.Fatalf("after %v: %d of %d records copied (instance a exited: %v, b exited: %v)", time.Since(start).Round(time.Second), len(times), total, a.exited(), b.exited())
		}
		consume(time.Second)
	}
	t.Logf("every record copied by %v", time.Since(start).Round(time.Millisecond))
	a.signal(syscall.SIGTERM)
	b.signal(syscall.SIGTERM)
	for consume(2*time.Second) > 0 {
	}
	twice := 0
	for id, n := range times {
		if n > 1 {
			if twice < 5 {
				t.Errorf("order %s copied %d times", id, n)
			}
			twice++
		}
	}
	if twice > 0 {
		t.Fatalf("%d of %d records were copied more than once", twice, total)
	}
}
