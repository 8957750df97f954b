package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/go-sql-driver/mysql"
)

// TestLiveChecksAndDryRunOnRealData: validate --live against a real
// PostgreSQL reports what is wrong where it is written, and dry-run
// --sample / --peek show real rows and pending changes without consuming
// or creating anything.
func TestLiveChecksAndDryRunOnRealData(t *testing.T) {
	cl := startCluster(t)
	dsn := cl.CreateDB(t)
	ctx := context.Background()
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	if err := cl.Exec(ctx, db, `CREATE TABLE users (id bigint PRIMARY KEY, name text, email text, total numeric(10,2), password text);
		INSERT INTO users VALUES (1, 'Ada', 'ada@example.com', 10, 'x'), (2, 'Alan', 'alan@example.com', 60, 'y'), (3, 'Grace', 'grace@example.com', 70, 'z')`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("SOURCE_DSN", dsn)
	good := writeFile(t, dir, "good.hcl", `pipeline "live" {}

source "postgres" "app" {
  dsn     = env("SOURCE_DSN")
  tables  = ["public.users"]
  exclude = ["public.users.password"]
}

transform "big" {
  from    = source.app
  where   = "after.total >= 50"
  mask    = { email = "redact" }
}

sink "file" "out" {
  from = transform.big
  path = "-"
}
`)
	if code, stdout, stderr := runCLI(t, "validate", "--live", good); code != exitOK {
		t.Fatalf("validate --live on a good pipeline: %d\n%s%s", code, stdout, stderr)
	}

	bad := writeFile(t, dir, "bad.hcl", `pipeline "live" {}

source "postgres" "app" {
  dsn     = env("SOURCE_DSN")
  tables  = ["public.users"]
  exclude = ["public.users.password"]
}

transform "big" {
  from  = source.app
  where = "after.totl >= 50 || after.name == 7"
  mask  = { emial = "redact" }
}

sink "file" "out" {
  from = transform.big
  path = "-"
}
`)
	code, _, stderr := runCLI(t, "validate", "--live", bad)
	if code != exitFindings {
		t.Fatalf("validate --live on a bad pipeline: exit %d, want 1\n%s", code, stderr)
	}
	for _, want := range []string{
		`bad.hcl:11:11: error: transform "big": where names column "totl", which public.users does not have`,
		`bad.hcl:11:11: warning: transform "big": "after.totl >= 50 || after.name == 7" compares column name (text) with a number`,
		`bad.hcl:12:11: error: transform "big": mask names column "emial"`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("validate --live output lacks %q:\n%s", want, stderr)
		}
	}

	goodSrc, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	missing := writeFile(t, dir, "missing.hcl", strings.Replace(string(goodSrc), `["public.users"]`, `["public.users", "public.orders"]`, 1))
	code, _, stderr = runCLI(t, "validate", "--live", missing)
	if want := "missing.hcl:5:13: error: table public.orders does not exist"; code != exitFindings || !strings.Contains(stderr, want) {
		t.Errorf("validate --live with a missing table: exit %d, want 1 and %q:\n%s", code, want, stderr)
	}

	// --sample: real rows through the transforms, password never read
	code, stdout, stderr := runCLI(t, "dry-run", good, "--sample", "10")
	if code != exitOK {
		t.Fatalf("dry-run --sample: %d\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "== sink.out (file, native format): 2 event(s)") || !strings.Contains(stdout, `"email":"***"`) || strings.Contains(stdout, "password") {
		t.Errorf("dry-run --sample output:\n%s", stdout)
	}
	// --peek needs a slot with pending changes; it consumes nothing
	if err := cl.Exec(ctx, db, `CREATE PUBLICATION sluice_live FOR TABLE users (id, name, email, total)`); err != nil {
		t.Fatal(err)
	}
	if err := cl.Exec(ctx, db, `SELECT pg_create_logical_replication_slot('sluice_live', 'pgoutput')`); err != nil {
		t.Fatal(err)
	}
	if err := cl.Exec(ctx, db, `INSERT INTO users VALUES (4, 'Linus', 'linus@example.com', 99, 'w'); UPDATE users SET total = 5 WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		code, stdout, stderr = runCLI(t, "dry-run", good, "--peek", "10")
		if code != exitOK {
			t.Fatalf("dry-run --peek: %d\n%s", code, stderr)
		}
		if !strings.Contains(stdout, "1 event(s)") || !strings.Contains(stdout, `"op":"insert"`) || !strings.Contains(stdout, `"name":"Linus"`) {
			t.Errorf("dry-run --peek (run %d) output:\n%s", i+1, stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".sluice")); !os.IsNotExist(err) {
		t.Errorf("dry-run created a state directory")
	}
}

// TestLiveChecksMySQLTargets: validate --live warns, before the first
// row, about an existing MySQL target whose key collation would merge
// keys PostgreSQL tells apart and whose DECIMAL is narrower than the
// source's numeric; a target created by auto_create gets no key warning.
func TestLiveChecksMySQLTargets(t *testing.T) {
	srv := startMariaDB(t)
	cl := startCluster(t)
	dsn := cl.CreateDB(t)
	ctx := context.Background()
	db := dsn[strings.LastIndex(dsn, "/")+1 : strings.Index(dsn, "?")]
	if err := cl.Exec(ctx, db, `CREATE TABLE codes (code text PRIMARY KEY, amount numeric(40,35), note text);
		CREATE TABLE fresh (code text PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	target := srv.CreateDB(t)
	mdb, err := sql.Open("mysql", target)
	if err != nil {
		t.Fatal(err)
	}
	defer mdb.Close()
	if _, err := mdb.Exec("CREATE TABLE codes (code VARCHAR(50) COLLATE utf8mb4_general_ci NOT NULL PRIMARY KEY, amount DECIMAL(12,2), note TEXT COLLATE utf8mb4_general_ci)"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("SOURCE_DSN", dsn)
	t.Setenv("TARGET_DSN", target)
	path := writeFile(t, dir, "mysql.hcl", `pipeline "live" {}

source "postgres" "app" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.codes", "public.fresh"]
}

transform "all" {
  from = source.app
}

sink "mysql" "out" {
  from        = transform.all
  dsn         = env("TARGET_DSN")
  auto_create = true
}
`)
	code, stdout, stderr := runCLI(t, "validate", "--live", path)
	if code != exitOK {
		t.Fatalf("validate --live: exit %d, want 0 (warnings only)\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{
		`mysql.hcl:14:17: warning: sink "out": key column code of target table codes has collation utf8mb4_general_ci, which compares case- or accent-insensitively ('abc' = 'ABC') and ignores trailing spaces ('abc' = 'abc ')`,
		"ALTER TABLE `codes` MODIFY `code` VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL;",
		`warning: sink "out": column amount of target table codes is decimal(12,2), and source type numeric(40,35) has up to 5 integer digits and 35 places: a value with more than 2 places or 10 integer digits will be refused, never rounded`,
		"ALTER the column to VARCHAR(43)",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("validate --live output lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "column note") || strings.Contains(stderr, "target table fresh") {
		t.Errorf("validate --live warned about a column outside the key or a table that does not exist yet:\n%s", stderr)
	}
}
