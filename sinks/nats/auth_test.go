package nats

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// ownServer starts a nats-server of the test's own, with JetStream and
// args, and returns its address ("127.0.0.1:PORT"). Without the binary
// the test is skipped, except under CI=true.
func ownServer(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		msg := fmt.Sprintf("nats-server is not on PATH (%v): install it to test authentication and TLS", err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; under CI=true a missing server fails the test")
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, append([]string{"-a", "127.0.0.1", "-p", port, "-js", "-sd", t.TempDir()}, args...)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server %v did not listen on %s: %s", args, addr, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openWith opens a sink of cfg and writes and flushes one change.
func openWith(t *testing.T, cfg Config) error {
	t.Helper()
	cfg.CreateStream = true
	s, err := newSink(cfg, "auth", "events", slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Open(ctx(t), nil); err != nil {
		return err
	}
	events := inserts(1, 1)
	if err := s.Write(ctx(t), events); err != nil {
		return err
	}
	_, err = s.Flush(ctx(t), engineCheckpoint(nil, events))
	return err
}

func TestCredentials(t *testing.T) {
	t.Run("user and password", func(t *testing.T) {
		addr := ownServer(t, "--user", "bob", "--pass", "hunter2")
		if err := openWith(t, Config{URL: "nats://" + addr, User: "bob", Password: "hunter2"}); err != nil {
			t.Fatal(err)
		}
		err := openWith(t, Config{URL: "nats://" + addr, User: "bob", Password: "wrong-pass"})
		if err == nil || !engine.IsPermanent(err) || strings.Contains(err.Error(), "wrong-pass") || !strings.Contains(err.Error(), "user and password") {
			t.Fatalf("a wrong password: %v; want a permanent error without the password", err)
		}
		err = openWith(t, Config{URL: "nats://bob:wrong-pass@" + addr})
		if err == nil || strings.Contains(err.Error(), "wrong-pass") {
			t.Fatalf("a wrong password in the URL: %v; want an error without the password", err)
		}
	})
	t.Run("token", func(t *testing.T) {
		addr := ownServer(t, "--auth", "s3cret-token")
		if err := openWith(t, Config{URL: "nats://" + addr, Token: "s3cret-token"}); err != nil {
			t.Fatal(err)
		}
		err := openWith(t, Config{URL: "nats://" + addr, Token: "not-the-token"})
		if err == nil || !engine.IsPermanent(err) || strings.Contains(err.Error(), "not-the-token") {
			t.Fatalf("a wrong token: %v; want a permanent error without the token", err)
		}
	})
	t.Run("credentials file missing", func(t *testing.T) {
		addr := ownServer(t)
		err := openWith(t, Config{URL: "nats://" + addr, CredentialsFile: "/nonexistent/user.creds"})
		if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "credentials_file") {
			t.Fatalf("a missing creds file: %v; want a permanent error about credentials_file", err)
		}
	})
}

func TestTLS(t *testing.T) {
	certs := testcerts.New(t)
	addr := ownServer(t, "--tls", "--tlscert", certs.ServerCert, "--tlskey", certs.ServerKey)
	if err := openWith(t, Config{URL: "tls://" + addr, TLS: &dsl.TLS{CAFile: certs.CAFile}}); err != nil {
		t.Fatal(err)
	}
	err := openWith(t, Config{URL: "tls://" + addr})
	if err == nil || !engine.IsPermanent(err) {
		t.Fatalf("a server certificate of an unknown CA: %v; want a permanent error", err)
	}
}
