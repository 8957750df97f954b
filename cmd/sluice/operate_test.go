package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/internal/pgtest"
	"github.com/sluice-cdc/sluice/observe"
)

// startMariaDB returns the machine's MariaDB or a private one, stopped
// when the test ends; without one it fails, or skips with
// SLUICE_SKIP_DB=1 (see dbskip).
func startMariaDB(t *testing.T) *mariadbtest.Server {
	t.Helper()
	srv, err := mariadbtest.Start()
	if errors.Is(err, mariadbtest.ErrNoServer) {
		dbskip.Missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	return srv
}

// startCluster starts a private PostgreSQL with wal_level=logical for one
// test; without PostgreSQL binaries it fails, or skips with
// SLUICE_SKIP_DB=1 (see dbskip).
func startCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	cl, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNoBinaries) {
		dbskip.Missing(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cl.Stop(); err != nil {
			t.Error(err)
		}
	})
	return cl
}

// pgPipeline writes a pipeline copying public.items into the PostgreSQL
// table target of the same database.
func pgPipeline(t *testing.T, dir, name, dsn, target string) string {
	t.Helper()
	src := fmt.Sprintf(`pipeline %q {
  state = %q
}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.items"]
  heartbeat = "1s"
}

sink "postgres" "out" {
  from  = source.app
  dsn   = %q
  table = %q
}
`, name, filepath.Join(dir, name+".db"), dsn, dsn, target)
	path := filepath.Join(dir, name+".hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// sluiceProc is `sluice run` as a separate process.
type sluiceProc struct {
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan error
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startRun(t *testing.T, args ...string) *sluiceProc {
	t.Helper()
	p := &sluiceProc{cmd: exec.Command(sluiceBin, append([]string{"run"}, args...)...), out: &lockedBuffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// stop sends SIGTERM and requires exit 0.
func (p *sluiceProc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("sluice run: %v\n%s", err, p.out)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("sluice run did not stop\n%s", p.out)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// statusJSON runs `sluice status FILE --json` in-process.
func statusJSON(t *testing.T, file string) observe.Status {
	t.Helper()
	st, err := tryStatus(file)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func tryStatus(file string) (observe.Status, error) {
	var out, errs bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errs}
	if code := c.status([]string{file, "--json"}); code != exitOK {
		return observe.Status{}, fmt.Errorf("status exit %d: %s", code, errs.String())
	}
	var st observe.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		return st, fmt.Errorf("status --json: %v\n%s", err, out.String())
	}
	return st, nil
}

// waitFor polls status until ok, failing after a minute with the last one.
func waitFor(t *testing.T, file, what string, ok func(observe.Status) bool) observe.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, err := tryStatus(file)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			t.Fatalf("status never showed %s; last (%v):\n%s", what, err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// runWait runs `sluice wait` in-process and returns its exit code and output.
func runWait(args ...string) (int, string) {
	var out bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	code := c.wait(append(args, "--interval", "100ms"))
	return code, out.String()
}

// lockTarget holds a SHARE lock on tables until the returned func is
// called: reads go on, the sink's writes wait (a stalled target).
func lockTarget(t *testing.T, dsn string, tables ...string) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE "+strings.Join(tables, ", ")+" IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			if err := tx.Commit(ctx); err != nil {
				t.Error(err)
			}
			conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

func scalar[T any](t *testing.T, dsn, sql string) T {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var v T
	if err := conn.QueryRow(context.Background(), sql).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// scrape reads /metrics into "name{labels}" → value (labels as printed,
// sorted by name, which is how client_golang prints them).
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	code, body := httpGet(t, "http://"+addr+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func metric(t *testing.T, m map[string]float64, name string) float64 {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	return v
}

const snapshotRows = 60_000

// seedItems creates public.items with snapshotRows rows and an empty
// target tgt.items.
func seedItems(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, fmt.Sprintf(`
		CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, %d) g;
		ANALYZE items;
		CREATE SCHEMA tgt;
		CREATE TABLE tgt.items (id bigint PRIMARY KEY, name text NOT NULL);`, snapshotRows))
	if err != nil {
		t.Fatal(err)
	}
}

// TestOperatingAPostgresPipeline runs PostgreSQL → PostgreSQL as a separate
// `sluice run --http` process against a target whose writes are held by
// a lock, and checks what an operator sees: status --json during the
// snapshot and while streaming (positions, progress, lag building up and
// back to 0), wait timing out and then succeeding, the metrics after the
// run, no progress bar in non-terminal output, and drop.
func TestOperatingAPostgresPipeline(t *testing.T) {
	cl := startCluster(t)
	dsn := cl.CreateDB(t)
	seedItems(t, dsn)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	dir := t.TempDir()
	file := pgPipeline(t, dir, "ops", dsn, "tgt.items")
	addr := freeAddr(t)

	// Snapshot against a stalled target.
	release := lockTarget(t, dsn, "tgt.items")
	run := startRun(t, file, "--http", addr)
	st := waitFor(t, file, "a snapshot in progress with the sink over 1s behind", func(st observe.Status) bool {
		s := st.Sources[0].Snapshot
		return st.Running && s != nil && s.RowsDone > 0 && st.Sinks[0].LagSeconds != nil && *st.Sinks[0].LagSeconds > 1
	})
	snap := st.Sources[0].Snapshot
	if snap.Done || snap.RowsDone >= snapshotRows || len(snap.Tables) != 1 || snap.Tables[0].Table != "public.items" {
		t.Fatalf("snapshot against a blocked sink: %+v; want public.items in progress, fewer than %d rows read", snap, snapshotRows)
	}
	if snap.RowsEstimated < snapshotRows*9/10 || snap.RowsEstimated > snapshotRows*11/10 {
		t.Errorf("rows estimated %d, want about %d", snap.RowsEstimated, snapshotRows)
	}
	if snap.RowsPerSecond <= 0 || snap.ETASeconds == nil || *snap.ETASeconds <= 0 {
		t.Errorf("snapshot rate %v rows/s, ETA %v: want both while it runs", snap.RowsPerSecond, snap.ETASeconds)
	}
	if len(st.Sinks[0].Committed) != 0 || st.Sinks[0].CommitTime != nil {
		t.Errorf("blocked sink committed %v at %v", st.Sinks[0].Committed, st.Sinks[0].CommitTime)
	}
	if w := st.Sources[0].WAL; w == nil || !w.Exists || w.Slot != "sluice_ops" {
		t.Errorf("WAL of the slot: %+v", w)
	}
	if code, body := httpGet(t, "http://"+addr+"/readyz"); code != http.StatusOK || strings.TrimSpace(body) != "running" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+addr+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	code, body := httpGet(t, "http://"+addr+"/status")
	var live observe.Status
	if err := json.Unmarshal([]byte(body), &live); code != http.StatusOK || err != nil || !live.Running || live.Pipeline != "ops" || live.Sources[0].Snapshot == nil {
		t.Errorf("/status: %d %v %s", code, err, body)
	}
	start := time.Now()
	if code, out := runWait(file, "--max-lag", "1s", "--for", "200ms", "--timeout", "1500ms"); code != exitFindings || !strings.Contains(out, "timed out") || !strings.Contains(out, "sink out is") {
		t.Fatalf("wait on a stalled sink: exit %d: %s", code, out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("wait --timeout 1500ms took %s", took)
	}

	// The target comes back: the snapshot completes and lag returns to 0.
	release()
	start = time.Now()
	if code, out := runWait(file, "--max-lag", "1s", "--for", "1s", "--timeout", "60s"); code != exitOK {
		t.Fatalf("wait after the target came back: exit %d: %s", code, out)
	}
	t.Logf("caught up %s after the target came back", time.Since(start))
	st = waitFor(t, file, "the snapshot done", func(st observe.Status) bool { return st.Sources[0].Snapshot.Done })
	if n := scalar[int64](t, dsn, "SELECT count(*) FROM tgt.items"); n != snapshotRows {
		t.Fatalf("target holds %d rows after the snapshot, want %d", n, snapshotRows)
	}
	if lag := st.Sinks[0].LagSeconds; lag == nil || *lag > 1 {
		t.Fatalf("caught-up lag %v", lag)
	}

	// Streaming against a stalled target: lag in seconds and bytes grows.
	release = lockTarget(t, dsn, "tgt.items")
	before := time.Now()
	if _, err := conn.Exec(ctx, "INSERT INTO items SELECT g, 'new ' || g FROM generate_series(1000001, 1000100) g"); err != nil {
		t.Fatal(err)
	}
	lsn := scalar[string](t, dsn, "SELECT pg_current_wal_lsn()::text")
	after := time.Now()
	st = waitFor(t, file, "the sink over 1s behind while streaming", func(st observe.Status) bool {
		return st.Sinks[0].LagSeconds != nil && *st.Sinks[0].LagSeconds > 1
	})
	lag := *st.Sinks[0].LagSeconds
	if max := time.Since(before).Seconds() + 2; lag > max {
		t.Errorf("lag %.1fs, but the change was committed %.1fs ago", lag, time.Since(before).Seconds())
	}
	if b := st.Sinks[0].LagBytes; b == nil || *b <= 0 {
		t.Errorf("lag bytes %v while a committed transaction waits", b)
	}
	if w := st.Sources[0].WAL; w == nil || w.LagBytes <= 0 || w.RetainedBytes < w.LagBytes {
		t.Errorf("slot while behind: %+v", w)
	}
	release()
	if code, out := runWait(file, "--max-lag", "1s", "--for", "1s", "--timeout", "60s"); code != exitOK {
		t.Fatalf("wait after streaming caught up: exit %d: %s", code, out)
	}
	st = statusJSON(t, file)
	want, err := change.ParsePosition(change.Stream{Source: "app"}, lsn)
	if err != nil {
		t.Fatal(err)
	}
	got := st.Sinks[0].Committed[change.Stream{Source: "app"}]
	if got.Offset < want.Offset-1024 {
		t.Errorf("committed %s, want at least the insert's commit (WAL was at %s after it)", got.LSN(), lsn)
	}
	if ct := st.Sinks[0].CommitTime; ct == nil || ct.Before(before.Add(-time.Second)) {
		t.Errorf("last commit time %v, want at or after the insert (%s..%s)", ct, before, after)
	}
	if n := scalar[int64](t, dsn, "SELECT count(*) FROM tgt.items"); n != snapshotRows+100 {
		t.Fatalf("target holds %d rows, want %d", n, snapshotRows+100)
	}

	m := scrape(t, addr)
	if v := metric(t, m, `sluice_snapshot_rows_total{source="app"}`); v != snapshotRows {
		t.Errorf("snapshot rows %v, want %d", v, snapshotRows)
	}
	if v := metric(t, m, `sluice_source_events_total{source="app"}`); v < snapshotRows+100 {
		t.Errorf("source events %v, want at least %d", v, snapshotRows+100)
	}
	if v := metric(t, m, `sluice_sink_events_committed_total{sink="out"}`); v < snapshotRows+100 {
		t.Errorf("committed events %v", v)
	}
	if v := metric(t, m, `sluice_sink_commit_seconds_count{sink="out"}`); v < 2 {
		t.Errorf("commit latency observations %v", v)
	}
	if v := metric(t, m, `sluice_sink_batch_events_sum{sink="out"}`); v != metric(t, m, `sluice_sink_events_committed_total{sink="out"}`) {
		t.Errorf("batch sizes sum to %v, committed %v", v, m[`sluice_sink_events_committed_total{sink="out"}`])
	}
	if v := metric(t, m, `sluice_sink_lag_seconds{sink="out"}`); v > 1 {
		t.Errorf("lag after catching up %v", v)
	}
	if v := metric(t, m, `sluice_source_wal_retained_bytes{slot="sluice_ops",source="app"}`); v <= 0 {
		t.Errorf("retained WAL %v", v)
	}
	if _, ok := m[`sluice_sink_lag_bytes{sink="out",source="app"}`]; !ok {
		t.Error("sluice_sink_lag_bytes missing")
	}
	if metric(t, m, `sluice_phase{phase="running"}`) != 1 || metric(t, m, `sluice_restarts_total`) != 0 || metric(t, m, `sluice_errors_total{stage="sink.out"}`) != 0 {
		t.Errorf("phase/restarts/errors: %v %v %v", m[`sluice_phase{phase="running"}`], m[`sluice_restarts_total`], m[`sluice_errors_total{stage="sink.out"}`])
	}
	if metric(t, m, `sluice_dead_letters_total{stage="sink.out"}`) != 0 {
		t.Error("dead letters counted")
	}

	run.stop(t)
	if out := run.out.String(); strings.Contains(out, "snapshot app") || strings.Contains(out, "\x1b[") || strings.Contains(out, "\r") {
		t.Errorf("non-terminal output holds a progress bar:\n%s", out)
	}
	st = statusJSON(t, file)
	if st.Running || st.Sinks[0].LagSeconds != nil || st.Sinks[0].CommitTime == nil {
		t.Errorf("stopped pipeline: running %v, lag %v, commit time %v", st.Running, st.Sinks[0].LagSeconds, st.Sinks[0].CommitTime)
	}
	if code, out := runWait(file, "--max-lag", "1s", "--for", "0s", "--timeout", "300ms"); code != exitFindings || !strings.Contains(out, "not running") {
		t.Errorf("wait on a stopped pipeline: exit %d: %s", code, out)
	}
	var human bytes.Buffer
	if code := (&cli{stdout: &human, stderr: &human}).status([]string{file}); code != exitOK ||
		!strings.Contains(human.String(), "not running") || !strings.Contains(human.String(), "snapshot of source app: done, 60000/~") {
		t.Errorf("human status: exit %d\n%s", code, human.String())
	}

	// A copy of the state file, for after drop removed the slot.
	lostDir := t.TempDir()
	lostFile := pgPipeline(t, lostDir, "ops", dsn, "tgt.items")
	b, err := os.ReadFile(filepath.Join(dir, "ops.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lostDir, "ops.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}

	testDrop(t, file, dsn, filepath.Join(dir, "ops.db"))

	// The slot is gone but this state file says sinks committed through it.
	var logs bytes.Buffer
	stopped := make(chan struct{})
	close(stopped)
	c := &cli{stdout: &logs, stderr: &logs, stop: stopped}
	if code := c.runPipeline([]string{lostFile}); code != exitFindings || !strings.Contains(logs.String(), "dropped behind sluice's back") {
		t.Fatalf("run after the slot was dropped: exit %d\n%s", code, logs.String())
	}
	if n := scalar[int64](t, dsn, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sluice_ops'"); n != 0 {
		t.Error("run recreated the dropped slot")
	}
}

func testDrop(t *testing.T, file, dsn, statePath string) {
	var out bytes.Buffer
	c := &cli{stdin: strings.NewReader("no\n"), stdout: &out, stderr: &out}
	if code := c.drop([]string{file}); code != exitFindings || !strings.Contains(out.String(), "nothing removed") {
		t.Fatalf("drop answered no: exit %d\n%s", code, out.String())
	}
	if _, err := os.Stat(statePath); err != nil {
		t.Fatalf("drop answered no removed the state file: %v", err)
	}
	out.Reset()
	c = &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	if code := c.drop([]string{file, "--yes"}); code != exitOK {
		t.Fatalf("drop --yes: exit %d\n%s", code, out.String())
	}
	for _, want := range []string{"removed replication slot sluice_ops (source app)", "removed publication sluice_ops (source app)", "removed state file " + statePath} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("drop output lacks %q:\n%s", want, out.String())
		}
	}
	if n := scalar[int64](t, dsn, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'sluice_ops'"); n != 0 {
		t.Error("slot still there after drop")
	}
	if n := scalar[int64](t, dsn, "SELECT count(*) FROM pg_publication WHERE pubname = 'sluice_ops'"); n != 0 {
		t.Error("publication still there after drop")
	}
	if _, err := os.Stat(statePath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after drop: %v", err)
	}
	out.Reset()
	if code := (&cli{stdout: &out, stderr: &out}).drop([]string{file, "--yes"}); code != exitOK || !strings.Contains(out.String(), "no replication slot sluice_ops") {
		t.Errorf("second drop: exit %d\n%s", code, out.String())
	}
}

// TestSnapshotBarOnlyOnATerminal runs `sluice run` under a pseudo-terminal
// during a snapshot (held by a locked target, so it lasts) and checks the
// bar is drawn; the non-terminal case is checked by
// TestOperatingAPostgresPipeline's output.
func TestSnapshotBarOnlyOnATerminal(t *testing.T) {
	cl := startCluster(t)
	dsn := cl.CreateDB(t)
	seedItems(t, dsn)
	lockTarget(t, dsn, "tgt.items")
	file := pgPipeline(t, t.TempDir(), "bar", dsn, "tgt.items")
	cmd := exec.Command(sluiceBin, "run", file)
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 120})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
		tty.Close()
	}()
	out := &lockedBuffer{}
	go io.Copy(out, tty)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "snapshot app") || !strings.Contains(out.String(), " / 60000 rows") {
		if time.Now().After(deadline) {
			t.Fatalf("no progress bar on a terminal after 30s:\n%q", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out.String(), " / 60000 rows") || !strings.Contains(out.String(), "%") {
		t.Fatalf("bar without counts: %q", out.String())
	}
}
