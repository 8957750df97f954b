package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// TestTLSThroughTheDSN: the sink reaches a PostgreSQL that accepts TCP
// only over TLS with a client certificate, through the DSN alone
// (sslmode=verify-full, sslrootcert, sslcert, sslkey), and commits rows
// there; a DSN whose sslrootcert is another CA fails at Open saying the
// certificate is not trusted.
func TestTLSThroughTheDSN(t *testing.T) {
	tc, certs := pgtest.StartTLS(t)
	dsn := tc.CreateDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sink := func(dsn string) engine.Sink {
		s, err := New(engine.Build{Pipeline: engine.Pipeline{Name: "tls"}},
			&dsl.Sink{Type: "postgres", Name: "t", Postgres: &dsl.TableSink{DSN: dsn, AutoCreate: true}})
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}

	s := sink(dsn)
	cp, err := s.Open(ctx, nil)
	if err != nil {
		t.Fatalf("Open over verified TLS: %v", err)
	}
	if cp == nil {
		cp = change.Checkpoint{}
	}
	rel := &change.Relation{Schema: "public", Table: "users", Version: 1,
		Columns: []change.Column{{Name: "id", Type: "bigint", Key: true}, {Name: "name", Type: "text"}}}
	var evs []change.Event
	for i, name := range []string{"Ada", "Alan", "Grace"} {
		ev := change.Event{Op: change.Insert, Schema: "public", Table: "users", Relation: rel,
			After: change.RowOf(map[string]any{"id": int64(i + 1), "name": name}), Key: change.RowOf(map[string]any{"id": int64(i + 1)}),
			Position: change.Position{Source: "src", Offset: uint64(i + 1)},
			Tx:       change.Tx{ID: uint64(i + 1), CommitTime: time.Now().UTC()}, Boundary: true}
		evs = append(evs, ev)
		cp.Advance(ev.Position)
	}
	if err := s.Write(ctx, evs); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if _, err := s.Flush(ctx, cp.Clone()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows in the target: %d, %v; want 3", n, err)
	}
	// The sink's own sessions ran over TLS (the server refuses anything
	// else on TCP; pg_stat_ssl says so for the one left open).
	var plain int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database() AND NOT s.ssl AND a.client_addr IS NOT NULL").Scan(&plain); err != nil || plain != 0 {
		t.Fatalf("plaintext sessions: %d, %v", plain, err)
	}
	s.Close()

	other := testcerts.New(t)
	bad := strings.ReplaceAll(dsn, strings.ReplaceAll(certs.CAFile, "/", "%2F"), other.CAFile)
	_, err = sink(bad).Open(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "set sslrootcert") {
		t.Fatalf("another CA: want an error saying the certificate is not trusted, got %v", err)
	}
	t.Logf("another CA (permanent %v): %v", engine.IsPermanent(err), err)
}
