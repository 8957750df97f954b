package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/txmeta"
)

var commit0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// pgTx is a PostgreSQL transaction as the source delivers it: rows of
// public.TABLE at the commit LSN, then the commit Mark.
func pgTx(xid, lsn uint64, at time.Time, tables ...string) []change.Event {
	tx := change.Tx{ID: xid, CommitTime: at}
	var out []change.Event
	for i, tb := range tables {
		out = append(out, change.Event{Op: change.Insert, Schema: "public", Table: tb, After: change.RowOf(map[string]any{"n": int64(i)}), Tx: tx,
			Position: change.Position{Source: "app", Offset: lsn, Index: uint32(i)}})
	}
	return append(out, change.Event{Op: change.Mark, Tx: tx, Boundary: true, Position: change.Position{Source: "app", Offset: lsn, Index: 1<<32 - 1}})
}

// TestResolvedRequestsAreSignedAndRetried: a resolved request found due
// at a Flush waits until the engine has saved that Flush's bytes (Saved),
// then goes at the next Flush after its batch, as a request of its own,
// signed, with the same Idempotency-Key on every attempt, retried through
// 503s with backoff like a batch; the saved bytes keep its T, so a
// reopened sink sends no lower one, nor the same again.
func TestResolvedRequestsAreSignedAndRetried(t *testing.T) {
	rc := newReceiver(t, func(n int, body []byte, w http.ResponseWriter, r *http.Request) int {
		if strings.HasPrefix(string(body), `{"resolved"`) && n < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		}
		return ok(n, body, w, r)
	})
	b := sinkBlock(rc.srv.URL)
	b.Webhook.Resolved = 10 * time.Second
	s := build(t, b)
	waits := recordSleeps(s)
	now := commit0.Add(time.Hour)
	s.now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	events := pgTx(7, 100, commit0, "users", "users")
	if err := s.Write(ctx, events); err != nil {
		t.Fatal(err)
	}
	cp := change.Checkpoint{{Source: "app"}: events[len(events)-1].Position}
	saved, err := s.Flush(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	if reqs := rc.requests(); len(reqs) != 1 || !strings.HasPrefix(string(reqs[0].body), "[") {
		t.Fatalf("%d requests, want the batch alone (the resolved request waits for the save): %+v", len(reqs), reqs)
	}
	// Flushed again before the engine saved the first Flush's bytes:
	// still held.
	hb := pgTx(8, 200, commit0.Add(5*time.Second))
	s.Write(ctx, hb)
	cp2 := cp.Clone()
	cp2.Advance(hb[0].Position)
	if _, err := s.Flush(ctx, cp2); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("%d requests before the save, want 1", n)
	}
	// Saved: the next Flush sends it, and nothing more (same interval).
	s.Saved(cp)
	saved3, err := s.Flush(ctx, cp2)
	if err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 4 {
		t.Fatalf("%d requests, want the batch and a resolved request that took 3 attempts: %+v", len(reqs), reqs)
	}
	want := `{"resolved":"2026-01-02T03:04:04Z","position":"100.4294967295"}`
	for i, r := range reqs[1:] {
		if string(r.body) != want {
			t.Errorf("attempt %d: body %s, want %s", i+1, r.body, want)
		}
		if !Verify([]byte(testSecret), r.body, r.sig) {
			t.Errorf("attempt %d: signature %q does not verify", i+1, r.sig)
		}
		if r.key != ResolvedKey("users.crm", commit0.Add(-txmeta.CommitSkew)) || r.key != reqs[1].key {
			t.Errorf("attempt %d: idempotency key %q", i+1, r.key)
		}
		if r.contentType != "application/json" || r.auth != "Bearer tok-123" {
			t.Errorf("attempt %d: headers %q %q", i+1, r.contentType, r.auth)
		}
	}
	if len(*waits) != 2 {
		t.Errorf("waits %v, want two backoffs", *waits)
	}

	// Reopened from the bytes of the Flush that sent it: it knows the T.
	s2 := build(t, b)
	recordSleeps(s2)
	s2.now = func() time.Time { return now.Add(time.Minute) }
	if _, err := s2.Open(ctx, saved3); err != nil {
		t.Fatal(err)
	}
	if !s2.resolver.Last().Equal(commit0.Add(-txmeta.CommitSkew)) {
		t.Errorf("reopened: last T %v", s2.resolver.Last())
	}
	// Reopened from the first Flush's bytes (a kill -9 before the later
	// ones were saved), where T was held: replaying from there sends it
	// not again, and the next T only after the bytes holding it are saved.
	if _, err := s2.Open(ctx, saved); err != nil {
		t.Fatal(err)
	}
	s2.Write(ctx, hb)
	for range 2 {
		if _, err := s2.Flush(ctx, cp2); err != nil {
			t.Fatal(err)
		}
		s2.Saved(cp2)
	}
	reqs = rc.requests()
	if got := reqs[len(reqs)-1].body; len(reqs) != 5 || string(got) != `{"resolved":"2026-01-02T03:04:09Z","position":"200.4294967295"}` {
		t.Fatalf("after reopening from the held T: %d requests, the last %s; want one more, the heartbeat's T", len(reqs), got)
	}
	// The bytes of a sink without resolved still open.
	bare, _ := cp2.MarshalJSON()
	if got, err := s2.Open(ctx, bare); err != nil || !got.Covers(hb[0].Position) {
		t.Errorf("Open(bare checkpoint) = %v, %v", got, err)
	}
}

// TestResolvedRefusedIsPermanent: a receiver that refuses resolved
// requests stops the pipeline with the reason, instead of retrying
// forever or dead-lettering nothing.
func TestResolvedRefusedIsPermanent(t *testing.T) {
	rc := newReceiver(t, func(n int, body []byte, w http.ResponseWriter, r *http.Request) int {
		if strings.HasPrefix(string(body), "{") {
			w.WriteHeader(http.StatusBadRequest)
			return http.StatusBadRequest
		}
		return ok(n, body, w, r)
	})
	b := sinkBlock(rc.srv.URL)
	b.Webhook.Resolved = time.Second
	s := build(t, b)
	recordSleeps(s)
	ctx := context.Background()
	s.Open(ctx, nil)
	events := pgTx(7, 100, commit0, "users")
	s.Write(ctx, events)
	cp := change.Checkpoint{{Source: "app"}: events[1].Position}
	if _, err := s.Flush(ctx, cp); err != nil {
		t.Fatal(err)
	}
	s.Saved(cp)
	_, err := s.Flush(ctx, cp)
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "resolved") {
		t.Fatalf("Flush = %v, want a permanent error about the resolved request", err)
	}
}

// TestTransactionElements: with transactions, BEGIN and END are elements
// of the batches' arrays around each transaction's events, which carry
// their order; a refused BEGIN is a permanent error, not a dead letter.
func TestTransactionElements(t *testing.T) {
	rc := newReceiver(t, ok)
	b := sinkBlock(rc.srv.URL)
	b.Webhook.Transactions = true
	b.Webhook.Batch = 100
	s := build(t, b)
	ctx := context.Background()
	s.Open(ctx, nil)
	events := append(pgTx(7, 100, commit0, "users", "orders"), pgTx(8, 200, commit0)...) // the second: a heartbeat
	s.Write(ctx, events)
	if _, err := s.Flush(ctx, change.Checkpoint{{Source: "app"}: events[len(events)-1].Position}); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	var elems []map[string]any
	if err := json.Unmarshal(reqs[0].body, &elems); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range elems {
		switch {
		case e["status"] != nil:
			kinds = append(kinds, e["status"].(string))
		default:
			o := e["transaction"].(map[string]any)
			kinds = append(kinds, e["table"].(string)+":"+o["id"].(string))
		}
	}
	if got := strings.Join(kinds, " "); got != "begin users:7:100 orders:7:100 end" {
		t.Errorf("elements %s", got)
	}
	if key := reqs[0].key; key == IdempotencyKey("users.crm", events[:2]) {
		t.Error("a batch with BEGIN and END has the key of its events alone")
	}

	refusing := newReceiver(t, func(n int, body []byte, w http.ResponseWriter, r *http.Request) int {
		if strings.Contains(string(body), `"status":"begin"`) {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return http.StatusUnprocessableEntity
		}
		return ok(n, body, w, r)
	})
	b.Webhook.URL = refusing.srv.URL
	s = build(t, b)
	s.Open(ctx, nil)
	s.Write(ctx, events)
	_, err := s.Flush(ctx, change.Checkpoint{{Source: "app"}: events[len(events)-1].Position})
	if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "BEGIN of transaction 7:100") {
		t.Fatalf("Flush = %v, want a permanent error naming the refused BEGIN", err)
	}
}
