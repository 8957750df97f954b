package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/sinks/txmeta"
)

// Header names the sink sets on every request.
const (
	HeaderSignature   = "X-Sluice-Signature"
	HeaderIdempotency = "Idempotency-Key"
)

const (
	// maxWait caps one wait between attempts, whatever backoff doubling
	// or a receiver's Retry-After asks for.
	maxWait = 5 * time.Minute
	// snippetLen is how much of a refusing response body goes into the
	// error, so the user sees the receiver's reason without unbounded reads.
	snippetLen = 512
)

// Sink is the webhook sink. Build it with New.
type Sink struct {
	// commitEvery is the block's batch as written (0: unset): the events
	// the engine hands over before it commits (BatchSize)
	commitEvery int
	name        string // "<pipeline>.<sink>": mixed into idempotency keys
	label       string // `webhook sink "NAME"` for messages
	url         string
	display     string // the URL without credentials or query, for messages
	secret      []byte
	headers     map[string]dsl.Secret
	batch       int
	// maxBytes bounds a request body (max_bytes; 0: no bound); pendingBytes
	// is pending's encoded size then, scratch the buffer that measures it.
	maxBytes     int
	pendingBytes int
	scratch      []byte
	timeout      time.Duration
	retries      int
	backoff      time.Duration
	format       format.Meta
	client       *http.Client
	log          *slog.Logger
	// txs numbers transactions (transactions = true) and resolver sends
	// resolved requests (resolved = "..."), each once the bytes recording
	// it are saved (Saved); nil when off.
	txs      *txmeta.Transactions
	resolver *txmeta.Held
	now      func() time.Time

	pending []item // written, not yet delivered; at most batch
	body    []byte // reused request body buffer
	opened  bool

	// sleep waits between attempts; tests replace it to record waits.
	sleep func(ctx context.Context, d time.Duration) error
}

var (
	_ engine.Sink         = (*Sink)(nil)
	_ engine.SaveNotifier = (*Sink)(nil)
)

// item is one element of a request's array: an event (with its place in
// its source transaction, with transactions on) or, when meta is set, a
// transaction's BEGIN or END.
type item struct {
	ev    change.Event
	order *format.TxOrder
	meta  *format.Transaction
}

// New builds the sink of a `sink "webhook"` block. It checks the URL and
// format; it does not contact the receiver.
func New(b engine.Build, s *dsl.Sink) (engine.Sink, error) {
	return newSink(b, s)
}

func newSink(b engine.Build, s *dsl.Sink) (*Sink, error) {
	c := s.Webhook
	if c == nil {
		return nil, engine.Permanent(fmt.Errorf("webhook sink %q: block has no webhook configuration", s.Name))
	}
	label := fmt.Sprintf("webhook sink %q", s.Name)
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, engine.Permanent(fmt.Errorf("%s%s: url must be an absolute http:// or https:// URL with a host, e.g. \"https://crm.internal/hooks/users\"", dsl.At(c.Ranges, "url"), label))
	}
	f, err := format.Lookup(c.Format)
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s%s: %w", dsl.At(c.Ranges, "format"), label, err))
	}
	logger := b.Logger
	if logger == nil {
		logger = slog.Default()
	}
	pipeline := b.Pipeline.Name
	sk := &Sink{
		name:        pipeline + "." + s.Name,
		label:       label,
		url:         c.URL,
		display:     u.Scheme + "://" + u.Host + u.Path,
		secret:      []byte(c.Secret.Reveal()),
		headers:     c.Headers,
		batch:       orDefault(c.Batch, 100),
		commitEvery: c.Batch,
		maxBytes:    c.MaxBytes,
		timeout:     orDefault(c.Timeout, 5*time.Second),
		retries:     max(c.RetryMax, 0),
		backoff:     orDefault(c.RetryBackoff, 500*time.Millisecond),
		format:      f.(format.Meta),
		log:         logger.With("sink", s.Name),
		sleep:       sleepCtx,
		now:         time.Now,
	}
	if c.Transactions {
		sk.txs = txmeta.NewTransactions()
	}
	if c.Resolved > 0 {
		sk.resolver = txmeta.NewHeld(c.Resolved)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	// Redirects are not followed: a 3xx would re-send the body somewhere
	// the user did not configure.
	sk.client = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return sk, nil
}

// saved is what Flush returns with resolved on (without it, the bare
// checkpoint): the checkpoint and the resolver's state (txmeta.Held), so
// that a restarted sink sends no T lower than one it sent or held.
type saved struct {
	Version    int               `json:"v"`
	Checkpoint change.Checkpoint `json:"checkpoint"`
	Resolved   json.RawMessage   `json:"resolved,omitempty"`
}

// Open decodes the checkpoint (and the resolver's state) from the bytes
// the last Flush returned (nil on the first run: nothing delivered yet).
// BatchSize is the block's batch: the engine commits after that many
// events (engine.BatchSizer); unset, the engine's default.
func (s *Sink) BatchSize() int { return s.commitEvery }

func (s *Sink) Open(_ context.Context, b []byte) (change.Checkpoint, error) {
	s.opened = true
	s.pending = s.pending[:0]
	if s.txs != nil {
		s.txs.Reset()
	}
	sv := saved{Checkpoint: change.Checkpoint{}}
	var err error
	switch t := bytes.TrimSpace(b); {
	case len(t) == 0:
	case t[0] == '{': // with resolved
		if err = json.Unmarshal(t, &sv); err == nil && sv.Version != 2 {
			err = fmt.Errorf("version %d, want 2", sv.Version)
		}
	default: // the bare checkpoint
		err = sv.Checkpoint.UnmarshalJSON(t)
	}
	if err == nil && s.resolver != nil {
		err = s.resolver.Restore(sv.Resolved)
	}
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s: the saved checkpoint in the state file is corrupt (%v): remove the sink's entry from the state file to deliver from the beginning", s.label, err))
	}
	if sv.Checkpoint == nil {
		sv.Checkpoint = change.Checkpoint{}
	}
	return sv.Checkpoint, nil
}

// Write queues events and POSTs every full batch. Marks are not sent.
// With transactions, a transaction's BEGIN and END are queued around its
// events as elements of their own (an END in place of the Mark that ends
// the transaction); they count towards batch.
//
// When the receiver refuses an event (a 4xx other than 408 and 429),
// Write returns a *engine.RejectError for it: the events queued before
// it have been delivered, the refused one is dropped, and the events of
// this call after it are not queued (pass them to Write again; if the
// refused event came from an earlier call, that is every event of this
// call). Events queued by earlier calls after the refused one stay queued.
// Any other error (retries exhausted, ctx done) leaves the queue as it
// was; the engine reopens the sink and replays from the checkpoint.
func (s *Sink) Write(ctx context.Context, events []change.Event) error {
	if !s.opened {
		return fmt.Errorf("%s: Write before Open", s.label)
	}
	earlier := len(s.pending) // queued by earlier calls
	for i := range events {
		e := &events[i]
		if s.resolver != nil {
			s.resolver.Note(e)
		}
		var step txmeta.Step
		if s.txs != nil {
			step = s.txs.Next(e)
		}
		for _, t := range []*format.Transaction{step.Prev, step.Begin} {
			if t != nil {
				if err := s.queue(ctx, item{meta: t}, &earlier); err != nil {
					return err
				}
			}
		}
		if e.Op != change.Mark {
			if err := s.queue(ctx, item{ev: *e, order: step.Order}, &earlier); err != nil {
				return err
			}
		}
		if step.End != nil {
			if err := s.queue(ctx, item{meta: step.End}, &earlier); err != nil {
				return err
			}
		}
	}
	return nil
}

// queue adds it to the queue, POSTing the queue first if it would grow
// past max_bytes and after if it is a full batch. *earlier is how many
// queued items earlier Write calls left (see drain).
func (s *Sink) queue(ctx context.Context, it item, earlier *int) error {
	size := 0
	if s.maxBytes > 0 {
		s.scratch = s.appendItem(s.scratch[:0], &it)
		size = len(s.scratch) + 1 // and a comma
		if len(s.pending) > 0 && s.pendingBytes+size > s.maxBytes {
			if err := s.drain(ctx, *earlier); err != nil {
				return err
			}
			*earlier = 0
		}
	}
	s.pending = append(s.pending, it)
	s.pendingBytes += size
	if len(s.pending) < s.batch {
		return nil
	}
	if err := s.drain(ctx, *earlier); err != nil {
		return err
	}
	*earlier = 0
	return nil
}

// Flush delivers every queued event and returns cp as bytes for the
// state file. A *engine.RejectError means one event was refused and
// dropped; the events after it are still queued, so call Flush again.
// With resolved, once every queued event is delivered, Flush POSTs the
// resolved request found due at an earlier Flush whose bytes the engine
// has since saved (body: the resolved object, signed and retried like
// the batches), then holds the next one if due; the bytes it returns
// record both (txmeta.Held).
func (s *Sink) Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error) {
	if !s.opened {
		return nil, fmt.Errorf("%s: Flush before Open", s.label)
	}
	if len(s.pending) > 0 {
		if err := s.drain(ctx, len(s.pending)); err != nil {
			return nil, err
		}
	}
	if s.resolver == nil {
		return cp.MarshalJSON()
	}
	send := func(res *format.Resolved) error { return s.deliverResolved(ctx, res) }
	if err := s.resolver.Flush(cp, s.now(), send); err != nil {
		return nil, err
	}
	return json.Marshal(saved{Version: 2, Checkpoint: cp, Resolved: s.resolver.State()})
}

// Saved is engine.SaveNotifier: the bytes of the Flush that brought the
// sink to cp are saved, so a resolved request they hold back may go. It
// is called from the engine's checkpointer, concurrently with Write and
// Flush.
func (s *Sink) Saved(cp change.Checkpoint) {
	if s.resolver != nil {
		s.resolver.Saved(cp)
	}
}

// Close releases idle connections. Queued events are dropped.
func (s *Sink) Close() error {
	s.pending, s.pendingBytes = nil, 0
	s.client.CloseIdleConnections()
	return nil
}

// drain delivers the queue as one batch. On a refusal it keeps only the
// events after the refused one that were queued by earlier calls (the
// first `earlier` entries), as Write documents.
func (s *Sink) drain(ctx context.Context, earlier int) error {
	r, err := s.deliverIsolating(ctx, s.pending)
	if r < 0 {
		if err == nil {
			s.pending, s.pendingBytes = s.pending[:0], 0
		}
		return err
	}
	rejected := s.pending[r].ev
	keep := 0
	if earlier > r+1 {
		keep = copy(s.pending, s.pending[r+1:earlier])
	}
	clear(s.pending[keep:])
	s.pending = s.pending[:keep]
	s.pendingBytes = 0
	if s.maxBytes > 0 {
		for i := range s.pending {
			s.scratch = s.appendItem(s.scratch[:0], &s.pending[i])
			s.pendingBytes += len(s.scratch) + 1
		}
	}
	return &engine.RejectError{Event: rejected, Err: err}
}

// deliverIsolating POSTs batch; if the receiver refuses it, it resends
// the events one per request, in order, until it finds the refused one
// and returns its index with the refusal. It returns -1 otherwise. A
// refused BEGIN or END is no event to dead-letter: that is a permanent
// error.
func (s *Sink) deliverIsolating(ctx context.Context, batch []item) (int, error) {
	err := s.deliver(ctx, batch)
	var ref *refusal
	if !errors.As(err, &ref) {
		return -1, err
	}
	if len(batch) == 1 {
		return s.refused(&batch[0], 0, err)
	}
	s.log.Warn("receiver refused a batch; resending its events one by one to find the refused one", "events", len(batch), "status", ref.status)
	for i := range batch {
		err := s.deliver(ctx, batch[i:i+1])
		if errors.As(err, &ref) {
			return s.refused(&batch[i], i, err)
		}
		if err != nil {
			// Events before i are delivered; resending them later is
			// harmless (same idempotency keys as single-event batches).
			return -1, err
		}
	}
	// Every event was accepted alone: the receiver refused the batch as a
	// whole (e.g. too large). Nothing to dead-letter.
	return -1, nil
}

// refused is deliverIsolating's answer for the item at i that the
// receiver refused alone with err.
func (s *Sink) refused(it *item, i int, err error) (int, error) {
	if it.meta == nil {
		return i, err
	}
	status := "BEGIN"
	if it.meta.End {
		status = "END"
	}
	return -1, engine.Permanent(fmt.Errorf("%s: the receiver refused the %s of transaction %s (%w): with transactions = true it must accept them, or set transactions = false", s.label, status, it.meta.ID, err))
}

// refusal is a 4xx answer that retrying will not change.
type refusal struct {
	status int
	url    string
	body   string
}

func (r *refusal) Error() string {
	msg := fmt.Sprintf("POST %s answered %d %s", r.url, r.status, http.StatusText(r.status))
	if r.body != "" {
		msg += ": " + r.body
	}
	return msg + " (the receiver refused the event; it follows the pipeline's on_error policy)"
}

// deliver POSTs batch until a 2xx, retrying transient failures. It
// returns a *refusal for a 4xx that is not worth retrying.
func (s *Sink) deliver(ctx context.Context, batch []item) error {
	s.body = s.encode(s.body[:0], batch)
	return s.send(ctx, s.keyOf(batch))
}

// deliverResolved POSTs a resolved request: its body is the resolved
// object, signed and retried as batches are. The receiver refusing it is
// a permanent error: it is no event to dead-letter.
func (s *Sink) deliverResolved(ctx context.Context, res *format.Resolved) error {
	s.body = s.format.AppendResolved(s.body[:0], res)
	err := s.send(ctx, ResolvedKey(s.name, res.Time))
	var ref *refusal
	if errors.As(err, &ref) {
		return engine.Permanent(fmt.Errorf("%s: the receiver refused a resolved request (%w): with resolved set it must accept them, or remove resolved", s.label, err))
	}
	return err
}

// send POSTs s.body with idempotency key key until a 2xx, retrying
// transient failures. It returns a *refusal for a 4xx that is not worth
// retrying.
func (s *Sink) send(ctx context.Context, key string) error {
	var sig string
	if len(s.secret) > 0 {
		sig = Sign(s.secret, s.body)
	}
	for attempt := 0; ; attempt++ {
		wait, err := s.post(ctx, key, sig)
		if err == nil {
			return nil
		}
		var ref *refusal
		if errors.As(err, &ref) || ctx.Err() != nil {
			return err
		}
		if attempt >= s.retries {
			return fmt.Errorf("%s: gave up after %d attempts, the last: %w", s.label, attempt+1, err)
		}
		if wait == 0 {
			wait = s.backoffFor(attempt)
		}
		s.log.Warn("webhook delivery failed; retrying", "attempt", attempt+1, "wait", wait, "err", err)
		if err := s.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// post makes one attempt. It returns the receiver's Retry-After (0 if
// none) with a retriable error, a *refusal, or nil for a 2xx.
func (s *Sink) post(ctx context.Context, key, sig string) (time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, s.url, bytes.NewReader(s.body))
	if err != nil {
		return 0, engine.Permanent(fmt.Errorf("%s: cannot build a request for %s: %v", s.label, s.display, err))
	}
	for k, v := range s.headers {
		req.Header.Set(k, v.Reveal())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice")
	req.Header.Set(HeaderIdempotency, key)
	if sig != "" {
		req.Header.Set(HeaderSignature, sig)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may hold a token
		}
		if actx.Err() != nil && ctx.Err() == nil {
			return 0, fmt.Errorf("POST %s: no answer within timeout %s", s.display, s.timeout)
		}
		return 0, fmt.Errorf("POST %s: %v", s.display, err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, snippetLen))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return 0, nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return retryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("POST %s answered %d %s", s.display, code, http.StatusText(code))
	case code >= 400:
		return 0, &refusal{status: code, url: s.display, body: strings.TrimSpace(string(snippet))}
	default:
		return 0, fmt.Errorf("POST %s answered %d %s, not 2xx (redirects are not followed: configure the final URL)", s.display, code, http.StatusText(code))
	}
}

// encode writes batch as a JSON array in the sink's format.
func (s *Sink) encode(dst []byte, batch []item) []byte {
	dst = append(dst, '[')
	for i := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = s.appendItem(dst, &batch[i])
	}
	return append(dst, ']')
}

// appendItem encodes one element of a request's array.
func (s *Sink) appendItem(dst []byte, it *item) []byte {
	if it.meta != nil {
		return s.format.AppendTransaction(dst, it.meta)
	}
	return s.format.AppendInTx(dst, &it.ev, it.order)
}

// backoffFor is the wait before retry attempt+1: backoff doubled per
// attempt, capped, with jitter in [d/2, d) so that many sluice processes
// failing together do not retry in lockstep.
func (s *Sink) backoffFor(attempt int) time.Duration {
	d := s.backoff
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// IdempotencyKey is the Idempotency-Key of a batch: a hash of the sink's
// qualified name and the source positions of its events, so every retry
// of the batch, and a replay of the same events after a restart in the
// same batching, carries the same key.
func IdempotencyKey(sink string, batch []change.Event) string {
	h := sha256.New()
	h.Write([]byte(sink))
	var buf []byte
	for i := range batch {
		buf = appendKeyPosition(buf[:0], batch[i].Position)
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// keyOf is IdempotencyKey of a batch that may hold transaction BEGIN and
// END elements (each adds its kind and transaction id); without them it
// is IdempotencyKey of the batch's events.
func (s *Sink) keyOf(batch []item) string {
	h := sha256.New()
	h.Write([]byte(s.name))
	var buf []byte
	for i := range batch {
		if m := batch[i].meta; m != nil {
			buf = append(buf[:0], 1)
			if m.End {
				buf = append(buf, "end"...)
			} else {
				buf = append(buf, "begin"...)
			}
			buf = append(buf, 0)
			buf = append(buf, m.ID...)
		} else {
			buf = appendKeyPosition(buf[:0], batch[i].ev.Position)
		}
		h.Write(buf)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// appendKeyPosition is what an event adds to an idempotency key.
func appendKeyPosition(buf []byte, p change.Position) []byte {
	buf = append(buf, 0)
	buf = append(buf, p.Source...)
	buf = append(buf, 0)
	buf = append(buf, p.Partition...)
	buf = append(buf, 0)
	buf = strconv.AppendUint(buf, p.Offset, 10)
	buf = append(buf, '.')
	return strconv.AppendUint(buf, uint64(p.Index), 10)
}

// ResolvedKey is the Idempotency-Key of a resolved request: a hash of the
// sink's qualified name and T, the same on every retry.
func ResolvedKey(sink string, t time.Time) string {
	h := sha256.New()
	h.Write([]byte(sink))
	h.Write([]byte("\x00resolved\x00"))
	h.Write([]byte(t.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Sign returns the X-Sluice-Signature value of body: "sha256=" and the
// hex HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is body's X-Sluice-Signature under
// secret, in constant time. Receivers written in Go can use it.
func Verify(secret, body []byte, signature string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(signature))
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxWait)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}
