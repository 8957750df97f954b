package pgtest

import (
	"errors"
	"testing"

	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// StartTLS starts a private cluster that accepts TCP only over TLS with
// a client certificate, with certificates of a new test CA, stopped when
// the test ends. Without PostgreSQL's binaries it fails the test, or
// skips it with SLUICE_SKIP_DB=1 (never under CI=true; see dbskip).
func StartTLS(t testing.TB) (*Cluster, *testcerts.Set) {
	t.Helper()
	certs := testcerts.New(t)
	c, err := StartWith(Options{TLS: &TLS{CAFile: certs.CAFile, ServerCert: certs.ServerCert, ServerKey: certs.ServerKey,
		ClientCert: certs.ClientCert, ClientKey: certs.ClientKey}})
	if errors.Is(err, ErrNoBinaries) {
		dbskip.Missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c, certs
}
