package nats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/internal/tlsfiles"
)

// Bounds of the messages published and not yet acknowledged: Write waits
// for the oldest acknowledgement beyond them, so they bound the sink's
// memory.
const (
	maxInflight      = 4096
	maxInflightBytes = 64 << 20
)

// ackTimeout is how long the sink waits for the acknowledgement of one
// message before it gives up on the connection.
const ackTimeout = 30 * time.Second

// Sink is the NATS JetStream sink. Build it with New (or newSink); the
// zero value is not usable.
type Sink struct {
	label  string // `nats sink "NAME"` for messages
	owner  string // "<pipeline>/<sink>": HeaderSink
	cfg    Config // with defaults
	format format.Format
	urls   string // the server URLs without secrets, for messages
	opts   []natsgo.Option
	log    *slog.Logger

	nc     *natsgo.Conn
	js     jetstream.JetStream
	closed chan struct{}       // closed when nc is closed for good
	denied chan error          // the connection's permission violations
	maxPay int64               // the server's max_payload
	subj   map[[2]string]*subj // rendered subjects by schema and table

	// last is the stream's last sequence as far as the sink knows (from
	// Open, then from acknowledgements); next is the
	// Nats-Expected-Last-Sequence of the next message published, and
	// prevID its Nats-Expected-Last-Msg-Id: the id of the message
	// published before it ("" for the first after Open or a resync).
	last, next uint64
	prevID     string
	cp         *running   // the checkpoint of the last Flush advanced by every event written since
	held       []*pending // written, to publish at the next Flush
	inflight   []*pending
	bytes      int   // the size of inflight's messages
	broken     error // set by a failed publish: the sink must be opened again
}

// pending is a message published and not yet acknowledged.
type pending struct {
	fut    jetstream.PubAckFuture
	msg    *natsgo.Msg
	event  change.Event // for RejectError
	expect uint64       // its Nats-Expected-Last-Sequence
	size   int
}

type subj struct {
	name string
	err  error
}

var (
	_ engine.Sink      = (*Sink)(nil)
	_ engine.Forgetter = (*Sink)(nil)
)

// newSink checks cfg and builds the sink named name of the pipeline
// named pipeline. It does not connect (Open does).
func newSink(cfg Config, pipeline, name string, logger *slog.Logger) (*Sink, error) {
	label := fmt.Sprintf("nats sink %q", name)
	cfg = cfg.withDefaults(pipeline)
	f, err := cfg.check()
	if err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s: %w", label, err))
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Sink{
		label:  label,
		owner:  pipeline + "/" + name,
		cfg:    cfg,
		format: f,
		urls:   redactURLs(cfg.URL),
		log:    logger.With("sink", name),
	}
	s.opts = []natsgo.Option{
		natsgo.Name("sluice " + s.owner),
		natsgo.MaxReconnects(-1),
		natsgo.ReconnectWait(time.Second),
	}
	switch {
	case cfg.User != "":
		s.opts = append(s.opts, natsgo.UserInfo(cfg.User, cfg.Password.Reveal()))
	case cfg.Token != "":
		s.opts = append(s.opts, natsgo.Token(cfg.Token.Reveal()))
	case cfg.CredentialsFile != "":
		s.opts = append(s.opts, natsgo.UserCredentials(cfg.CredentialsFile))
	}
	if cfg.TLS != nil {
		tc, err := tlsfiles.Config(cfg.TLS)
		if err != nil {
			return nil, engine.Permanent(fmt.Errorf("%s: %w", label, err))
		}
		s.opts = append(s.opts, natsgo.Secure(tc))
	}
	return s, nil
}

// Open connects, makes sure the stream exists (creating it when it is
// missing and create_stream is on) and returns the checkpoint to resume
// from: per source stream, the later of the one in the Sluice-Checkpoint
// header of the stream's last message and the one decoded from saved
// (what the last Flush returned).
func (s *Sink) Open(ctx context.Context, saved []byte) (change.Checkpoint, error) {
	_ = s.Close() // opened again after an error: start over
	var fromSaved change.Checkpoint
	if saved != nil {
		if err := fromSaved.UnmarshalJSON(saved); err != nil {
			return nil, engine.Permanent(fmt.Errorf("%s: the saved checkpoint in the state file is corrupt (%v): remove the sink's entry from the state file to start over", s.label, err))
		}
	}
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	stream, err := s.stream(ctx)
	if err != nil {
		s.Close()
		return nil, err
	}
	fromStream, info, err := s.recover(ctx, stream)
	if err != nil {
		s.Close()
		return nil, err
	}
	cp := later(fromStream, fromSaved)
	s.last, s.next, s.prevID = info.State.LastSeq, info.State.LastSeq, ""
	s.cp = newRunning(cp)
	s.log.Info("nats sink opened", "stream", s.cfg.Stream, "last_seq", info.State.LastSeq, "checkpoint", s.cp.String())
	return cp, nil
}

// connect opens the connection and the JetStream context.
func (s *Sink) connect(ctx context.Context) error {
	closed, denied := make(chan struct{}), make(chan error, 1)
	opts := append(s.opts[:len(s.opts):len(s.opts)],
		natsgo.ClosedHandler(func(*natsgo.Conn) { close(closed) }),
		natsgo.ErrorHandler(func(_ *natsgo.Conn, _ *natsgo.Subscription, err error) {
			if errors.Is(err, natsgo.ErrPermissionViolation) {
				select {
				case denied <- err:
				default:
				}
			}
			s.log.Warn("nats sink: asynchronous error", "err", err)
		}),
	)
	type result struct {
		nc  *natsgo.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := natsgo.Connect(s.cfg.URL, opts...)
		done <- result{nc, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		go func() {
			if r := <-done; r.nc != nil {
				r.nc.Close()
			}
		}()
		return ctx.Err()
	}
	if r.err != nil {
		return s.connectError(r.err)
	}
	js, err := jetstream.New(r.nc,
		jetstream.WithPublishAsyncMaxPending(maxInflight+1),
		jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		r.nc.Close()
		return engine.Permanent(fmt.Errorf("%s: %v", s.label, err))
	}
	s.nc, s.js, s.closed, s.denied = r.nc, js, closed, denied
	s.maxPay = r.nc.MaxPayload()
	s.subj = map[[2]string]*subj{}
	s.inflight, s.bytes, s.broken = nil, 0, nil
	return nil
}

// connectError classifies a failed connect: bad credentials and
// certificates are permanent, the rest (server down) retried.
func (s *Sink) connectError(err error) error {
	wrapped := fmt.Errorf("%s: connect to %s: %w", s.label, s.urls, err)
	switch {
	case errors.Is(err, natsgo.ErrAuthorization), errors.Is(err, natsgo.ErrAuthExpired), errors.Is(err, natsgo.ErrAuthRevoked),
		errors.Is(err, natsgo.ErrAccountAuthExpired):
		return engine.Permanent(fmt.Errorf("%w (check user and password, token or credentials_file)", wrapped))
	case tlsfiles.Untrusted(err), errors.Is(err, natsgo.ErrSecureConnRequired), errors.Is(err, natsgo.ErrSecureConnWanted):
		return engine.Permanent(fmt.Errorf("%w (the server's certificate is not trusted, or TLS is required on one side only: check the tls settings and the URL's scheme)", wrapped))
	case errors.Is(err, natsgo.ErrNoServers):
		return fmt.Errorf("%w (is a NATS server running there, and reachable?)", wrapped)
	case strings.Contains(err.Error(), "no such file"), strings.Contains(err.Error(), "nkey"), strings.Contains(err.Error(), "jwt"):
		return engine.Permanent(fmt.Errorf("%w (check credentials_file)", wrapped))
	}
	return wrapped
}

// stream returns the sink's stream, creating it if it is missing.
func (s *Sink) stream(ctx context.Context) (jetstream.Stream, error) {
	st, err := s.js.Stream(ctx, s.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if !s.cfg.CreateStream {
			return nil, engine.Permanent(fmt.Errorf("%s: stream %q does not exist: create it with subjects that include %q, or set create_stream = true", s.label, s.cfg.Stream, Wildcards(s.cfg.Subject)))
		}
		st, err = s.js.CreateStream(ctx, s.cfg.streamConfig())
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			st, err = s.js.Stream(ctx, s.cfg.Stream) // created meanwhile
		} else if err == nil {
			s.log.Info("nats sink created its stream", "stream", s.cfg.Stream, "subjects", s.cfg.Subjects,
				"retention", s.cfg.Retention, "max_age", s.cfg.MaxAge, "replicas", s.cfg.Replicas, "duplicate_window", s.cfg.DuplicateWindow)
		} else {
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeSubjectsOverlap {
				return nil, engine.Permanent(fmt.Errorf("%s: create stream %q with subjects %q: %w: another stream stores some of them; set stream to that stream's name, or subjects no other stream has", s.label, s.cfg.Stream, s.cfg.Subjects, err))
			}
			return nil, s.apiError(fmt.Sprintf("create stream %q with subjects %q", s.cfg.Stream, s.cfg.Subjects), err)
		}
	}
	if err != nil {
		return nil, s.apiError(fmt.Sprintf("look up stream %q", s.cfg.Stream), err)
	}
	subjects := st.CachedInfo().Config.Subjects
	if !covered(subjects, Wildcards(s.cfg.Subject)) {
		return nil, engine.Permanent(fmt.Errorf("%s: stream %q stores subjects %q, which do not include every subject %q renders: add %q to the stream's subjects, or change subject",
			s.label, s.cfg.Stream, subjects, s.cfg.Subject, Wildcards(s.cfg.Subject)))
	}
	return st, nil
}

// recover reads the checkpoint in the last message of the stream (empty
// when the stream holds no message) and the stream's state.
func (s *Sink) recover(ctx context.Context, st jetstream.Stream) (change.Checkpoint, *jetstream.StreamInfo, error) {
	info, err := st.Info(ctx)
	if err != nil {
		return nil, nil, s.apiError(fmt.Sprintf("read the state of stream %q", s.cfg.Stream), err)
	}
	cp := change.Checkpoint{}
	if info.State.Msgs == 0 {
		if info.State.LastSeq > 0 {
			s.log.Warn("nats sink: the stream holds no message to recover the checkpoint from (retention removed them): resuming from the state file's checkpoint, and re-sent messages are dropped only within the duplicate window",
				"stream", s.cfg.Stream, "last_seq", info.State.LastSeq)
		}
		return cp, info, nil
	}
	m, err := st.GetLastMsgForSubject(ctx, ">")
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return cp, info, nil // removed meanwhile
	}
	if err != nil {
		return nil, nil, s.apiError(fmt.Sprintf("read the last message of stream %q", s.cfg.Stream), err)
	}
	owner, text := m.Header.Get(HeaderSink), m.Header.Get(HeaderCheckpoint)
	if owner != s.owner || text == "" {
		who := "has no " + HeaderSink + " header"
		if owner != "" {
			who = fmt.Sprintf("was written by sluice sink %q", owner)
		}
		return nil, nil, engine.Permanent(fmt.Errorf("%s: the last message of stream %q (sequence %d, subject %q) %s: the sink recovers its checkpoint from that message, so the stream must hold only this sink's messages; give the sink a stream of its own (stream = \"...\" with subjects no other stream has)",
			s.label, s.cfg.Stream, m.Sequence, m.Subject, who))
	}
	if err := cp.UnmarshalJSON([]byte(text)); err != nil {
		return nil, nil, engine.Permanent(fmt.Errorf("%s: the %s header of message %d of stream %q is corrupt (%v)", s.label, HeaderCheckpoint, m.Sequence, s.cfg.Stream, err))
	}
	return cp, info, nil
}

// Write publishes a message per event (Marks only advance the
// checkpoint the next message carries). It returns once the messages are
// handed to the connection, waiting for acknowledgements only while more
// than maxInflight messages (or maxInflightBytes) are unacknowledged. A
// failed publish is reported by this or a later Write, or by Flush.
func (s *Sink) Write(ctx context.Context, events []change.Event) error {
	if s.nc == nil {
		return fmt.Errorf("%s: Write before Open", s.label)
	}
	if s.broken != nil {
		return s.broken
	}
	for i := range events {
		e := &events[i]
		s.cp.advance(e.Position)
		if e.Op == change.Mark {
			continue
		}
		if err := s.publish(ctx, e); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// publish queues the message of e; Flush sends what is queued, so that
// consumers see what a Flush commits (whole source transactions) and
// nothing of a batch the engine abandons (Close without Flush).
func (s *Sink) publish(ctx context.Context, e *change.Event) error {
	subject, err := s.subject(e)
	if err != nil {
		return err
	}
	m := &natsgo.Msg{Subject: subject, Data: s.format.Append(nil, e), Header: natsgo.Header{
		jetstream.MsgIDHeader:          {MsgID(e.Position)},
		HeaderCheckpoint:               {s.cp.String()},
		HeaderSink:                     {s.owner},
		jetstream.ExpectedStreamHeader: {s.cfg.Stream},
	}}
	// With the expected-last headers send adds (the previous id is about
	// as long as this one).
	size := len(m.Data) + headerSize(m.Header) + len("Nats-Expected-Last-Sequence: 18446744073709551615\r\n") +
		len("Nats-Expected-Last-Msg-Id: \r\n") + len(s.prevID)
	if int64(size) > s.maxPay {
		return s.fail(s.tooLarge(e, subject, size))
	}
	s.held = append(s.held, &pending{msg: m, event: *e, size: size})
	return nil
}

// sendHeld publishes the queued messages in order, keeping at most
// maxInflight (or maxInflightBytes of) messages unacknowledged.
func (s *Sink) sendHeld(ctx context.Context) error {
	for i, p := range s.held {
		for len(s.inflight) >= maxInflight || len(s.inflight) > 0 && s.bytes+p.size > maxInflightBytes {
			if err := s.settle(ctx); err != nil {
				return err
			}
		}
		if err := s.send(p); err != nil {
			return err
		}
		s.held[i] = nil
	}
	s.held = s.held[:0]
	return nil
}

// send publishes p's message, expecting the stream's last sequence to be
// next and its last message to be the one published before, so that a
// message is stored only if every one before it was (or was there
// already): the stream never has a gap that its last message's
// checkpoint would skip. The sequence alone would not do: a message
// someone else stores moves it as far as a message of the sink's that
// failed held it back. The id alone would not either: the server
// forgets the last id when it restarts after the duplicate window, so
// the first message after Open expects only the sequence.
func (s *Sink) send(p *pending) error {
	p.expect = s.next
	p.msg.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(p.expect, 10))
	if s.prevID != "" {
		p.msg.Header.Set(jetstream.ExpectedLastMsgIDHeader, s.prevID)
	} else {
		p.msg.Header.Del(jetstream.ExpectedLastMsgIDHeader)
	}
	fut, err := s.js.PublishMsgAsync(p.msg)
	if err != nil {
		if errors.Is(err, natsgo.ErrMaxPayload) {
			return s.fail(s.tooLarge(&p.event, p.msg.Subject, p.size))
		}
		return s.fail(fmt.Errorf("%s: publish %s at position %s to %q: %w", s.label, p.event.QualifiedTable(), p.event.Position, p.msg.Subject, err))
	}
	p.fut = fut
	s.next++
	s.prevID = p.msg.Header.Get(jetstream.MsgIDHeader)
	s.inflight = append(s.inflight, p)
	s.bytes += p.size
	return nil
}

func (s *Sink) tooLarge(e *change.Event, subject string, size int) error {
	return &engine.RejectError{Event: *e, Err: fmt.Errorf("%s: the message to %q is %d bytes with its headers, over the server's max_payload of %d bytes: raise max_payload in the nats-server configuration, or leave the large columns out (transform exclude)",
		s.label, subject, size, s.maxPay)}
}

// headerSize is about what the header takes on the wire.
func headerSize(h natsgo.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// subject renders the subject of e's table.
func (s *Sink) subject(e *change.Event) (string, error) {
	k := [2]string{e.Schema, e.Table}
	if c, ok := s.subj[k]; ok {
		return c.name, c.err
	}
	c := &subj{name: render(s.cfg.Subject, e)}
	for _, v := range []struct{ what, name string }{{"schema", e.Schema}, {"table", e.Table}} {
		if strings.Contains(s.cfg.Subject, "{"+v.what+"}") && strings.Contains(v.name, ".") {
			c.err = fmt.Errorf("the %s name %q has '.', which separates subject tokens", v.what, v.name)
		}
	}
	if c.err == nil {
		c.err = checkSubject(c.name)
	}
	if c.err != nil {
		c.err = engine.Permanent(fmt.Errorf("%s: table %s: subject %q from template %q: %v; change subject (or route the table to another sink)", s.label, e.QualifiedTable(), c.name, s.cfg.Subject, c.err))
	}
	s.subj[k] = c
	return c.name, c.err
}

// render fills the subject template with the event's schema and table.
func render(tpl string, e *change.Event) string {
	if !strings.Contains(tpl, "{") {
		return tpl
	}
	return strings.NewReplacer("{schema}", e.Schema, "{table}", e.Table).Replace(tpl)
}

// settle waits for the acknowledgement of the oldest message in flight.
func (s *Sink) settle(ctx context.Context) error {
	p := s.inflight[0]
	ack, err := s.wait(ctx, p)
	if err != nil && ctx.Err() != nil {
		return err
	}
	s.pop()
	switch {
	case err == nil && ack.Duplicate:
		// The stream had it already (a re-send after a restart): it
		// did not move, so every message still in flight expects a
		// sequence one too high and is refused. Send those again.
		return s.resync(ctx)
	case err == nil:
		s.last = ack.Sequence
		return nil
	case wrongSequence(err):
		return s.fail(s.moved(p, err))
	}
	return s.fail(s.publishError(p, err))
}

// resync collects the outcome of every message in flight after a
// duplicate and sends again, in order and with corrected expected
// sequences, those refused for a wrong last sequence.
func (s *Sink) resync(ctx context.Context) error {
	var again []*pending
	for len(s.inflight) > 0 {
		p := s.inflight[0]
		ack, err := s.wait(ctx, p)
		if err != nil && ctx.Err() != nil {
			return err
		}
		s.pop()
		switch {
		case err == nil && ack.Duplicate:
		case err == nil && len(again) == 0:
			s.last = ack.Sequence
		case err == nil:
			return s.fail(fmt.Errorf("%s: stream %q stored message %d out of order: another publisher writes to it", s.label, s.cfg.Stream, ack.Sequence))
		case wrongSequence(err):
			again = append(again, p)
		default:
			return s.fail(s.publishError(p, err))
		}
	}
	s.next, s.prevID = s.last, ""
	for _, p := range again {
		p.msg = &natsgo.Msg{Subject: p.msg.Subject, Data: p.msg.Data, Header: natsgo.Header(http.Header(p.msg.Header).Clone())}
		if err := s.send(p); err != nil {
			return err
		}
	}
	return nil
}

// wait returns p's acknowledgement or error.
func (s *Sink) wait(ctx context.Context, p *pending) (*jetstream.PubAck, error) {
	select {
	case ack := <-p.fut.Ok():
		return ack, nil
	case err := <-p.fut.Err():
		return nil, err
	case err := <-s.denied:
		return nil, engine.Permanent(fmt.Errorf("%w (grant the sink's user permission to publish to %q)", err, Wildcards(s.cfg.Subject)))
	case <-s.closed:
		err := s.nc.LastError()
		if err == nil {
			err = natsgo.ErrConnectionClosed
		}
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Sink) pop() {
	s.bytes -= s.inflight[0].size
	s.inflight[0] = nil
	s.inflight = s.inflight[1:]
}

// moved is the error of a message refused because the stream's last
// sequence or message is not the one it expected, with no duplicate
// before it to explain it: something else was stored in the stream.
func (s *Sink) moved(p *pending, err error) error {
	return fmt.Errorf("%s: publish %s at position %s: stream %q no longer ends where this sink expects (at sequence %d, with the sink's previous message) (%v): either messages of an earlier connection arrived late, or another publisher writes to the stream, which must hold only this sink's messages",
		s.label, p.event.QualifiedTable(), p.event.Position, s.cfg.Stream, p.expect, err)
}

// publishError classifies the failure of one message: a message the
// stream refuses for its size is a RejectError, a wrong stream or a
// missing permission permanent, the rest retried by reopening.
func (s *Sink) publishError(p *pending, err error) error {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamMessageExceedsMaximum:
			return &engine.RejectError{Event: p.event, Err: fmt.Errorf("%s: stream %q refused the %d-byte message to %q: %w (raise the stream's max_msg_size, or leave the large columns out)", s.label, s.cfg.Stream, p.size, p.msg.Subject, err)}
		case 10060: // JSStreamNotMatchErr: the subject is another stream's
			return engine.Permanent(fmt.Errorf("%s: subject %q belongs to another stream than %q (%w): give the streams subjects that do not overlap", s.label, p.msg.Subject, s.cfg.Stream, err))
		}
	}
	doing := fmt.Sprintf("publish %s at position %s to %q", p.event.QualifiedTable(), p.event.Position, p.msg.Subject)
	switch {
	case engine.IsPermanent(err):
		return fmt.Errorf("%s: %s: %w", s.label, doing, err)
	case errors.Is(err, jetstream.ErrNoStreamResponse):
		return fmt.Errorf("%s: %s: %w (no stream stores the subject: was stream %q deleted, or is JetStream unavailable?)", s.label, doing, err, s.cfg.Stream)
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout):
		return fmt.Errorf("%s: %s: no acknowledgement within %s: %w", s.label, doing, ackTimeout, err)
	}
	return fmt.Errorf("%s: %s: %w", s.label, doing, err)
}

// errCodeSubjectsOverlap is JetStream's JSStreamSubjectOverlapErr: a
// new stream's subjects overlap an existing stream's.
const errCodeSubjectsOverlap jetstream.ErrorCode = 10065

// errCodeWrongLastMsgID is JetStream's JSStreamWrongLastMsgIDErr, a
// message refused for its Nats-Expected-Last-Msg-Id.
const errCodeWrongLastMsgID jetstream.ErrorCode = 10070

// wrongSequence reports a message refused for its
// Nats-Expected-Last-Sequence or Nats-Expected-Last-Msg-Id.
func wrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant, errCodeWrongLastMsgID:
		return true
	}
	return false
}

// fail marks the sink unusable until it is opened again and returns err.
func (s *Sink) fail(err error) error {
	var rej *engine.RejectError
	if errors.As(err, &rej) {
		// Not %w: the engine handles the rejected event once, from the
		// call that reported it.
		s.broken = fmt.Errorf("%s: unusable after an earlier failure, open it again: %v", s.label, err)
	} else {
		s.broken = fmt.Errorf("%s: unusable after an earlier failure, open it again: %w", s.label, err)
	}
	return err
}

// Flush waits until the stream has acknowledged every message written
// and returns cp as bytes for the state file: with it Open still
// advances past events that produced no message (Marks), which no
// message's header carries. After an error the sink must be opened
// again.
func (s *Sink) Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error) {
	if s.nc == nil {
		return nil, fmt.Errorf("%s: Flush before Open", s.label)
	}
	if s.broken != nil {
		return nil, s.broken
	}
	if err := s.sendHeld(ctx); err != nil {
		return nil, err
	}
	for len(s.inflight) > 0 {
		if err := s.settle(ctx); err != nil {
			return nil, err
		}
	}
	s.cp = newRunning(later(s.cp.cp, cp))
	return cp.MarshalJSON()
}

// Close discards the queued messages and closes the connection without
// waiting for acknowledgements. Messages of a Flush that was under way
// may still be stored; the next Open finds them in the stream.
func (s *Sink) Close() error {
	s.held = nil
	if s.nc == nil {
		return nil
	}
	s.nc.Close()
	s.nc, s.js, s.inflight, s.bytes = nil, nil, nil, 0
	return nil
}

// apiError wraps a failed JetStream API call, marking the ones retrying
// cannot fix as permanent.
func (s *Sink) apiError(doing string, err error) error {
	wrapped := fmt.Errorf("%s: %s: %w", s.label, doing, err)
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return engine.Permanent(fmt.Errorf("%w (enable JetStream on the server at %s: nats-server -js, or a jetstream block in its configuration)", wrapped, s.urls))
	case errors.Is(err, natsgo.ErrPermissionViolation):
		return engine.Permanent(fmt.Errorf("%w (grant the sink's user the JetStream API $JS.API.> and publishing to the stream's subjects)", wrapped))
	case errors.As(err, &apiErr) && apiErr.Code == 400:
		return engine.Permanent(wrapped)
	}
	return wrapped
}

// Forget makes the checkpoint the stream holds for this sink empty
// (engine.Forgetter), so that after `sluice drop` the next run starts
// over: it publishes one message without payload whose headers are
// Sluice-Control: forget and an empty Sluice-Checkpoint, to the subject
// the template renders for schema "_sluice" and table "forget". Nothing
// is removed from the stream.
func (s *Sink) Forget(ctx context.Context) (bool, error) {
	cp, err := s.Open(ctx, nil)
	if err != nil {
		return false, err
	}
	defer s.Close()
	if len(cp) == 0 {
		return false, nil
	}
	subject := render(s.cfg.Subject, &change.Event{Schema: "_sluice", Table: "forget"})
	m := &natsgo.Msg{Subject: subject, Header: natsgo.Header{
		HeaderControl:                   {"forget"},
		HeaderCheckpoint:                {"[]"},
		HeaderSink:                      {s.owner},
		jetstream.ExpectedStreamHeader:  {s.cfg.Stream},
		jetstream.ExpectedLastSeqHeader: {strconv.FormatUint(s.last, 10)},
	}}
	if _, err := s.js.PublishMsg(ctx, m); err != nil {
		return false, s.apiError(fmt.Sprintf("publish the forget message to %q", subject), err)
	}
	return true, nil
}
