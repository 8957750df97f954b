package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCommandOnARunningPipeline builds the sluice command, runs a real
// pipeline (snapshot, then logical replication into MariaDB) while a
// writer changes the source, and runs `sluice verify` against it while it
// runs: re-checking differing chunks absorbs the pipeline's lag, so it
// reports equality (exit 0). After the pipeline stops, a target row
// changed behind its back is reported (exit 1, in the JSON).
func TestCommandOnARunningPipeline(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src := cluster.CreateDB(t)
	execPG(t, src, `CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2) NOT NULL, updated timestamptz NOT NULL DEFAULT now());
		INSERT INTO accounts SELECT i, 'owner ' || i, 100, now() FROM generate_series(1, 5000) i;`)
	dst := server.CreateDB(t)
	file := filepath.Join(dir, "accounts.hcl")
	if err := os.WriteFile(file, []byte(`
pipeline "accounts" {}
source "postgres" "app" {
  dsn    = env("SOURCE_DSN")
  tables = ["public.accounts"]
}
sink "mysql" "replica" {
  from        = source.app
  dsn         = env("TARGET_DSN")
  auto_create = true
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "SOURCE_DSN="+src, "TARGET_DSN="+dst)

	logs := &lockedBuffer{}
	run := exec.Command(bin, "run", file, "--log-format", "json")
	run.Dir, run.Env, run.Stdout, run.Stderr = dir, env, logs, logs
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			run.Process.Kill()
			run.Wait()
		}
	})

	// A writer moves money between accounts while the pipeline runs.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := range 300 {
		a, b := 1+i*13%5000, 1+i*29%5000
		if _, err := conn.Exec(ctx, `UPDATE accounts SET balance = balance + CASE WHEN id = $1 THEN -1 ELSE 1 END, updated = now() WHERE id IN ($1, $2)`, a, b); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if _, err := conn.Exec(ctx, `INSERT INTO accounts (id, owner, balance) VALUES ($1, 'new', 0)`, 10000+i); err != nil {
				t.Fatal(err)
			}
		}
	}

	// verify needs the target table, which the pipeline creates.
	db, err := openMySQL(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'accounts'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline created no target table:\n%s", logs.String())
		}
	}
	verifyCmd := func(args ...string) (int, *Report, string) {
		cmd := exec.Command(bin, append([]string{"verify", file}, args...)...)
		cmd.Dir, cmd.Env = dir, env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		var rep Report
		if code != 2 {
			if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
				t.Fatalf("verify --json printed no report (%v): %s\n%s", err, stdout.String(), stderr.String())
			}
		}
		return code, &rep, stderr.String()
	}
	// The writer goes on for a while during verify, so that chunks
	// differ while the pipeline lags behind and must be re-read.
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		for i, end := 0, time.Now().Add(1500*time.Millisecond); time.Now().Before(end); i++ {
			if _, err := conn.Exec(ctx, `UPDATE accounts SET balance = balance + 1, updated = now() WHERE id = $1`, 1+i*97%5000); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	code, rep, stderr := verifyCmd("--json", "--chunk", "1000", "--rechecks", "40", "--recheck-wait", "250ms")
	<-writing
	if code != 0 || !rep.Equal() {
		t.Fatalf("verify of a running pipeline: exit %d, %+v\n%s\npipeline logs:\n%s", code, *rep.Pairs[0], stderr, logs.String())
	}
	if p := rep.Pairs[0]; p.SourceRows != 5006 || p.Chunks != 6 {
		t.Fatalf("%d source rows in %d chunks, want 5006 in 6", p.SourceRows, p.Chunks)
	} else {
		t.Logf("running pipeline: equal after %d chunk re-reads", p.Rechecked)
	}

	// Once the writer is done and the pipeline has caught up (verify
	// says so), stop it: nothing is left in flight.
	if code, rep, _ := verifyCmd("--json", "--rechecks", "40", "--recheck-wait", "250ms"); code != 0 {
		t.Fatalf("the pipeline did not catch up: %+v\n%s", *rep.Pairs[0], logs.String())
	}
	run.Process.Signal(syscall.SIGINT)
	if err := run.Wait(); err != nil {
		t.Fatalf("sluice run: %v\n%s", err, logs.String())
	}
	stopped = true
	execMySQL(t, dst, "UPDATE accounts SET balance = 1000000 WHERE id = 4321")
	code, rep, _ = verifyCmd("--json", "--rechecks", "0")
	p := rep.Pairs[0]
	if code != 1 || p.Different != 1 || fmt.Sprint(p.Diffs[0].Key["id"]) != "4321" || p.Diffs[0].Columns[0].Column != "balance" {
		t.Fatalf("exit %d, %+v", code, p)
	}
	if code, _, _ := verifyCmd("--chunk", "-1"); code != 2 {
		t.Fatalf("a bad flag exits %d, want 2", code)
	}
}

// lockedBuffer collects a child's output, which its copying goroutines
// write while the test may read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
