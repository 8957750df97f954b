package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// resolvedReceiver is a webhook receiver that checks, as requests arrive,
// that no resolved T is lower than one before it (across every sluice
// process that sent to it) and that no change it has not had before was
// committed at or before the last T.
type resolvedReceiver struct {
	t *testing.T
	// beforeAnswer, when set, is taken and called by the next resolved
	// request once recorded, before it is answered.
	beforeAnswer atomic.Pointer[func()]

	mu       sync.Mutex
	last     time.Time // the highest T so far
	resolved []time.Time
	seen     map[string]bool // positions of the changes received
	changes  int
	bad      int
}

func newResolvedReceiver(t *testing.T) (*resolvedReceiver, *httptest.Server) {
	rc := &resolvedReceiver{t: t, seen: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(srv.Close)
	return rc, srv
}

func (rc *resolvedReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if strings.HasPrefix(string(body), "{") {
		var m struct {
			Resolved time.Time `json:"resolved"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			rc.fail("resolved request %s: %v", body, err)
		}
		rc.mu.Lock()
		if m.Resolved.Before(rc.last) {
			rc.failLocked("resolved %v after resolved %v: T went backwards", m.Resolved, rc.last)
		} else {
			rc.last = m.Resolved
		}
		rc.resolved = append(rc.resolved, m.Resolved)
		rc.mu.Unlock()
		if f := rc.beforeAnswer.Swap(nil); f != nil {
			(*f)()
		}
	} else {
		var batch []struct {
			Op       string `json:"op"`
			Status   string `json:"status"`
			Position string `json:"position"`
			Tx       struct {
				CommitTime time.Time `json:"commit_time"`
			} `json:"tx"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			rc.fail("batch %s: %v", body, err)
		}
		rc.mu.Lock()
		for _, e := range batch {
			if e.Op == "" || rc.seen[e.Position] {
				continue // a repeat after a crash may come after a T
			}
			rc.seen[e.Position] = true
			rc.changes++
			if !e.Tx.CommitTime.After(rc.last) {
				rc.failLocked("a change at %s committed at %v first came after resolved %v", e.Position, e.Tx.CommitTime, rc.last)
			}
		}
		rc.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *resolvedReceiver) fail(format string, args ...any) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.failLocked(format, args...)
}

func (rc *resolvedReceiver) failLocked(format string, args ...any) {
	if rc.bad++; rc.bad <= 10 {
		rc.t.Errorf(format, args...)
	}
}

func (rc *resolvedReceiver) counts() (resolved, changes int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.resolved), rc.changes
}

// TestWebhookResolvedUnderKill is PostgreSQL (two sources) → webhook with
// resolved = "1s" and heartbeat "1s" while a writer commits transactions
// into both, and `sluice
// run` is SIGKILLed several times: at random moments, and while the
// receiver holds a resolved request it has recorded, before it answers
// (so the engine cannot have saved the Flush that sent it). Every T the
// receiver gets is at or above every earlier one, across the restarts,
// and every row arrives. Then, idle for 10s, resolved requests with
// increasing T keep coming, at least 5. (Before the webhook sink held a
// T back until its bytes were saved, this failed in every run.)
func TestWebhookResolvedUnderKill(t *testing.T) {
	const kills = 6
	cl := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Two sources: T is the lowest over both, and a replay after a crash
	// interleaves them differently, so a restarted sink that went on from
	// older saved bytes would find a lower T than one it sent.
	var dsns []string
	var conns []*pgx.Conn
	for range 2 {
		dsn := cl.CreateDB(t)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, note text)"); err != nil {
			t.Fatal(err)
		}
		dsns, conns = append(dsns, dsn), append(conns, conn)
	}
	rc, srv := newResolvedReceiver(t)
	dir := t.TempDir()
	pipeline := writeFile(t, dir, "rw.hcl", fmt.Sprintf(`pipeline "rw" {
  state = %q
}

source "postgres" "a" {
  dsn       = %q
  slot      = "rw_a"
  tables    = ["public.items"]
  heartbeat = "1s"
}

source "postgres" "b" {
  dsn       = %q
  slot      = "rw_b"
  tables    = ["public.items"]
  heartbeat = "1s"
}

sink "webhook" "hook" {
  from     = [source.a, source.b]
  url      = %q
  batch    = 20
  resolved = "1s"
}
`, filepath.Join(dir, "rw.db"), dsns[0], dsns[1], srv.URL))

	run := startRun(t, pipeline)
	// waitResolved waits for n more resolved requests than now.
	waitResolved := func(n int) {
		t.Helper()
		before, _ := rc.counts()
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, _ := rc.counts()
			if got >= before+n {
				return
			}
			select {
			case err := <-run.done:
				t.Fatalf("sluice run ended: %v\n%s", err, run.out)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no resolved request in 30s\n%s", run.out)
			}
		}
	}
	waitResolved(1)

	var stop atomic.Bool
	written := make(chan error, 1)
	var rows atomic.Int64
	go func() {
		id := 0
		for !stop.Load() {
			b := &pgx.Batch{}
			conn := conns[rand.IntN(2)]
			for k := 1 + rand.IntN(5); k > 0; k-- {
				b.Queue("INSERT INTO items VALUES ($1, $2)", id, fmt.Sprintf("row %d", id))
				id++
			}
			tx, err := conn.Begin(ctx)
			if err == nil {
				err = tx.SendBatch(ctx, b).Close()
			}
			if err == nil {
				err = tx.Commit(ctx)
			}
			if err != nil {
				written <- err
				return
			}
			rows.Store(int64(id))
			time.Sleep(time.Duration(5+rand.IntN(20)) * time.Millisecond)
		}
		written <- nil
	}()

	for k := 1; k <= kills; k++ {
		waitResolved(1 + rand.IntN(2))
		how := "at a random moment"
		if k%2 == 0 {
			// While the receiver holds a resolved request it recorded.
			killed := make(chan struct{})
			kill := func() { run.cmd.Process.Kill(); close(killed) }
			rc.beforeAnswer.Store(&kill)
			select {
			case <-killed:
			case <-time.After(30 * time.Second):
				t.Fatalf("no resolved request in 30s\n%s", run.out)
			}
			how = "before the receiver answered a resolved request"
		} else {
			time.Sleep(time.Duration(rand.IntN(1500)) * time.Millisecond)
			run.cmd.Process.Kill()
		}
		<-run.done
		n, _ := rc.counts()
		t.Logf("kill %d %s: %d resolved requests, %d rows written", k, how, n, rows.Load())
		run = startRun(t, pipeline)
	}
	stop.Store(true)
	if err := <-written; err != nil {
		t.Fatalf("writer: %v", err)
	}
	total := int(rows.Load())
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, changes := rc.counts(); changes == total {
			break
		}
		if time.Now().After(deadline) {
			_, changes := rc.counts()
			t.Fatalf("the receiver has %d of the %d rows after 60s\n%s", changes, total, run.out)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Idle: a resolved request per heartbeat, one flush late.
	before, _ := rc.counts()
	time.Sleep(10 * time.Second)
	rc.mu.Lock()
	idle := append([]time.Time(nil), rc.resolved[before:]...)
	rc.mu.Unlock()
	if len(idle) < 5 {
		t.Errorf("%d resolved requests in 10 idle seconds, want at least 5", len(idle))
	}
	for i := 1; i < len(idle); i++ {
		if !idle[i].After(idle[i-1]) {
			t.Errorf("idle: resolved %v after %v", idle[i], idle[i-1])
		}
	}
	run.stop(t)
	n, changes := rc.counts()
	t.Logf("%d rows, %d resolved requests in all, %d while idle", changes, n, len(idle))
}
