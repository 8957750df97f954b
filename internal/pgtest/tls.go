package pgtest

import (
	"errors"
	"os"
	"testing"

	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// StartTLS starts a private cluster that accepts TCP only over TLS with
// a client certificate, with certificates of a new test CA, stopped when
// the test ends. Without PostgreSQL's binaries it skips, but fails under
// CI.
func StartTLS(t testing.TB) (*Cluster, *testcerts.Set) {
	t.Helper()
	certs := testcerts.New(t)
	c, err := StartWith(Options{TLS: &TLS{CAFile: certs.CAFile, ServerCert: certs.ServerCert, ServerKey: certs.ServerKey,
		ClientCert: certs.ClientCert, ClientKey: certs.ClientKey}})
	if errors.Is(err, ErrNoBinaries) && os.Getenv("CI") != "true" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c, certs
}
