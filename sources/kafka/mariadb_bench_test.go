package kafka

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// BenchmarkToMariaDB measures events/s from a Debezium topic in kfake
// into a MariaDB table through the mysql sink (upsert, one target
// transaction per Read batch of up to 1000 events), acknowledging each
// batch to the group: the loop the engine runs, without its queues.
func BenchmarkToMariaDB(b *testing.B) {
	srv, err := mariadbtest.Start()
	if errors.Is(err, mariadbtest.ErrNoServer) {
		dbskip.Missing(b, err)
	}
	if err != nil {
		b.Fatal(err)
	}
	dsn := srv.CreateDB(b)
	db, _, _ := strings.Cut(dsn[strings.LastIndexByte(dsn, '/')+1:], "?")
	ctx := context.Background()
	if err := srv.Exec(ctx, "CREATE TABLE `"+db+"`.users (id BIGINT PRIMARY KEY, version BIGINT)"); err != nil {
		b.Fatal(err)
	}
	brokers := cluster(b, 4)
	produce(b, brokers, 0, b.N, 10_000)
	build := engine.Build{Pipeline: engine.Pipeline{Name: "bench"}, Logger: slog.New(slog.DiscardHandler)}
	sink, err := mysqlsink.New(build, &dsl.Sink{Type: "mysql", Name: "replica", MySQL: &dsl.TableSink{DSN: dsn, Mode: "upsert", Delete: "hard", BatchSize: 1000, SchemaChanges: "add_columns"}})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	from, err := sink.Open(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	s := source(b, brokers, from)
	defer s.Close()
	b.ResetTimer()
	for n := 0; n < b.N; {
		evs, err := s.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		n += len(evs)
		if err := sink.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
		cp := through(evs)
		for st, p := range from {
			if _, ok := cp[st]; !ok {
				cp[st] = p
			}
		}
		from = cp
		if _, err := sink.Flush(ctx, cp.Clone()); err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(ctx, cp); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.StopTimer()
	conn, err := sql.Open("mysql", dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	var rows, maxVersion int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(MAX(version), -1) FROM users").Scan(&rows, &maxVersion); err != nil {
		b.Fatal(err)
	}
	if rows != min(b.N, 10_000) || maxVersion != b.N-1 {
		b.Fatalf("target holds %d rows with max version %d; want %d rows up to version %d", rows, maxVersion, min(b.N, 10_000), b.N-1)
	}
}
