package pgtest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

var cluster *Cluster

func TestMain(m *testing.M) { os.Exit(Run(m, &cluster)) }

func TestClusterIsReadyForLogicalReplication(t *testing.T) {
	ctx := context.Background()
	dsn := cluster.CreateDB(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var walLevel string
	if err := conn.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		t.Fatal(err)
	}
	if walLevel != "logical" {
		t.Fatalf("wal_level = %q, want logical", walLevel)
	}
	// A slot in the test's database must not stop the database from
	// being dropped at cleanup.
	if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot('s', 'pgoutput')"); err != nil {
		t.Fatal(err)
	}
}

func TestCreateDBDropsDatabaseWithItsSlots(t *testing.T) {
	ctx := context.Background()
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := cluster.CreateDB(t)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
		if err := cluster.Exec(ctx, name, "SELECT pg_create_logical_replication_slot('held', 'pgoutput')"); err != nil {
			t.Fatal(err)
		}
	})
	conn, err := pgx.Connect(ctx, cluster.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("database %s still exists after its test ended", name)
	}
}

func TestRestartKeepsPortAndData(t *testing.T) {
	ctx := context.Background()
	dsn := cluster.CreateDB(t)
	cfg, _ := pgx.ParseConfig(dsn)
	if err := cluster.Exec(ctx, cfg.Database, "CREATE TABLE kept (id int); INSERT INTO kept VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	port := cluster.Port()
	if err := cluster.Restart(); err != nil {
		t.Fatal(err)
	}
	if cluster.Port() != port {
		t.Fatalf("port changed from %d to %d", port, cluster.Port())
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, "SELECT id FROM kept").Scan(&v); err != nil || v != 7 {
		t.Fatalf("after restart: %v, %d", err, v)
	}
}

func TestStartWithReplicaWALLevel(t *testing.T) {
	c, err := StartWith(Options{WALLevel: "replica"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	conn, err := pgx.Connect(context.Background(), c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var walLevel string
	conn.QueryRow(context.Background(), "SHOW wal_level").Scan(&walLevel)
	if walLevel != "replica" {
		t.Fatalf("wal_level = %q, want replica", walLevel)
	}
	if _, err := os.Stat(c.dir); err != nil {
		t.Fatal(err)
	}
}
