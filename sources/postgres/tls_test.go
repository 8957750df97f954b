package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// TestTLSThroughTheDSN: against a PostgreSQL that accepts TCP only over
// TLS with a client certificate (replication connections too), a source
// whose DSN says sslmode=verify-full with sslrootcert, sslcert and sslkey
// snapshots and then streams: the replication connection it derives
// from the DSN (connectReplication) keeps the TLS settings, and
// pg_stat_ssl shows its walsender encrypted. A DSN whose sslrootcert is
// another CA fails at Open saying the certificate is not trusted.
func TestTLSThroughTheDSN(t *testing.T) {
	tc, certs := pgtest.StartTLS(t)
	dsn := tc.CreateDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	d := &db{t: t, dsn: dsn, conn: conn}
	d.exec(`CREATE TABLE users (id bigint PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'Ada'), (2, 'Alan')`)

	p := d.open(dsl.PostgresSource{Tables: []string{"public.users"}}, nil, newState())
	snap := rows(readUntil(t, p, countRows(2)))
	d.exec(`INSERT INTO users VALUES (3, 'Grace')`)
	streamed := rows(readUntil(t, p, countRows(1)))
	if len(snap) != 2 || len(streamed) != 1 || streamed[0].After.Get("name") != "Grace" {
		t.Fatalf("snapshot %v, stream %v", snap, streamed)
	}
	ackAll(t, p, streamed[0])

	var walsenders, encrypted int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)`).Scan(&walsenders, &encrypted); err != nil {
		t.Fatal(err)
	}
	if walsenders != 1 || encrypted != 1 {
		t.Fatalf("walsenders: %d, over TLS: %d; want 1, 1", walsenders, encrypted)
	}
	p.Close()

	other := testcerts.New(t)
	bad := strings.ReplaceAll(dsn, strings.ReplaceAll(certs.CAFile, "/", "%2F"), other.CAFile)
	cfg := dsl.PostgresSource{Tables: []string{"public.users"}, Slot: "s2", DSN: bad}
	s, err := New(engine.Build{Pipeline: engine.Pipeline{Name: "test"}}, &dsl.Source{Type: "postgres", Name: "src", Postgres: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Open(ctx, nil, newState())
	s.Close()
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !engine.IsPermanent(err) {
		t.Fatalf("another CA: want an error saying the certificate is not trusted, got %v", err)
	}
	t.Logf("another CA (permanent %v): %v", engine.IsPermanent(err), err)
}
