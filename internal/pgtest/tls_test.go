package pgtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// TestTLSCluster: a cluster with Options.TLS serves TLS with the test
// CA's certificate; DSN verifies it (verify-full) and presents the client
// certificate; plaintext TCP, a missing client certificate and another
// CA are refused; CreateDB and the cleanup still work.
func TestTLSCluster(t *testing.T) {
	c, certs := StartTLS(t)
	dsn := c.CreateDB(t)
	if !strings.Contains(dsn, "sslmode=verify-full") {
		t.Fatalf("DSN of a TLS cluster: %s", dsn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("verified TLS: %v", err)
	}
	var ssl bool
	var version string
	if err := conn.QueryRow(ctx, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl, &version); err != nil || !ssl {
		t.Fatalf("pg_stat_ssl: ssl=%v %v", ssl, err)
	}
	conn.Close(ctx)

	other := testcerts.New(t)
	for name, bad := range map[string]string{
		"plaintext":             strings.Split(dsn, "?")[0] + "?sslmode=disable",
		"no client certificate": strings.Split(dsn, "?")[0] + "?sslmode=verify-full&sslrootcert=" + certs.CAFile,
		"another CA":            strings.ReplaceAll(dsn, strings.ReplaceAll(certs.CAFile, "/", "%2F"), other.CAFile),
	} {
		if conn, err := pgx.Connect(ctx, bad); err == nil {
			conn.Close(ctx)
			t.Errorf("%s: connected", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
