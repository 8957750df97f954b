package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	"github.com/sluice-cdc/sluice/internal/testcerts"
)

// TestLiveReportsTLS: validate --live says, per connection, what TLS
// it negotiated: against a PostgreSQL that takes TCP only over TLS (the
// source and a PostgreSQL sink, verify-full in their DSNs) and a MariaDB
// whose user requires a client certificate (the mysql sink's tls block),
// each connection is reported "TLS on" with its protocol; a pipeline
// whose connections are plaintext gets a warning at the dsn saying the
// connection is not encrypted and how to turn TLS on; a tls block whose
// CA did not sign the server's certificate gets a warning saying to set
// ca_file.
func TestLiveReportsTLS(t *testing.T) {
	tc, certs := pgtest.StartTLS(t)
	srv, err := mariadbtest.StartPrivateWith(mariadbtest.Options{TLS: &mariadbtest.TLS{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CAFile}})
	if errors.Is(err, mariadbtest.ErrNoServer) {
		dbskip.Missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, stmt := range []string{"CREATE USER 'tls'@'%' IDENTIFIED BY 'tls-pw' REQUIRE X509", "GRANT ALL ON *.* TO 'tls'@'%'"} {
		if err := srv.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	mcfg, err := gomysql.ParseDSN(srv.CreateDB(t))
	if err != nil {
		t.Fatal(err)
	}
	mcfg.User, mcfg.Passwd = "tls", "tls-pw"
	source, target := tc.CreateDB(t), tc.CreateDB(t)
	db := source[strings.LastIndex(source, "/")+1 : strings.Index(source, "?")]
	if err := tc.Exec(ctx, db, `CREATE TABLE users (id bigint PRIMARY KEY, name text)`); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	t.Chdir(dir)
	pipeline := func(name, source, target, mysql, tls string) string {
		return writeFile(t, dir, name, fmt.Sprintf(`pipeline "tls" {}

source "postgres" "app" {
  dsn    = %q
  tables = ["public.users"]
}

sink "postgres" "pg" {
  from        = source.app
  dsn         = %q
  auto_create = true
}

sink "mysql" "my" {
  from        = source.app
  dsn         = %q
  auto_create = true
%s}
`, source, target, mysql, tls))
	}
	tlsBlock := func(ca string) string {
		return fmt.Sprintf("  tls {\n    ca_file   = %q\n    cert_file = %q\n    key_file  = %q\n  }\n", ca, certs.ClientCert, certs.ClientKey)
	}

	good := pipeline("good.hcl", source, target, mcfg.FormatDSN(), tlsBlock(certs.CAFile))
	code, stdout, stderr := runCLI(t, "validate", "--live", good)
	if code != exitOK {
		t.Fatalf("validate --live over TLS: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{`source "app": TLS on (TLSv1.3`, `sink "pg": TLS on (TLSv1.3`, `sink "my": TLS on (TLSv1.3`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("validate --live lacks %q:\n%s%s", want, stdout, stderr)
		}
	}
	if strings.Contains(stderr, "not encrypted") || strings.Contains(stderr, "could not check TLS") {
		t.Errorf("validate --live warned about TLS on verified connections:\n%s", stderr)
	}
	t.Logf("over TLS:\n%s%s", stdout, stderr)

	other := testcerts.New(t)
	badTarget := strings.ReplaceAll(target, strings.ReplaceAll(certs.CAFile, "/", "%2F"), other.CAFile)
	wrongCA := pipeline("wrongca.hcl", source, badTarget, mcfg.FormatDSN(), tlsBlock(other.CAFile))
	code, stdout, stderr = runCLI(t, "validate", "--live", wrongCA)
	if code != exitFindings {
		t.Errorf("validate --live with another CA: exit %d, want 1", code)
	}
	for _, want := range []string{
		`wrongca.hcl:10:17: error: sink "pg": could not check TLS: `,
		`wrongca.hcl:19:17: error: sink "my": could not check TLS: `,
		"certificate signed by unknown authority", "set tls { ca_file",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("validate --live with another CA lacks %q:\n%s%s", want, stdout, stderr)
		}
	}
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "could not check TLS") && strings.Contains(line, "tls-pw") {
			t.Errorf("the password in a message: %s", line)
		}
	}

	// Plaintext everywhere: a private cluster without TLS, root on MariaDB.
	plain := startCluster(t)
	psrc, ptgt := plain.CreateDB(t), plain.CreateDB(t)
	pdb := psrc[strings.LastIndex(psrc, "/")+1 : strings.Index(psrc, "?")]
	if err := plain.Exec(ctx, pdb, `CREATE TABLE users (id bigint PRIMARY KEY, name text)`); err != nil {
		t.Fatal(err)
	}
	clear := pipeline("plain.hcl", psrc, ptgt, srv.CreateDB(t), "")
	code, stdout, stderr = runCLI(t, "validate", "--live", clear)
	if code != exitOK {
		t.Fatalf("validate --live in plaintext: exit %d, want 0 (warnings)\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		`plain.hcl:4:12: warning: source "app": the connection is not encrypted (TLS off)`,
		`plain.hcl:10:17: warning: sink "pg": the connection is not encrypted (TLS off)`,
		`plain.hcl:16:17: warning: sink "my": the connection is not encrypted (TLS off)`,
		"sslmode=verify-full", "tls { ca_file",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("validate --live in plaintext lacks %q:\n%s", want, stderr)
		}
	}
}
