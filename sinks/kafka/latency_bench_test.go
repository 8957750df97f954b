package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	kafkasink "github.com/sluice-cdc/sluice/sinks/kafka"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
	"github.com/sluice-cdc/sluice/transforms"
)

// BenchmarkCommitToVisible measures the latency from a PostgreSQL commit
// to a read_committed Kafka consumer seeing the change, through the
// engine and the exactly-once sink: single-row inserts at 1,000 a second
// for 5 seconds (per b.N; run with -benchtime=1x), reported as p50-ms and
// p99-ms of the consumer's receive time minus the change's commit time,
// after the first second (the sink creates its topic at the first change).
// The variants are the sink without and with resolved = "1s" (heartbeat
// "1s") and transactions = true.
func BenchmarkCommitToVisible(b *testing.B) {
	for _, v := range []struct{ name, extra string }{
		{"plain", ""},
		{"resolved", `resolved = "1s"`},
		{"resolved+transactions", "resolved = \"1s\"\n  transactions = true"},
	} {
		b.Run(v.name, func(b *testing.B) { benchmarkCommitToVisible(b, v.extra) })
	}
}

func benchmarkCommitToVisible(b *testing.B, extra string) {
	const rate, length = 1000, 5 * time.Second
	pgOnce.Do(func() { pgCluster, pgErr = pgtest.Start() })
	if pgErr != nil {
		b.Skip(pgErr)
	}
	dsn := pgCluster.CreateDB(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE public.users (id bigint PRIMARY KEY, email text NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	cfg, _, diags := dsl.Load("users.hcl", []byte(fmt.Sprintf(`
pipeline "lat" { state = %q }
source "postgres" "app" {
  dsn       = %q
  tables    = ["public.users"]
  snapshot  = "never"
  heartbeat = "1s"
}
sink "kafka" "events" {
  from         = source.app
  brokers      = [%q]
  format       = "native"
  exactly_once = true
  partitions   = 4
  %s
}
`, filepath.Join(b.TempDir(), "state.db"), dsn, kc.ListenAddrs()[0], extra)), nil)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	g, err := components.Compile(cfg, components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"postgres": pgsource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"kafka": kafkasink.New},
		Transform: transforms.New,
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, engine.RunOptions{Stop: stop, Logger: slog.New(slog.DiscardHandler)}) }()
	defer func() {
		close(stop)
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE database = current_database()`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("no replication slot within a minute")
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumeTopics("lat.public.users"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(10*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	b.ResetTimer()
	var lat []time.Duration
	for i := range b.N {
		total := int(rate * length / time.Second)
		written := make(chan error, 1)
		go func() {
			tick := time.NewTicker(time.Second / rate)
			defer tick.Stop()
			for k := range total {
				<-tick.C
				if _, err := conn.Exec(ctx, `INSERT INTO public.users VALUES ($1, 'u@example.com')`, i*total+k); err != nil {
					written <- err
					return
				}
			}
			written <- nil
		}()
		wait, cancel := context.WithTimeout(ctx, length+time.Minute)
		for n := 0; n < total; {
			fs := cl.PollFetches(wait)
			if wait.Err() != nil {
				b.Fatalf("Kafka holds %d of %d changes", n, total)
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				var v struct {
					Tx *struct {
						CommitTime time.Time `json:"commit_time"`
					} `json:"tx"`
				}
				if json.Unmarshal(r.Value, &v) == nil && v.Tx != nil {
					if n++; i > 0 || n > rate {
						lat = append(lat, now.Sub(v.Tx.CommitTime))
					}
				}
			})
		}
		cancel()
		if err := <-written; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}
