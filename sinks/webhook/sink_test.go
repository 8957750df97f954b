package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

const testSecret = "s3cret-signing-key"

// request is what the test receiver saw of one POST.
type request struct {
	key, sig, contentType, auth string
	body                        []byte
	status                      int
}

// receiver is a webhook endpoint that records every request and answers
// with whatever answer returns.
type receiver struct {
	t      *testing.T
	mu     sync.Mutex
	reqs   []request
	answer func(n int, body []byte, w http.ResponseWriter, r *http.Request) int // returns the status written; 0 = connection dropped
	srv    *httptest.Server
}

func newReceiver(t *testing.T, answer func(n int, body []byte, w http.ResponseWriter, r *http.Request) int) *receiver {
	rc := &receiver{t: t, answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		rc.mu.Lock()
		n := len(rc.reqs)
		rc.reqs = append(rc.reqs, request{key: r.Header.Get(HeaderIdempotency), sig: r.Header.Get(HeaderSignature),
			contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"), body: body})
		rc.mu.Unlock()
		status := rc.answer(n, body, w, r)
		rc.mu.Lock()
		rc.reqs[n].status = status
		rc.mu.Unlock()
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.reqs...)
}

func ok(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) int {
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func sinkBlock(url string) *dsl.Sink {
	return &dsl.Sink{Type: "webhook", Name: "crm", Webhook: &dsl.WebhookSink{
		URL: url, Secret: testSecret, Batch: 7, Timeout: 2 * time.Second, RetryMax: 30, RetryBackoff: time.Millisecond,
		Headers: map[string]dsl.Secret{"Authorization": "Bearer tok-123"},
	}}
}

func build(t testing.TB, b *dsl.Sink) *Sink {
	t.Helper()
	s, err := newSink(engine.Build{Pipeline: engine.Pipeline{Name: "users"}, Logger: slog.New(slog.DiscardHandler)}, b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recordSleeps makes the sink wait no time and records the waits it asked for.
func recordSleeps(s *Sink) *[]time.Duration {
	var waits []time.Duration
	s.sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		return ctx.Err()
	}
	return &waits
}

func events(from, n int) []change.Event {
	out := make([]change.Event, 0, n)
	for i := from; i < from+n; i++ {
		row := change.RowOf(map[string]any{"id": int64(i), "email": fmt.Sprintf("u%d@example.com", i)})
		out = append(out, change.Event{Op: change.Insert, Schema: "public", Table: "users", Key: change.RowOf(map[string]any{"id": int64(i)}),
			After: row, Changed: []string{"email", "id"}, Position: change.Position{Source: "app", Offset: uint64(1000 + i)}, Boundary: true})
	}
	return out
}

// decodeBatch parses a request body into its events' ids.
func decodeBatch(t *testing.T, body []byte) []int64 {
	t.Helper()
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		t.Fatalf("body is not a JSON array: %v: %s", err, body)
	}
	var ids []int64
	for _, raw := range raws {
		e, err := format.DecodeNative(raw)
		if err != nil {
			t.Fatalf("event %s: %v", raw, err)
		}
		ids = append(ids, e.After.Get("id").(int64))
	}
	return ids
}

// TestChaosEveryEventArrives runs the sink against a receiver that drops
// connections, times out, and answers 429 (with Retry-After) and 500 at
// random, and checks that every event arrives in order, every body is
// signed, and every retry of a batch carries the batch's key and body.
func TestChaosEveryEventArrives(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var rngMu sync.Mutex
	rc := newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, r *http.Request) int {
		rngMu.Lock()
		mode := rng.IntN(10)
		rngMu.Unlock()
		switch mode {
		case 0: // drop the connection without an answer
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return 0
		case 1: // answer after the sink's timeout
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return 0
		case 2:
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(http.StatusTooManyRequests)
			return http.StatusTooManyRequests
		case 3:
			w.WriteHeader(http.StatusInternalServerError)
			return http.StatusInternalServerError
		case 4:
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	b := sinkBlock(rc.srv.URL + "/hooks/users")
	b.Webhook.Timeout = 40 * time.Millisecond
	s := build(t, b)
	waits := recordSleeps(s)
	ctx := context.Background()
	if _, err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	const total = 200
	all := events(0, total)
	for i := 0; i < total; i += 13 { // writes that do not line up with batches
		if err := s.Write(ctx, all[i:min(i+13, total)]); err != nil {
			t.Fatal(err)
		}
	}
	cp := change.Checkpoint{}
	cp.Advance(all[total-1].Position)
	saved, err := s.Flush(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}

	var got []int64
	bodyOfKey := map[string][]byte{}
	acked := map[string]bool{}
	statuses := map[int]int{}
	for _, r := range rc.requests() {
		statuses[r.status]++
		if !Verify([]byte(testSecret), r.body, r.sig) {
			t.Fatalf("signature %q does not verify for body %s", r.sig, r.body)
		}
		if r.contentType != "application/json" || r.auth != "Bearer tok-123" {
			t.Fatalf("headers: content-type %q, authorization %q", r.contentType, r.auth)
		}
		if prev, seen := bodyOfKey[r.key]; seen {
			if !bytes.Equal(prev, r.body) {
				t.Fatalf("idempotency key %s sent with two different bodies", r.key)
			}
		} else {
			bodyOfKey[r.key] = r.body
		}
		// A 2xx that reaches the sink after its timeout is retried and
		// acknowledged again, under the same key: the receiver takes each
		// key once, as the idempotency key tells it to.
		if r.status >= 200 && r.status < 300 && !acked[r.key] {
			acked[r.key] = true
			got = append(got, decodeBatch(t, r.body)...)
		}
	}
	if len(got) != total {
		t.Fatalf("receiver acknowledged %d events, want %d (statuses %v)", len(got), total, statuses)
	}
	for i, id := range got {
		if id != int64(i) {
			t.Fatalf("event %d has id %d: order lost", i, id)
		}
	}
	if want := (total + 6) / 7; len(bodyOfKey) != want {
		t.Fatalf("%d distinct idempotency keys, want one per batch: %d", len(bodyOfKey), want)
	}
	for _, code := range []int{0, 429, 500, 503} {
		if statuses[code] == 0 {
			t.Fatalf("the receiver never answered %d, the test does not exercise it: %v", code, statuses)
		}
	}
	var honoured bool
	for _, w := range *waits {
		honoured = honoured || w == 3*time.Second
	}
	if !honoured {
		t.Fatalf("no wait of Retry-After's 3s among %v", *waits)
	}
	reopened := build(t, b)
	back, err := reopened.Open(ctx, saved)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Covers(all[total-1].Position) || back.Covers(change.Position{Source: "app", Offset: 1000 + total}) {
		t.Fatalf("reopened checkpoint %v does not match the flushed one %v", back, cp)
	}
}

// refusing is a receiver that answers status (with body) to every batch
// holding the event with id refuse, and 200 to the others.
func refusing(t *testing.T, refuse int, status int, body string) *receiver {
	needle := []byte(fmt.Sprintf(`"id":%d}`, refuse))
	return newReceiver(t, func(_ int, b []byte, w http.ResponseWriter, _ *http.Request) int {
		if bytes.Contains(b, needle) {
			w.WriteHeader(status)
			io.WriteString(w, body)
			return status
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
}

// delivered returns the ids of the events in batches answered with 200, in order.
func (rc *receiver) delivered(t *testing.T) []int64 {
	var got []int64
	for _, r := range rc.requests() {
		if r.status == http.StatusOK {
			got = append(got, decodeBatch(t, r.body)...)
		}
	}
	return got
}

// opened builds and opens a sink with no saved checkpoint.
func opened(t *testing.T, b *dsl.Sink) *Sink {
	t.Helper()
	s := build(t, b)
	if _, err := s.Open(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefusedEventIsRejected checks that a 400 isolates the one refused
// event as a RejectError, delivers the others, and follows the Write
// contract for the events after it.
func TestRefusedEventIsRejected(t *testing.T) {
	rc := refusing(t, 10, http.StatusBadRequest, `{"error":"email domain not allowed"}`)
	s := opened(t, sinkBlock(rc.srv.URL))
	ctx := context.Background()
	all := events(0, 20)
	// Events 0..4 are queued by an earlier call; the batch of 7 (0..6)
	// fills in the next call, so the refused id 10 lands in batch 7..13.
	if err := s.Write(ctx, all[:5]); err != nil {
		t.Fatal(err)
	}
	err := s.Write(ctx, all[5:])
	var rej *engine.RejectError
	if !errors.As(err, &rej) {
		t.Fatalf("Write: got %v, want a *engine.RejectError", err)
	}
	if id := rej.Event.After.Get("id"); id != int64(10) {
		t.Fatalf("rejected event has id %v, want 10", id)
	}
	if !strings.Contains(err.Error(), "400") || !strings.Contains(err.Error(), "email domain not allowed") {
		t.Fatalf("reject error %q should carry the status and the receiver's reason", err)
	}
	// The caller dead-letters id 10 and passes the rest of its call again.
	if err := s.Write(ctx, all[11:]); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	got := rc.delivered(t)
	want := []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

// TestRefusedInFlush checks that a refusal in Flush leaves the events
// after the refused one queued for the next Flush.
func TestRefusedInFlush(t *testing.T) {
	rc := refusing(t, 2, http.StatusUnprocessableEntity, "")
	s := opened(t, sinkBlock(rc.srv.URL))
	ctx := context.Background()
	if err := s.Write(ctx, events(0, 5)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Flush(ctx, change.Checkpoint{})
	var rej *engine.RejectError
	if !errors.As(err, &rej) || rej.Event.After.Get("id") != int64(2) {
		t.Fatalf("Flush: got %v, want a RejectError for id 2", err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	got := rc.delivered(t)
	if fmt.Sprint(got) != "[0 1 3 4]" {
		t.Fatalf("delivered %v, want [0 1 3 4]", got)
	}
}

// TestGivesUpWithoutLeakingSecrets checks that exhausted retries surface
// as an error that names the endpoint but not its credentials.
func TestGivesUpWithoutLeakingSecrets(t *testing.T) {
	rc := newReceiver(t, func(_ int, _ []byte, w http.ResponseWriter, _ *http.Request) int {
		w.WriteHeader(http.StatusBadGateway)
		return http.StatusBadGateway
	})
	b := sinkBlock(strings.Replace(rc.srv.URL, "http://", "http://user:pa55word@", 1) + "/hook?token=qtok-999")
	b.Webhook.RetryMax = 3
	s := build(t, b)
	waits := recordSleeps(s)
	ctx := context.Background()
	if _, err := s.Open(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, events(0, 2)); err != nil {
		t.Fatal(err)
	}
	_, err := s.Flush(ctx, change.Checkpoint{})
	if err == nil {
		t.Fatal("Flush succeeded against a receiver that only answers 502")
	}
	for _, secret := range []string{"pa55word", "qtok-999", testSecret, "tok-123"} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error %q leaks %q", err, secret)
		}
	}
	if !strings.Contains(err.Error(), "gave up after 4 attempts") || !strings.Contains(err.Error(), "502") {
		t.Fatalf("error %q should say how often it tried and what the receiver answered", err)
	}
	if n := len(rc.requests()); n != 4 {
		t.Fatalf("%d requests, want 1 + retry max 3", n)
	}
	// Exponential backoff with jitter in [d/2, d): 1ms, 2ms, 4ms.
	for i, w := range *waits {
		d := time.Millisecond << i
		if w < d/2 || w > d {
			t.Fatalf("wait %d is %v, want within [%v, %v]", i, w, d/2, d)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	a, b := events(0, 3), events(0, 3)
	if IdempotencyKey("p.s", a) != IdempotencyKey("p.s", b) {
		t.Fatal("same positions, different keys")
	}
	for name, other := range map[string]string{
		"other sink":      IdempotencyKey("p.t", a),
		"other positions": IdempotencyKey("p.s", events(1, 3)),
		"fewer events":    IdempotencyKey("p.s", a[:2]),
	} {
		if other == IdempotencyKey("p.s", a) {
			t.Errorf("%s: same key", name)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0}, {"7", 7 * time.Second}, {"junk", 0}, {"-3", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"999999", maxWait},
	} {
		if got := retryAfter(tc.header, now); got != tc.want {
			t.Errorf("Retry-After %q: %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	rng := map[string]hcl.Range{"url": {Filename: "hooks.hcl", Start: hcl.Pos{Line: 4, Column: 13}}}
	for _, tc := range []struct{ name, url, format, want string }{
		{"relative", "/hooks", "", "hooks.hcl:4:13: webhook sink \"crm\": url must be an absolute http"},
		{"scheme", "ftp://x/y", "", "url must be an absolute http"},
		{"format", "http://x/y", "avro", `unknown format "avro"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := sinkBlock(tc.url)
			b.Webhook.Ranges = rng
			b.Webhook.Format = tc.format
			_, err := New(engine.Build{}, b)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !engine.IsPermanent(err) {
				t.Fatalf("got %v, want a permanent error containing %q", err, tc.want)
			}
		})
	}
	s := build(t, sinkBlock("http://x/"))
	if _, err := s.Open(context.Background(), []byte("{not json")); err == nil || !engine.IsPermanent(err) {
		t.Fatalf("corrupt saved checkpoint: got %v, want a permanent error", err)
	}
}

// BenchmarkDeliver measures events/s into a receiver that answers at once.
func BenchmarkDeliver(b *testing.B) {
	rc := newReceiver(&testing.T{}, ok)
	defer rc.srv.Close()
	blk := sinkBlock(rc.srv.URL)
	blk.Webhook.Batch = 100
	s := build(b, blk)
	ctx := context.Background()
	if _, err := s.Open(ctx, nil); err != nil {
		b.Fatal(err)
	}
	batch := events(0, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Write(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Flush(ctx, change.Checkpoint{}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

// TestMaxBytesCutsBatches: with max_bytes, a batch is sent before its
// body would grow past the limit, every body stays within it but for a
// single larger event, and every event arrives once, in order.
func TestMaxBytesCutsBatches(t *testing.T) {
	rc := newReceiver(t, ok)
	b := sinkBlock(rc.srv.URL)
	b.Webhook.Batch, b.Webhook.MaxBytes = 100, 700
	s := opened(t, b)
	ctx := context.Background()
	all := events(0, 30)
	big := events(30, 1)
	big[0].After = change.RowOf(map[string]any{"id": int64(30), "email": strings.Repeat("x", 2000)})
	if err := s.Write(ctx, append(all, big...)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Flush(ctx, change.Checkpoint{}); err != nil {
		t.Fatal(err)
	}
	reqs := rc.requests()
	var ids []int64
	for i, r := range reqs {
		got := decodeBatch(t, r.body)
		if len(r.body) > 700 && len(got) > 1 {
			t.Errorf("request %d: %d bytes for %d events, over max_bytes 700", i, len(r.body), len(got))
		}
		ids = append(ids, got...)
	}
	if len(reqs) < 4 {
		t.Errorf("%d requests for 31 events of about 100 bytes under max_bytes 700: the limit did not cut the batch of 100", len(reqs))
	}
	want := make([]int64, 31)
	for i := range want {
		want[i] = int64(i)
	}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("delivered %v, want 0..30 once each in order", ids)
	}
}
