// Package natstest finds the NATS server with JetStream that tests use:
// $SLUICE_NATS_URL, else the one this machine kind runs (and `make test`
// expects) on 127.0.0.1:4222.
package natstest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// URL is the test server's address.
func URL() string {
	if u := os.Getenv("SLUICE_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// Connect returns a JetStream context on the test server, closed when
// the test ends. Without a server the test is skipped, naming the
// address, except under CI=true, where it fails: a CI run that tests
// nothing is worse than a red one (the rule internal/dbskip applies to
// databases).
func Connect(t testing.TB) jetstream.JetStream {
	t.Helper()
	url := URL()
	nc, err := natsgo.Connect(url, natsgo.Timeout(2*time.Second), natsgo.NoReconnect())
	if err == nil {
		js, jerr := jetstream.New(nc)
		if jerr == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, jerr = js.AccountInfo(ctx)
			cancel()
		}
		if jerr == nil {
			t.Cleanup(nc.Close)
			return js
		}
		nc.Close()
		err = fmt.Errorf("JetStream: %w", jerr)
	}
	msg := fmt.Sprintf("no NATS server with JetStream at %s (%v): start nats-server -js there, or set SLUICE_NATS_URL", url, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; under CI=true a missing server fails the test")
	}
	t.Skip(msg)
	return nil
}
