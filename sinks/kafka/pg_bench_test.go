package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	kafkasink "github.com/sluice-cdc/sluice/sinks/kafka"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
	"github.com/sluice-cdc/sluice/transforms"
)

var (
	pgOnce    sync.Once
	pgCluster *pgtest.Cluster
	pgErr     error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pgCluster != nil {
		_ = pgCluster.Stop()
	}
	os.Exit(code)
}

// BenchmarkPostgresToKafkaExactlyOnce measures the engine streaming
// PostgreSQL changes (b.N inserts written while the pipeline was stopped,
// in transactions of 100, password excluded at the source) into kfake
// with the transactional producer, until a read_committed consumer has
// them all.
func BenchmarkPostgresToKafkaExactlyOnce(b *testing.B) { benchmarkPostgresToKafka(b, true) }

// BenchmarkPostgresToKafkaAtLeastOnce is the same with the idempotent producer.
func BenchmarkPostgresToKafkaAtLeastOnce(b *testing.B) { benchmarkPostgresToKafka(b, false) }

func benchmarkPostgresToKafka(b *testing.B, exactlyOnce bool) {
	pgOnce.Do(func() { pgCluster, pgErr = pgtest.Start() })
	if errors.Is(pgErr, pgtest.ErrNoBinaries) {
		dbskip.Missing(b, pgErr)
	}
	if pgErr != nil {
		b.Fatal(pgErr)
	}
	dsn := pgCluster.CreateDB(b)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE public.users (id bigint PRIMARY KEY, email text NOT NULL, password text)`); err != nil {
		b.Fatal(err)
	}
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	dir := b.TempDir()
	cfg, _, diags := dsl.Load("users.hcl", []byte(fmt.Sprintf(`
pipeline "bench" { state = %q }
source "postgres" "app" {
  dsn      = %q
  tables   = ["public.users"]
  snapshot = "never"
  slot     = "bench_slot"
  exclude  = ["public.users.password"]
}
sink "kafka" "events" {
  from         = source.app
  brokers      = [%q]
  exactly_once = %v
  partitions   = 4
}
`, filepath.Join(dir, "state.db"), dsn, kc.ListenAddrs()[0], exactlyOnce)), nil)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	reg := components.Kinds{
		Sources:   map[string]func(engine.Build, *dsl.Source) (engine.Source, error){"postgres": pgsource.New},
		Sinks:     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error){"kafka": kafkasink.New},
		Transform: transforms.New,
	}
	// run starts the pipeline and returns a stop function that waits for it.
	run := func() func() {
		g, err := components.Compile(cfg, reg, nil)
		if err != nil {
			b.Fatal(err)
		}
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx, engine.RunOptions{Stop: stop, Logger: slog.New(slog.DiscardHandler)}) }()
		return func() {
			close(stop)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		}
	}
	// The first run creates the slot; then the workload is written.
	stop := run()
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'bench_slot'`).Scan(&n); err != nil {
			b.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the pipeline did not create its replication slot within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	for i := 0; i < b.N; i += 100 {
		if _, err := conn.Exec(ctx, `INSERT INTO public.users SELECT g, 'u' || g || '@example.com', 'hunter2' FROM generate_series($1::bigint, $2::bigint) g`, i, min(i+100, b.N)-1); err != nil {
			b.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(kc.ListenAddrs()...), kgo.ConsumeTopics("bench.public.users"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	b.ResetTimer()
	stop = run()
	wait, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for n := 0; n < b.N; {
		fs := cl.PollFetches(wait)
		if wait.Err() != nil {
			b.Fatalf("Kafka holds %d of %d changes", n, b.N)
		}
		n += len(fs.Records())
	}
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
