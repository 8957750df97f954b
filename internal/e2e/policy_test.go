package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRejectedRowPolicies: a row MariaDB refuses (too long for its column)
// under on_error = "fail" stops `sluice run` with a non-zero exit that
// names the sink, table and position; under "pause" (and under the
// default "retry", which pauses on a refused row) the process keeps
// running, commits nothing past the row and keeps the source position, so
// that after the target is fixed a restart applies the row and the rest.
// Nothing is dropped in any of them.
func TestRejectedRowPolicies(t *testing.T) {
	for _, policy := range []string{"fail", "pause", "retry"} {
		t.Run(policy, func(t *testing.T) { rejectedRowPolicy(t, policy) })
	}
}

func rejectedRowPolicy(t *testing.T, policy string) {
	srcDSN := pg.CreateDB(t)
	src := openPG(t, srcDSN)
	mustExec(t, src, "CREATE TABLE notes (id integer PRIMARY KEY, body text)")
	tgt := newTarget(t, "mysql")
	mustExec(t, tgt.db, "CREATE TABLE notes (id BIGINT PRIMARY KEY, body VARCHAR(5))")
	dir := t.TempDir()
	file := writeFile(t, dir, "policy.hcl", fmt.Sprintf(`pipeline "policy" {
  state    = %q
  on_error = %q
}

source "postgres" "app" {
  dsn       = env("SOURCE_DSN")
  tables    = ["public.notes"]
  slot      = "e2e_policy"
  heartbeat = "1s"
}

sink "mysql" "notes" {
  from = source.app
  dsn  = env("TARGET_DSN")
}
`, filepath.Join(dir, "state.db"), policy))
	env := []string{"SOURCE_DSN=" + srcDSN, "TARGET_DSN=" + tgt.dsn}
	mustExec(t, src,
		"INSERT INTO notes VALUES (1, 'ok')",
		"INSERT INTO notes VALUES (2, 'far too long for five')",
		"INSERT INTO notes VALUES (3, 'fine')")
	count := func() int64 { return queryInt(t, tgt.db, "SELECT count(*) FROM notes") }

	p := startSluice(t, dir, file, env...)
	switch policy {
	case "fail":
		select {
		case <-p.done:
		case <-time.After(time.Minute):
			t.Fatalf("on_error = fail: still running a minute after the refused row\n%s", p.logs.String())
		}
		logs := p.logs.String()
		if p.err == nil {
			t.Fatalf("on_error = fail: exit 0, want non-zero\n%s", logs)
		}
		for _, want := range []string{"sink.notes", "public.notes", "Data too long"} {
			if !strings.Contains(logs, want) {
				t.Errorf("on_error = fail: the error does not name %q\n%s", want, logs)
			}
		}
	default:
		if !eventually(time.Minute, 50*time.Millisecond, func() bool { return strings.Contains(p.logs.String(), "PIPELINE PAUSED") || !p.running() }) || !p.running() {
			t.Fatalf("on_error = %s: no pause within a minute (running %t)\n%s", policy, p.running(), p.logs.String())
		}
		time.Sleep(2 * time.Second) // a paused pipeline must not move on
		if !p.running() {
			t.Fatalf("on_error = %s: the paused process exited\n%s", policy, p.logs.String())
		}
		_ = p.stop() // a stop of a paused pipeline reports the pause

	}
	if n := count(); n > 1 {
		t.Fatalf("on_error = %s: %d rows in the target, want at most the one before the refused row", policy, n)
	}
	// fix the target; a restart applies the refused row and the rest
	mustExec(t, tgt.db, "ALTER TABLE notes MODIFY body TEXT")
	p = startSluice(t, dir, file, env...)
	if !eventually(time.Minute, 50*time.Millisecond, func() bool { return count() == 3 || !p.healthy() }) {
		t.Fatalf("on_error = %s: after fixing the target %d rows, want 3\n%s", policy, count(), p.logs.String())
	}
	if err := p.stop(); err != nil {
		t.Fatalf("graceful stop: %v\n%s", err, p.logs.String())
	}
}
