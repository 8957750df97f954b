package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
)

// TestErrorsNeverShowThePassword: whatever goes wrong with a DSN, the
// password is not in the error.
func TestErrorsNeverShowThePassword(t *testing.T) {
	for _, dsn := range []string{
		"postgres://app:s3cr3t-pw@127.0.0.1:notaport/db",            // unparsable
		"postgres://app:s3cr3t-pw@127.0.0.1:1/db?connect_timeout=1", // nothing listens
		"host=127.0.0.1 port=1 user=app password=s3cr3t-pw dbname=db connect_timeout=1",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := Sample(ctx, &dsl.PostgresSource{DSN: dsn, Tables: []string{"public.t"}}, "src", 1)
		cancel()
		if err == nil {
			t.Fatalf("%q: no error", dsn)
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("error shows the password: %v", err)
		}
		for _, f := range CheckLive(context.Background(), &dsl.PostgresSource{DSN: dsn}) {
			if strings.Contains(f.String(), "s3cr3t") {
				t.Errorf("finding shows the password: %v", f)
			}
		}
	}
}
