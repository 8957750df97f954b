package mysql

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/internal/testcerts"
)

const tlsPassword = "tls-Pa55-word"

// tlsServer starts a private MariaDB that offers TLS with a certificate
// of certs' CA and verifies client certificates against it, and returns
// the DSN of a fresh database for user "tls", who may log in only over
// TLS with a client certificate (REQUIRE X509).
func tlsServer(t *testing.T, certs *testcerts.Set) (*mariadbtest.Server, string) {
	t.Helper()
	srv, err := mariadbtest.StartPrivateWith(mariadbtest.Options{TLS: &mariadbtest.TLS{
		CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CAFile}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, stmt := range []string{
		"CREATE USER 'tls'@'%' IDENTIFIED BY '" + tlsPassword + "' REQUIRE X509",
		"GRANT ALL ON *.* TO 'tls'@'%'",
	} {
		if err := srv.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	cfg, err := gomysql.ParseDSN(srv.CreateDB(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.User, cfg.Passwd = "tls", tlsPassword
	return srv, cfg.FormatDSN()
}

func tlsSink(t *testing.T, dsn string, tls *dsl.TLS) engine.Sink {
	t.Helper()
	s, err := New(engine.Build{Pipeline: engine.Pipeline{Name: "tls"}},
		&dsl.Sink{Type: "mysql", Name: "t", MySQL: &dsl.TableSink{DSN: dsn, AutoCreate: true, TLS: tls}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTLSBlockVerifiesTheServer: the sink's tls block reaches MariaDB
// over TLS, verifying the server's certificate against ca_file and
// presenting cert_file/key_file (the user requires X509, so without the
// block the login is refused); rows are written and committed. A CA that
// did not sign the server's certificate, or a server_name it does not
// carry, is a permanent error at Open that names the attribute to set
// and never the password.
func TestTLSBlockVerifiesTheServer(t *testing.T) {
	certs := testcerts.New(t)
	_, dsn := tlsServer(t, certs)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	good := &dsl.TLS{CAFile: certs.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}
	s := tlsSink(t, dsn, good)
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
	s.Close()

	// Read back as the same TLS user, and see the session is encrypted.
	cfg, _ := ParseDSN(dsn)
	if err := applyTLS(cfg, good); err != nil {
		t.Fatal(err)
	}
	conn, err := gomysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users").Scan(&n); err != nil || n != 3 {
		t.Fatalf("rows in the target: %d, %v; want 3", n, err)
	}
	state, err := SessionTLS(ctx, db)
	if err != nil || !state.Encrypted() {
		t.Fatalf("SessionTLS: %+v, %v; want encrypted", state, err)
	}
	t.Logf("negotiated: %s", state)

	other := testcerts.New(t)
	for _, bad := range []struct {
		name string
		tls  *dsl.TLS
		want string
	}{
		{"another CA", &dsl.TLS{CAFile: other.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, "ca_file"},
		{"the system's roots", &dsl.TLS{CertFile: certs.ClientCert, KeyFile: certs.ClientKey}, "ca_file"},
		{"another name", &dsl.TLS{CAFile: certs.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, ServerName: "db.example"}, "server_name"},
	} {
		_, err := tlsSink(t, dsn, bad.tls).Open(ctx, nil)
		if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: want a permanent error naming %s, got %v", bad.name, bad.want, err)
		} else if strings.Contains(err.Error(), tlsPassword) {
			t.Errorf("%s: the error holds the password: %v", bad.name, err)
		} else {
			t.Logf("%s: %v", bad.name, err)
		}
	}

	// insecure_skip_verify connects despite the unknown CA (tests only).
	if _, err := tlsSink(t, dsn, &dsl.TLS{CAFile: other.CAFile, CertFile: certs.ClientCert, KeyFile: certs.ClientKey, InsecureSkipVerify: true}).Open(ctx, nil); err != nil {
		t.Errorf("insecure_skip_verify: %v", err)
	}
}
