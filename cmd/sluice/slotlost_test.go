package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/pgtest"
)

// startLimitedCluster starts a private cluster whose slots are
// invalidated once they hold back more than 16 MB of WAL.
func startLimitedCluster(t *testing.T) *pgtest.Cluster {
	t.Helper()
	cl, err := pgtest.StartWith(pgtest.Options{Settings: []string{"max_slot_wal_keep_size=16MB", "wal_keep_size=0"}})
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

// invalidateSlot writes and switches WAL segments and checkpoints until
// PostgreSQL invalidates slot (wal_status = lost).
func invalidateSlot(t *testing.T, dsn, slot string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for i := 0; i < 40; i++ {
		var status string
		if err := conn.QueryRow(ctx, `SELECT coalesce((SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1), 'missing')`, slot).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status == "lost" {
			return
		}
		if _, err := conn.Exec(ctx, `SELECT pg_logical_emit_message(false, 'filler', repeat('x', 1000)); SELECT pg_switch_wal(); CHECKPOINT`); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("slot %s is not lost after 40 WAL switches and checkpoints", slot)
}

func lostPipeline(t *testing.T, dir, dsn, extra, metrics string) string {
	t.Helper()
	return lostPipelineInto(t, dir, dsn, extra, fmt.Sprintf(`sink "postgres" "out" {
  from  = source.app
  dsn   = %q
  table = "tgt.items"
}
`, dsn))
}

// lostPipelineInto is lostPipeline with another sink block.
func lostPipelineInto(t *testing.T, dir, dsn, extra, sink string) string {
	t.Helper()
	src := fmt.Sprintf(`pipeline "lost" {
  state = %q
}

source "postgres" "app" {
  dsn       = %q
  tables    = ["public.items"]
  heartbeat = "1s"
%s}

%s`, filepath.Join(dir, "lost.db"), dsn, extra, sink)
	path := filepath.Join(dir, "lost.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func smallItems(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), `
		CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);
		INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 2000) g;
		CREATE SCHEMA tgt;
		CREATE TABLE tgt.items (id bigint PRIMARY KEY, name text NOT NULL);`); err != nil {
		t.Fatal(err)
	}
}

// TestSlotInvalidatedWhileStopped (issue 14, acceptance 1 and 4): status
// --json shows the slot's wal_status and safe_wal_size; a slot that
// max_slot_wal_keep_size invalidates while sluice is stopped makes `sluice
// run` exit non-zero with one message naming the source once, the slot,
// the cause, the lost range and the recovery; drop then run starts over.
//
// It runs once into PostgreSQL and once into MariaDB.
func TestSlotInvalidatedWhileStopped(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) { slotInvalidatedWhileStopped(t, kind) })
	}
}

func slotInvalidatedWhileStopped(t *testing.T, kind string) {
	cl := startLimitedCluster(t)
	dsn := cl.CreateDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	smallItems(t, conn)
	dir := t.TempDir()
	file := lostPipeline(t, dir, dsn, "", "")
	read := targetReader(t, "postgres", dsn, "tgt.items")
	if kind == "mysql" {
		srv := startMariaDB(t)
		target := srv.CreateDB(t)
		file = lostPipelineInto(t, dir, dsn, "", fmt.Sprintf(`sink "mysql" "out" {
  from        = source.app
  dsn         = %q
  auto_create = true
}
`, target))
		read = targetReader(t, "mysql", target, "items")
	}

	run := startRun(t, file)
	waitRows(t, read, dsn, conn, run)
	if _, err := conn.Exec(ctx, `INSERT INTO items VALUES (5000, 'streamed')`); err != nil {
		t.Fatal(err)
	}
	waitRows(t, read, dsn, conn, run)
	run.stop(t)

	var raw bytes.Buffer
	if code := (&cli{stdin: strings.NewReader(""), stdout: &raw, stderr: &raw}).status([]string{file, "--json"}); code != exitOK {
		t.Fatalf("status --json: exit %d\n%s", code, raw.String())
	}
	var doc struct {
		Sources []struct {
			WAL map[string]any `json:"wal"`
		} `json:"sources"`
	}
	if err := json.Unmarshal(raw.Bytes(), &doc); err != nil || len(doc.Sources) != 1 {
		t.Fatalf("status --json: %v\n%s", err, raw.String())
	}
	wal := doc.Sources[0].WAL
	if wal["wal_status"] != "reserved" {
		t.Errorf("status --json: wal.wal_status = %v, want reserved\n%s", wal["wal_status"], raw.String())
	}
	if safe, ok := wal["safe_wal_size"].(float64); !ok || safe <= 0 || safe > 48<<20 {
		t.Errorf("status --json: wal.safe_wal_size = %v, want bytes in (0, 48 MiB]\n%s", wal["safe_wal_size"], raw.String())
	}

	// Changes while stopped, then the slot is invalidated.
	if _, err := conn.Exec(ctx, `UPDATE items SET name = 'while stopped' WHERE id <= 10`); err != nil {
		t.Fatal(err)
	}
	invalidateSlot(t, dsn, "sluice_lost")
	if st := statusJSON(t, file); st.Sources[0].WAL == nil || st.Sources[0].WAL.WALStatus != "lost" || !strings.Contains(strings.Join(st.Problems, "\n"), "invalidated") {
		b, _ := json.Marshal(st)
		t.Errorf("status after invalidation: want wal_status lost and a problem:\n%s", b)
	}

	out, err := exec.Command(sluiceBin, "run", file).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("sluice run on an invalidated slot: %v, want a non-zero exit\n%s", err, out)
	}
	msg := string(out)
	t.Logf("sluice run on an invalidated slot:\n%s", msg)
	for _, want := range []string{
		"replication slot sluice_lost was invalidated",
		"wal_status = lost",
		"max_slot_wal_keep_size",
		"can no longer be read",
		"`sluice drop FILE` and then `sluice run FILE`",
		`on_slot_lost = \"resnapshot\"`,
	} {
		if !strings.Contains(msg, want) && !strings.Contains(msg, strings.ReplaceAll(want, `\"`, `"`)) {
			t.Errorf("sluice run output lacks %q:\n%s", want, msg)
		}
	}
	if n := strings.Count(msg, `source \"app\"`) + strings.Count(msg, `source "app"`); n != 1 {
		t.Errorf("the source is named %d times, want once:\n%s", n, msg)
	}

	// The recovery the message names.
	var dropOut bytes.Buffer
	if code := (&cli{stdin: strings.NewReader(""), stdout: &dropOut, stderr: &dropOut}).drop([]string{file, "--yes"}); code != exitOK {
		t.Fatalf("drop --yes: exit %d\n%s", code, dropOut.String())
	}
	run = startRun(t, file)
	waitRows(t, read, dsn, conn, run)
	run.stop(t)
}

// TestResnapshotWhenSlotLost (issue 14, acceptance 3): with on_slot_lost =
// "resnapshot", a slot invalidated while the sink is held behind a lock
// and a writer runs is recreated by the running pipeline, which copies the
// table again; after the writer stops the target equals the source row
// for row, the log names the slot and the lost range, and
// sluice_slot_recoveries_total counted one recovery.
func TestResnapshotWhenSlotLost(t *testing.T) {
	cl := startLimitedCluster(t)
	dsn := cl.CreateDB(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	smallItems(t, conn)
	dir := t.TempDir()
	file := lostPipeline(t, dir, dsn, "  on_slot_lost = \"resnapshot\"\n", "")
	appendLog := filepath.Join(dir, "changes.jsonl")
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\nsink \"file\" \"log\" {\n  from = source.app\n  path = %q\n}\n", appendLog)
	f.Close()
	read := targetReader(t, "postgres", dsn, "tgt.items")
	addr := freeAddr(t)

	run := startRun(t, file, "--http", addr)
	waitRows(t, read, dsn, conn, run)

	// A writer: inserts and updates (rows deleted while the slot is gone
	// would stay in the target until a re-sync).
	wctx, stopWriter := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	writeErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		wconn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			writeErr <- err
			return
		}
		defer wconn.Close(ctx)
		for i := 0; wctx.Err() == nil; i++ {
			_, err := wconn.Exec(ctx, `INSERT INTO items VALUES ($1::bigint, 'written ' || $1::bigint::text)`, 10000+i)
			if err == nil {
				_, err = wconn.Exec(ctx, `UPDATE items SET name = 'updated ' || $1::bigint::text WHERE id = $1::bigint % 2000 + 1`, 10000+i)
			}
			if err != nil {
				writeErr <- err
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()

	release := lockTarget(t, dsn, "tgt.items")
	time.Sleep(500 * time.Millisecond) // the sink now waits on the lock
	invalidateSlot(t, dsn, "sluice_lost")
	release()

	deadline := time.Now().Add(60 * time.Second)
	for {
		if v := scrape(t, addr)[`sluice_slot_recoveries_total{source="app"}`]; v == 1 {
			break
		} else if v > 1 {
			t.Fatalf("sluice_slot_recoveries_total = %v, want 1\n%s", v, run.out)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery counted after 60s\n%s", run.out)
		}
		select {
		case err := <-run.done:
			t.Fatalf("sluice run ended: %v\n%s", err, run.out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	time.Sleep(time.Second) // the writer goes on over the recovered slot
	stopWriter()
	wg.Wait()
	select {
	case err := <-writeErr:
		t.Fatal(err)
	default:
	}
	waitRows(t, read, dsn, conn, run)
	m := scrape(t, addr)
	if v := metric(t, m, `sluice_slot_recoveries_total{source="app"}`); v != 1 {
		t.Errorf("sluice_slot_recoveries_total = %v, want 1", v)
	}
	if v := metric(t, m, `sluice_source_slot_safe_wal_bytes{slot="sluice_lost",source="app"}`); v <= 0 || v > 48<<20 {
		t.Errorf("sluice_source_slot_safe_wal_bytes = %v, want bytes in (0, 48 MiB] on the recreated slot", v)
	}
	run.stop(t)
	checkAppendAfterRecovery(t, appendLog)
	logs := run.out.String()
	if !strings.Contains(logs, "replication slot lost") || !strings.Contains(logs, `"slot":"sluice_lost"`) || !strings.Contains(logs, `"lost_from":`) {
		t.Errorf("no warning naming the slot and the lost range:\n%s", logs)
	}
}

// checkAppendAfterRecovery reads an append (file) sink's output: every
// event once, positions strictly increasing, two snapshots (the initial
// one of 2000 rows, then the copy after the recovery, of every row there
// was), streamed changes before and after the copy.
func checkAppendAfterRecovery(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lastOff, lastIdx uint64
	snapshots := map[uint64]int{} // offset → snapshot rows
	var order []uint64
	streamedAfterCopy := 0
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Op       string `json:"op"`
			Position string `json:"position"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, line)
		}
		var off, idx uint64
		if _, err := fmt.Sscanf(e.Position, "%d.%d", &off, &idx); err != nil {
			t.Fatalf("line %d: position %q: %v", i+1, e.Position, err)
		}
		if i > 0 && (off < lastOff || off == lastOff && idx <= lastIdx) {
			t.Fatalf("line %d: position %s after %d.%d: an event repeated or out of order", i+1, e.Position, lastOff, lastIdx)
		}
		lastOff, lastIdx = off, idx
		switch {
		case e.Op == "snapshot":
			if snapshots[off] == 0 {
				order = append(order, off)
			}
			snapshots[off]++
		case len(order) == 2:
			streamedAfterCopy++
		}
	}
	if len(order) != 2 || snapshots[order[0]] != 2000 || snapshots[order[1]] < 2000 || streamedAfterCopy == 0 {
		t.Fatalf("append sink: snapshots %v (in order %v), %d changes after the copy; want the initial 2000 rows, then a copy of at least 2000, then streamed changes", snapshots, order, streamedAfterCopy)
	}
}

// TestValidateLiveWarnsAboutWALRetention: `validate --live` warns when
// max_slot_wal_keep_size is -1 (the WAL may fill the disk), and when it is
// small against what the slot already retains.
func TestValidateLiveWarnsAboutWALRetention(t *testing.T) {
	for _, c := range []struct {
		name    string
		limited bool
		want    string
	}{
		{"unlimited", false, "max_slot_wal_keep_size is -1 (unlimited)"},
		{"small", true, "max_slot_wal_keep_size is 16 MB, and replication slot sluice_lost already retains"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var cl *pgtest.Cluster
			if c.limited {
				cl = startLimitedCluster(t)
			} else {
				cl = startCluster(t)
			}
			dsn := cl.CreateDB(t)
			conn, err := pgx.Connect(context.Background(), dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			smallItems(t, conn)
			if c.limited {
				// A slot behind by a WAL segment or more.
				if _, err := conn.Exec(context.Background(), `SELECT pg_create_logical_replication_slot('sluice_lost', 'pgoutput')`); err != nil {
					t.Fatal(err)
				}
				if _, err := conn.Exec(context.Background(), `INSERT INTO items SELECT g, repeat('x', 500) FROM generate_series(100000, 120000) g`); err != nil {
					t.Fatal(err)
				}
			}
			file := lostPipeline(t, t.TempDir(), dsn, "", "")
			code, stdout, stderr := runCLI(t, "validate", "--live", file)
			if code != exitOK || !strings.Contains(stderr, "warning: "+c.want) && !strings.Contains(stderr, c.want) {
				t.Fatalf("validate --live: exit %d, want 0 and a warning %q\n%s%s", code, c.want, stdout, stderr)
			}
		})
	}
}
