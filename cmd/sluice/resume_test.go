package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/observe"
)

// runResume runs `sluice resume` in-process.
func runResume(file string) (int, string) {
	var out bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	code := c.resume([]string{file})
	return code, out.String()
}

func execSQL(t *testing.T, dsn string, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// TestPauseStatusAndResume is issue 18's acceptance 5: under on_error =
// "pause", a row the target rejects (a name longer than its varchar(10))
// pauses the pipeline; status --json (and the text status) show phase
// paused with the event's stage, table and error, and the last error;
// resume while the target is unchanged pauses again with the new error;
// after ALTER TABLE, resume continues in the same process (same pid,
// still running) and the target ends equal to the source, including a
// row inserted during the pause. resume on a pipeline that is not paused
// says so and exits 1.
func TestPauseStatusAndResume(t *testing.T) {
	cl := startCluster(t)
	dsn := cl.DSN("postgres")
	execSQL(t, dsn, `
		CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 200) g;
		UPDATE items SET name = repeat('x', 30) WHERE id = 120;
		CREATE SCHEMA tgt;
		CREATE TABLE tgt.items (id bigint PRIMARY KEY, name varchar(10) NOT NULL);`)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.hcl")
	src := fmt.Sprintf(`pipeline "p" {
  state    = %q
  on_error = "pause"
}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.items"]
  heartbeat = "1s"
}

sink "postgres" "out" {
  from  = source.app
  dsn   = %q
  table = "tgt.items"
}
`, filepath.Join(dir, "p.db"), dsn, dsn)
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}

	if code, out := runResume(file); code != exitFindings || !strings.Contains(out, "no state file") {
		t.Fatalf("resume before any run: exit %d, %q; want 1, no state file", code, out)
	}
	p := startRun(t, file)
	pid := p.cmd.Process.Pid
	paused := func(st observe.Status) bool { return st.Phase == "paused" && st.Paused != nil }
	st := waitFor(t, file, "phase paused", paused)
	if !st.Running || st.PID != pid {
		t.Errorf("running %v pid %d; want running, pid %d", st.Running, st.PID, pid)
	}
	if st.Paused.Stage != "sink.out" || st.Paused.Table != "public.items" || !strings.Contains(st.Paused.Error, "too long") || st.Paused.Position == "" {
		t.Errorf("paused = %+v; want sink.out, public.items, a position and a too-long error", *st.Paused)
	}
	if st.LastError == nil || st.LastError.Stage != "sink.out" || st.LastError.Time.IsZero() || !strings.Contains(st.LastError.Error, "too long") {
		t.Errorf("last error = %+v; want sink.out's too-long error with its time", st.LastError)
	}
	if strings.Contains(st.Paused.Error, "password") || strings.Contains(st.LastError.Error, "password=") {
		t.Errorf("an error shows the DSN's password: %+v", st.LastError)
	}
	var text bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &text, stderr: &text}
	if code := c.status([]string{file, "--no-probe"}); code != exitOK ||
		!strings.Contains(text.String(), "phase: paused") || !strings.Contains(text.String(), "paused at sink.out, table public.items") ||
		!strings.Contains(text.String(), "last error in sink.out") {
		t.Errorf("status text (exit %d) lacks the pause:\n%s", code, text.String())
	}
	t.Logf("sluice status while paused:\n%s", text.String())

	// Resumed with the target unchanged, the event fails again: paused
	// again, with the new error.
	first := *st.PhaseSince
	if code, out := runResume(file); code != exitOK {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	st = waitFor(t, file, "paused again", func(st observe.Status) bool {
		return paused(st) && st.PhaseSince != nil && st.PhaseSince.After(first)
	})
	if !strings.Contains(st.Paused.Error, "too long") || st.PID != pid {
		t.Errorf("paused again = %+v (pid %d); want the too-long error, pid %d", *st.Paused, st.PID, pid)
	}

	// Fix the target, add a row while paused, resume.
	execSQL(t, dsn, `ALTER TABLE tgt.items ALTER COLUMN name TYPE text;
		INSERT INTO items VALUES (201, 'added while paused');`)
	if code, out := runResume(file); code != exitOK || !strings.Contains(out, fmt.Sprint(pid)) {
		t.Fatalf("resume: exit %d: %s", code, out)
	}
	st = waitFor(t, file, "streaming with every row", func(st observe.Status) bool {
		return st.Phase == "streaming" && scalar[int64](t, dsn, "SELECT count(*) FROM tgt.items") == 201
	})
	if diff := scalar[int64](t, dsn, `SELECT count(*) FROM items a FULL JOIN tgt.items b USING (id) WHERE a.name IS DISTINCT FROM b.name`); diff != 0 {
		t.Errorf("%d rows differ between items and tgt.items", diff)
	}
	if p.cmd.ProcessState != nil || st.PID != pid {
		t.Fatalf("the run did not continue in the same process (exited %v, pid %d, want %d)\n%s", p.cmd.ProcessState, st.PID, pid, p.out)
	}
	if st.Paused != nil || st.LastError == nil {
		t.Errorf("after resume: paused %+v, last error %+v; want no pause, the last error kept", st.Paused, st.LastError)
	}
	if code, out := runResume(file); code != exitFindings || !strings.Contains(out, "not paused (phase streaming)") {
		t.Errorf("resume while streaming: exit %d, %q; want 1, not paused", code, out)
	}
	p.stop(t)
	if st := statusJSON(t, file); st.Running || st.Phase != "stopped" {
		t.Errorf("after stop: running %v, phase %s; want stopped", st.Running, st.Phase)
	}
}
