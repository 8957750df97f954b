package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	"github.com/sluice-cdc/sluice/internal/natstest"
)

// serverURL and server are the test server (internal/natstest).
func serverURL() string { return natstest.URL() }

func server(t testing.TB) jetstream.JetStream { return natstest.Connect(t) }

var serial atomic.Int64

// unique returns a name no other test (or earlier run) uses, valid as a
// pipeline name, a subject token and a stream name.
func unique() string {
	return fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1_000_000_000, serial.Add(1))
}

// fixture is one test's pipeline: its name (so the stream is
// "sluice_<name>" and the subjects "<name>.*.*") and the server.
type fixture struct {
	t        testing.TB
	js       jetstream.JetStream
	pipeline string
}

func newFixture(t testing.TB) *fixture {
	js := server(t)
	f := &fixture{t: t, js: js, pipeline: unique()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(ctx, DefaultStream(f.pipeline))
	})
	return f
}

func (f *fixture) config() Config {
	return Config{URL: serverURL(), CreateStream: true}
}

func (f *fixture) sink(cfg Config) *Sink {
	f.t.Helper()
	s, err := newSink(cfg, f.pipeline, "events", slog.New(slog.DiscardHandler))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (f *fixture) open(s *Sink, saved []byte) change.Checkpoint {
	f.t.Helper()
	cp, err := s.Open(ctx(f.t), saved)
	if err != nil {
		f.t.Fatal(err)
	}
	return cp
}

// messages returns every message of the sink's stream, in order.
func (f *fixture) messages() []*jetstream.RawStreamMsg {
	f.t.Helper()
	st, err := f.js.Stream(ctx(f.t), DefaultStream(f.pipeline))
	if err != nil {
		f.t.Fatal(err)
	}
	info, err := st.Info(ctx(f.t))
	if err != nil {
		f.t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(ctx(f.t), seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// ids returns the Nats-Msg-Id of every message of the stream.
func (f *fixture) ids() []string {
	var out []string
	for _, m := range f.messages() {
		out = append(out, m.Header.Get(jetstream.MsgIDHeader))
	}
	return out
}

// waitMessages waits until the stream holds n messages.
func (f *fixture) waitMessages(n uint64) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := f.js.Stream(ctx(f.t), DefaultStream(f.pipeline))
		if err != nil {
			f.t.Fatal(err)
		}
		info, err := st.Info(ctx(f.t))
		if err != nil {
			f.t.Fatal(err)
		}
		if info.State.Msgs == n {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("the stream holds %d messages, want %d", info.State.Msgs, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

var userCols = change.NewColumns("id", "name")

// event is a change of public.users at LSN offset, index 0, each its own
// source transaction.
func event(op change.Op, offset uint64, id int64) change.Event {
	e := change.Event{Op: op, Schema: "public", Table: "users",
		Key:      change.MakeRow(change.NewColumns("id"), []any{id}),
		Tx:       change.Tx{ID: offset, CommitTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)},
		Position: change.Position{Source: "app", Offset: offset}, Boundary: true}
	row := change.MakeRow(userCols, []any{id, fmt.Sprintf("user %d", id)})
	switch op {
	case change.Insert, change.Snapshot:
		e.After, e.Changed = row, []string{"id", "name"}
	case change.Update:
		e.Before, e.After, e.Changed = row, row, []string{"name"}
	case change.Delete:
		e.Before = row
	}
	return e
}

// inserts returns n inserts at LSNs from, from+1, ...
func inserts(from uint64, n int) []change.Event {
	out := make([]change.Event, n)
	for i := range out {
		out[i] = event(change.Insert, from+uint64(i), int64(from)+int64(i))
	}
	return out
}

func mark(offset uint64) change.Event {
	return change.Event{Op: change.Mark, Position: change.Position{Source: "app", Offset: offset}, Boundary: true}
}

// engineCheckpoint is the checkpoint the engine passes to Flush after
// events: every position advanced.
func engineCheckpoint(base change.Checkpoint, events ...[]change.Event) change.Checkpoint {
	cp := base.Clone()
	for _, batch := range events {
		for _, e := range batch {
			cp.Advance(e.Position)
		}
	}
	return cp
}

// uncovered is what the engine passes after Open returned cp.
func uncovered(cp change.Checkpoint, events []change.Event) []change.Event {
	var out []change.Event
	for _, e := range events {
		if !cp.Covers(e.Position) {
			out = append(out, e)
		}
	}
	return out
}

func idsOf(events []change.Event) []string {
	var out []string
	for _, e := range events {
		if e.Op != change.Mark {
			out = append(out, MsgID(e.Position))
		}
	}
	return out
}

func write(t testing.TB, s *Sink, events []change.Event) {
	t.Helper()
	if err := s.Write(ctx(t), events); err != nil {
		t.Fatal(err)
	}
}

func flush(t testing.TB, s *Sink, cp change.Checkpoint) []byte {
	t.Helper()
	saved, err := s.Flush(ctx(t), cp)
	if err != nil {
		t.Fatal(err)
	}
	return saved
}

func decodeCheckpoint(t testing.TB, text string) change.Checkpoint {
	t.Helper()
	var cp change.Checkpoint
	if err := cp.UnmarshalJSON([]byte(text)); err != nil {
		t.Fatalf("checkpoint %q: %v", text, err)
	}
	return cp
}

func equalCheckpoints(a, b change.Checkpoint) bool {
	if len(a) != len(b) {
		return false
	}
	for st, p := range a {
		if q, ok := b[st]; !ok || q != p {
			return false
		}
	}
	return true
}

func TestMessagesAndHeaders(t *testing.T) {
	for _, name := range []string{"debezium", "native"} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			cfg := f.config()
			cfg.Format = name
			s := f.sink(cfg)
			if cp := f.open(s, nil); len(cp) != 0 {
				t.Fatalf("a new stream's checkpoint is %v, want empty", cp)
			}
			kafka := change.Event{Op: change.Insert, Schema: "shop", Table: "orders",
				Key: change.MakeRow(change.NewColumns("id"), []any{int64(9)}), After: change.MakeRow(change.NewColumns("id"), []any{int64(9)}),
				Position: change.Position{Source: "orders", Partition: "orders/2", Offset: 1500}, Boundary: true}
			events := []change.Event{
				event(change.Insert, 100, 1),
				event(change.Update, 101, 1),
				mark(102),
				kafka,
				event(change.Delete, 103, 1),
				{Op: change.Truncate, Schema: "public", Table: "users", Position: change.Position{Source: "app", Offset: 104}, Boundary: true},
			}
			write(t, s, events)
			flush(t, s, engineCheckpoint(nil, events))

			msgs := f.messages()
			want := []struct {
				event   change.Event
				subject string
				cp      string
			}{
				{events[0], f.pipeline + ".public.users", `[{"source":"app","offset":100,"index":0}]`},
				{events[1], f.pipeline + ".public.users", `[{"source":"app","offset":101,"index":0}]`},
				{events[3], f.pipeline + ".shop.orders", `[{"source":"app","offset":102,"index":0},{"source":"orders","partition":"orders/2","offset":1500,"index":0}]`},
				{events[4], f.pipeline + ".public.users", `[{"source":"app","offset":103,"index":0},{"source":"orders","partition":"orders/2","offset":1500,"index":0}]`},
				{events[5], f.pipeline + ".public.users", `[{"source":"app","offset":104,"index":0},{"source":"orders","partition":"orders/2","offset":1500,"index":0}]`},
			}
			if len(msgs) != len(want) {
				t.Fatalf("the stream holds %d messages, want %d (no message for the Mark)", len(msgs), len(want))
			}
			for i, w := range want {
				m := msgs[i]
				if m.Subject != w.subject {
					t.Errorf("message %d: subject %q, want %q", i, m.Subject, w.subject)
				}
				if got := m.Header.Get("Nats-Msg-Id"); got != MsgID(w.event.Position) {
					t.Errorf("message %d: Nats-Msg-Id %q, want %q", i, got, MsgID(w.event.Position))
				}
				if got := m.Header.Get(HeaderCheckpoint); got != w.cp {
					t.Errorf("message %d: %s %s, want %s", i, HeaderCheckpoint, got, w.cp)
				}
				if got := m.Header.Get(HeaderSink); got != f.pipeline+"/events" {
					t.Errorf("message %d: %s %q", i, HeaderSink, got)
				}
				if name == "native" {
					if wantData := (format.Native{}).Append(nil, &w.event); string(m.Data) != string(wantData) {
						t.Errorf("message %d: payload\n%s\nwant\n%s", i, m.Data, wantData)
					}
					continue
				}
				var env struct {
					Op     string         `json:"op"`
					After  map[string]any `json:"after"`
					Before map[string]any `json:"before"`
					Source struct {
						Table string `json:"table"`
						LSN   uint64 `json:"lsn"`
					} `json:"source"`
				}
				if err := json.Unmarshal(m.Data, &env); err != nil {
					t.Fatalf("message %d: %v: %s", i, err, m.Data)
				}
				wantOp := map[change.Op]string{change.Insert: "c", change.Update: "u", change.Delete: "d", change.Truncate: "t"}[w.event.Op]
				if env.Op != wantOp || env.Source.Table != w.event.Table || env.Source.LSN != w.event.Position.Offset {
					t.Errorf("message %d: envelope %s, want op %q of %s at lsn %d", i, m.Data, wantOp, w.event.Table, w.event.Position.Offset)
				}
			}
			for i, m := range msgs {
				wantID := ""
				if i > 0 {
					wantID = msgs[i-1].Header.Get("Nats-Msg-Id")
				}
				if seq, id := m.Header.Get("Nats-Expected-Last-Sequence"), m.Header.Get("Nats-Expected-Last-Msg-Id"); seq != fmt.Sprint(i) || id != wantID {
					t.Errorf("message %d expects the last sequence %q and id %q, want %d and %q", i, seq, id, i, wantID)
				}
				if m.Header.Get("Nats-Expected-Stream") != DefaultStream(f.pipeline) {
					t.Errorf("message %d: Nats-Expected-Stream %q", i, m.Header.Get("Nats-Expected-Stream"))
				}
			}
		})
	}
}

func TestSchemasWrapsTheEnvelope(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.Schemas = true
	s := f.sink(cfg)
	f.open(s, nil)
	events := inserts(10, 1)
	write(t, s, events)
	flush(t, s, engineCheckpoint(nil, events))
	var env struct {
		Schema  map[string]any `json:"schema"`
		Payload struct {
			Op string `json:"op"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(f.messages()[0].Data, &env); err != nil || env.Schema == nil || env.Payload.Op != "c" {
		t.Fatalf("with schemas the payload is %s (%v), want {schema, payload}", f.messages()[0].Data, err)
	}
}

func TestStreamCreatedWithOptions(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.Subject = f.pipeline + ".cdc.{schema}.{table}"
	cfg.Retention = "interest"
	cfg.MaxAge = time.Hour
	cfg.Replicas = 1
	cfg.DuplicateWindow = 30 * time.Second
	s := f.sink(cfg)
	f.open(s, nil)
	st, err := f.js.Stream(ctx(t), DefaultStream(f.pipeline))
	if err != nil {
		t.Fatal(err)
	}
	c := st.CachedInfo().Config
	if len(c.Subjects) != 1 || c.Subjects[0] != f.pipeline+".cdc.*.*" || c.Retention != jetstream.InterestPolicy ||
		c.MaxAge != time.Hour || c.Replicas != 1 || c.Duplicates != 30*time.Second || c.Storage != jetstream.FileStorage {
		t.Fatalf("stream created with %+v", c)
	}

	// Opening again uses the stream as it is.
	s.Close()
	cfg.MaxAge = 2 * time.Hour
	s2 := f.sink(cfg)
	f.open(s2, nil)
	if st, _ := f.js.Stream(ctx(t), DefaultStream(f.pipeline)); st.CachedInfo().Config.MaxAge != time.Hour {
		t.Fatalf("an existing stream was changed: %+v", st.CachedInfo().Config)
	}

	t.Run("a template outside an existing stream's subjects", func(t *testing.T) {
		bad := cfg
		bad.Subject = f.pipeline + ".other.{table}"
		bad.Subjects = []string{f.pipeline + ".other.*"}
		s := f.sink(bad)
		_, err := s.Open(ctx(t), nil)
		if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), f.pipeline+".other.*") {
			t.Fatalf("Open = %v, want a permanent error naming the subjects to add", err)
		}
	})
	t.Run("a missing stream without create_stream", func(t *testing.T) {
		g := newFixture(t)
		cfg := g.config()
		cfg.CreateStream = false
		s := g.sink(cfg)
		_, err := s.Open(ctx(t), nil)
		if err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "create_stream") {
			t.Fatalf("Open = %v, want a permanent error saying to create the stream", err)
		}
	})
	t.Run("custom subjects", func(t *testing.T) {
		g := newFixture(t)
		cfg := g.config()
		cfg.Subjects = []string{g.pipeline + ".>"}
		s := g.sink(cfg)
		g.open(s, nil)
		events := inserts(1, 2)
		write(t, s, events)
		flush(t, s, engineCheckpoint(nil, events))
		if got := len(g.messages()); got != 2 {
			t.Fatalf("%d messages, want 2", got)
		}
	})
}

// TestCloseWithoutFlush: a sink closed after Write without Flush
// publishes nothing of what it was written since its last Flush, and
// reopens at that Flush. Then a Flush whose bytes the state file never
// saved: reopening finds the last stored message's checkpoint, and
// sending again even from the older saved one leaves each change once.
func TestCloseWithoutFlush(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	s := f.sink(cfg)
	f.open(s, nil)
	batch1, batch2, batch3 := inserts(100, 5), inserts(105, 5), inserts(110, 3)
	write(t, s, batch1)
	flushed := engineCheckpoint(nil, batch1)
	saved := flush(t, s, flushed)
	write(t, s, batch2)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.ids(), idsOf(batch1); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("after a Close without Flush the stream holds\n%v\nwant what was flushed:\n%v", got, want)
	}
	s = f.sink(cfg)
	if cp := f.open(s, saved); !equalCheckpoints(cp, flushed) {
		t.Fatalf("reopened at %v, want the last flush's %v", cp, flushed)
	}

	// batch2 flushed, its bytes never saved (a crash before the state
	// file's write): Open goes by the stream's last message.
	write(t, s, batch2)
	flush(t, s, engineCheckpoint(flushed, batch2))
	s.Close()
	s = f.sink(cfg)
	cp := f.open(s, saved)
	msgs := f.messages()
	last := msgs[len(msgs)-1]
	if want := decodeCheckpoint(t, last.Header.Get(HeaderCheckpoint)); !equalCheckpoints(cp, want) || !cp.Covers(batch2[len(batch2)-1].Position) {
		t.Fatalf("reopened at %v, want the last stored message's %v", cp, want)
	}
	// The engine sends what cp does not cover. Here it sends more: all of
	// batch2, as if the stream had lost its last message and only the
	// state file's checkpoint were left; the stream drops what it has.
	again := append(append([]change.Event{}, batch2...), batch3...)
	write(t, s, again)
	flush(t, s, engineCheckpoint(flushed, again))
	all := append(append(append([]change.Event{}, batch1...), batch2...), batch3...)
	if got, want := f.ids(), idsOf(all); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the stream holds\n%v\nwant each change once, in order:\n%v", got, want)
	}
	s.Close()

	s = f.sink(cfg)
	if cp := f.open(s, nil); !equalCheckpoints(cp, engineCheckpoint(nil, all)) {
		t.Fatalf("reopened at %v, want the last change's position", cp)
	}
}

// TestRestartAfterDuplicateWindow: long after the stream stopped
// dropping re-sent ids, the checkpoint in the last message still tells
// Open what is there, so nothing is sent twice.
func TestRestartAfterDuplicateWindow(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	cfg.DuplicateWindow = time.Second
	s := f.sink(cfg)
	f.open(s, nil)
	batch1, batch2, batch3 := inserts(100, 5), inserts(105, 5), inserts(110, 5)
	write(t, s, batch1)
	saved := flush(t, s, engineCheckpoint(nil, batch1))
	// A crash after the flush, before the state file saved its bytes:
	// batch2 is published, the engine knows only batch1's.
	write(t, s, batch2)
	flush(t, s, engineCheckpoint(nil, append(append([]change.Event{}, batch1...), batch2...)))
	s.Close()
	f.waitMessages(10)
	time.Sleep(1500 * time.Millisecond) // past the duplicate window

	s = f.sink(cfg)
	cp := f.open(s, saved)
	if want := engineCheckpoint(nil, batch2); !equalCheckpoints(cp, want) {
		t.Fatalf("reopened at %v with the state file's %s, want %v from the last message", cp, saved, want)
	}
	all := append(append(append([]change.Event{}, batch1...), batch2...), batch3...)
	rest := uncovered(cp, all)
	write(t, s, rest)
	flush(t, s, engineCheckpoint(cp, rest))
	if got, want := f.ids(), idsOf(all); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the stream holds\n%v\nwant each change once:\n%v", got, want)
	}
}

// TestFlushOfMarksAdvances: a Flush that wrote only Marks publishes
// nothing, and the bytes it returns are what moves the checkpoint.
func TestFlushOfMarksAdvances(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	s := f.sink(cfg)
	f.open(s, nil)
	events := inserts(100, 3)
	write(t, s, events)
	first := flush(t, s, engineCheckpoint(nil, events))
	other := change.Position{Source: "kafka", Partition: "t/0", Offset: 7}
	marks := []change.Event{mark(200), mark(201), {Op: change.Mark, Position: other, Boundary: true}}
	write(t, s, marks)
	afterMarks := engineCheckpoint(nil, events, marks)
	second := flush(t, s, afterMarks)
	if n := len(f.messages()); n != 3 {
		t.Fatalf("%d messages after a flush of Marks, want the 3 of the changes", n)
	}
	s.Close()

	cases := []struct {
		name  string
		saved []byte
		want  change.Checkpoint
	}{
		{"the marks' flush", second, afterMarks},
		{"the first flush", first, engineCheckpoint(nil, events)},
		{"no state file", nil, engineCheckpoint(nil, events)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := f.sink(cfg)
			defer s.Close()
			if cp := f.open(s, c.saved); !equalCheckpoints(cp, c.want) {
				t.Fatalf("reopened at %v, want %v", cp, c.want)
			}
		})
	}

	// A stream in the saved checkpoint, another in the header: both.
	s = f.sink(cfg)
	cp := f.open(s, second)
	next := inserts(300, 1)
	write(t, s, next)
	flush(t, s, engineCheckpoint(cp, next))
	msgs := f.messages()
	got := decodeCheckpoint(t, msgs[len(msgs)-1].Header.Get(HeaderCheckpoint))
	if want := engineCheckpoint(afterMarks, next); !equalCheckpoints(got, want) {
		t.Fatalf("the next message carries %v, want %v (the marks' streams included)", got, want)
	}
}

func TestMessageOverMaxPayload(t *testing.T) {
	f := newFixture(t)
	s := f.sink(f.config())
	f.open(s, nil)
	small := inserts(100, 1)
	big := change.Event{Op: change.Insert, Schema: "public", Table: "blobs",
		After:    change.MakeRow(change.NewColumns("id", "data"), []any{int64(1), strings.Repeat("x", int(s.maxPay))}),
		Position: change.Position{Source: "app", Offset: 500, Index: 2}, Boundary: true}
	err := s.Write(ctx(t), append(small, big))
	var rej *engine.RejectError
	if !errors.As(err, &rej) || rej.Event.Position != big.Position {
		t.Fatalf("Write = %v, want a RejectError for the big event", err)
	}
	for _, want := range []string{"public.blobs", "500.2", "max_payload"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := s.Flush(ctx(t), engineCheckpoint(nil, small)); err == nil {
		t.Fatal("Flush after a rejected event succeeded; want the sink to need reopening")
	}
}

// TestStreamRefusesAMessage: a message the stream refuses (its
// max_msg_size) is a RejectError, and the messages after it are not
// stored: the stream has no gap for the last message's checkpoint to
// skip.
func TestStreamRefusesAMessage(t *testing.T) {
	f := newFixture(t)
	cfg := f.config().withDefaults(f.pipeline)
	sc := cfg.streamConfig()
	sc.MaxMsgSize = 2000
	if _, err := f.js.CreateStream(ctx(t), sc); err != nil {
		t.Fatal(err)
	}
	s := f.sink(cfg)
	f.open(s, nil)
	big := change.Event{Op: change.Insert, Schema: "public", Table: "blobs",
		After:    change.MakeRow(change.NewColumns("id", "data"), []any{int64(1), strings.Repeat("x", 4000)}),
		Position: change.Position{Source: "app", Offset: 101}, Boundary: true}
	events := append(append(inserts(100, 1), big), inserts(102, 3)...)
	err := s.Write(ctx(t), events)
	if err == nil {
		_, err = s.Flush(ctx(t), engineCheckpoint(nil, events))
	}
	var rej *engine.RejectError
	if !errors.As(err, &rej) || rej.Event.Position != big.Position || !strings.Contains(err.Error(), "public.blobs") {
		t.Fatalf("Write/Flush = %v, want a RejectError for public.blobs at 101.0", err)
	}
	if got := f.ids(); strings.Join(got, " ") != MsgID(events[0].Position) {
		t.Fatalf("the stream holds %v, want only the message before the refused one", got)
	}
	s.Close()
	s = f.sink(cfg)
	if cp := f.open(s, nil); !equalCheckpoints(cp, engineCheckpoint(nil, events[:1])) {
		t.Fatalf("reopened at %v, want before the refused event", cp)
	}
}

// TestAnotherPublisher: a message the sink did not write breaks the
// expected sequence (a retried error), and Open then refuses the stream.
func TestAnotherPublisher(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	s := f.sink(cfg)
	f.open(s, nil)
	if _, err := f.js.Publish(ctx(t), f.pipeline+".public.users", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	events := inserts(100, 2)
	err := s.Write(ctx(t), events)
	if err == nil {
		_, err = s.Flush(ctx(t), engineCheckpoint(nil, events))
	}
	if err == nil || engine.IsPermanent(err) || !strings.Contains(err.Error(), "another publisher") {
		t.Fatalf("Write/Flush = %v, want a retried error about another publisher", err)
	}
	s.Close()
	s = f.sink(cfg)
	if _, err := s.Open(ctx(t), nil); err == nil || !engine.IsPermanent(err) || !strings.Contains(err.Error(), "only this sink's messages") {
		t.Fatalf("Open = %v, want a permanent error: the stream must hold only this sink's messages", err)
	}
}

func TestForget(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	s := f.sink(cfg)
	if forgot, err := s.Forget(ctx(t)); err != nil || forgot {
		t.Fatalf("Forget of a new stream = %t, %v; want false", forgot, err)
	}
	f.open(s, nil)
	events := inserts(100, 2)
	write(t, s, events)
	flush(t, s, engineCheckpoint(nil, events))
	s.Close()
	if forgot, err := s.Forget(ctx(t)); err != nil || !forgot {
		t.Fatalf("Forget = %t, %v; want true", forgot, err)
	}
	if cp := f.open(s, nil); len(cp) != 0 {
		t.Fatalf("after Forget the checkpoint is %v, want empty", cp)
	}
	msgs := f.messages()
	if m := msgs[len(msgs)-1]; m.Header.Get(HeaderControl) != "forget" || len(m.Data) != 0 || m.Subject != f.pipeline+"._sluice.forget" {
		t.Fatalf("the forget message: %s %v %q", m.Subject, m.Header, m.Data)
	}
	s.Close()
	if forgot, err := s.Forget(ctx(t)); err != nil || forgot {
		t.Fatalf("Forget again = %t, %v; want false", forgot, err)
	}
}

// TestManyInFlight writes more messages than maxInflight in one Write, so
// Write waits for acknowledgements on the way.
func TestManyInFlight(t *testing.T) {
	f := newFixture(t)
	s := f.sink(f.config())
	f.open(s, nil)
	events := inserts(1, maxInflight*2+10)
	write(t, s, events)
	if len(s.inflight) > maxInflight {
		t.Fatalf("%d messages in flight, want at most %d", len(s.inflight), maxInflight)
	}
	flush(t, s, engineCheckpoint(nil, events))
	f.waitMessages(uint64(len(events)))
}

func TestServerDown(t *testing.T) {
	cfg := Config{URL: "nats://127.0.0.1:1", CreateStream: true}
	s, err := newSink(cfg, "p", "events", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Open(ctx(t), nil)
	if err == nil || engine.IsPermanent(err) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("Open = %v, want a retried error naming the server", err)
	}
}

func TestPasswordNeverInErrors(t *testing.T) {
	cfg := Config{URL: "nats://bob:hunter2@127.0.0.1:1", CreateStream: true}
	s, err := newSink(cfg, "p", "events", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Open(ctx(t), nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open = %v, want an error without the password", err)
	}
}

// TestResendAfterLostCheckpoint: when Open can only use an older
// checkpoint (the stream's last message gone, the state file behind), the
// engine sends again changes of several source streams that the stream
// holds, interleaved differently than the first time. The stream drops
// the ones it has; the new ones, refused for the sequence a duplicate
// did not take, are sent again in order; each change is there once.
func TestResendAfterLostCheckpoint(t *testing.T) {
	f := newFixture(t)
	cfg := f.config()
	s := f.sink(cfg)
	f.open(s, nil)
	at := func(source string, offset uint64) change.Event {
		e := event(change.Insert, offset, int64(offset))
		e.Position.Source = source
		return e
	}
	a1, b1, a2, b2, a3 := at("a", 1), at("b", 1), at("a", 2), at("b", 2), at("a", 3)
	first := []change.Event{a1, b1, a2}
	write(t, s, first)
	flush(t, s, engineCheckpoint(nil, first))
	s.Close()

	s = f.sink(cfg)
	f.open(s, nil)
	again := []change.Event{a1, b1, b2, a2, a3}
	write(t, s, again)
	flush(t, s, engineCheckpoint(nil, again))
	if got, want := f.ids(), idsOf([]change.Event{a1, b1, a2, b2, a3}); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("the stream holds\n%v\nwant\n%v", got, want)
	}
	s.Close()
	s = f.sink(cfg)
	if cp := f.open(s, nil); !equalCheckpoints(cp, engineCheckpoint(nil, again)) {
		t.Fatalf("reopened at %v, want %v", cp, engineCheckpoint(nil, again))
	}
}
