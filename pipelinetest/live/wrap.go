package live

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"time"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// liveSource wraps a real source of a test: it renames the scratch
// schemas of its events back to the schemas the inputs name, and tells
// the test when the source has opened, what it delivered last and when
// it reached a fence or its end.
type liveSource struct {
	inner engine.Source
	st    *sourceState
	t     *testRun
	rels  map[*change.Relation]*change.Relation // scratch relation → renamed copy
}

var _ engine.Source = (*liveSource)(nil)

func (s *liveSource) Open(ctx context.Context, from change.Checkpoint, state engine.State) error {
	if err := s.inner.Open(ctx, from, state); err != nil {
		return err
	}
	s.t.opened(s.st)
	return nil
}

func (s *liveSource) Read(ctx context.Context) ([]change.Event, error) {
	events, err := s.inner.Read(ctx)
	for i := range events {
		e := &events[i]
		if real, ok := s.st.realSchema[e.Schema]; ok {
			e.Schema = real
		}
		if r := e.Relation; r != nil {
			if real, ok := s.st.realSchema[r.Schema]; ok {
				renamed, ok := s.rels[r]
				if !ok {
					c := *r
					c.Schema = real
					renamed = &c
					s.rels[r] = renamed
				}
				e.Relation = renamed
			}
		}
	}
	s.t.read(s.st, events, errors.Is(err, io.EOF))
	return events, err
}

func (s *liveSource) Ack(ctx context.Context, cp change.Checkpoint) error {
	return s.inner.Ack(ctx, cp)
}
func (s *liveSource) Close() error { return s.inner.Close() }

// injectedSource delivers a test's inputs as the in-memory run makes
// them, then ends: for sources a test cannot run (kafka).
type injectedSource struct {
	events []change.Event
	from   change.Checkpoint
	sent   bool
}

var _ engine.Source = (*injectedSource)(nil)

func (s *injectedSource) Open(_ context.Context, from change.Checkpoint, _ engine.State) error {
	s.from, s.sent = from, false
	return nil
}

func (s *injectedSource) Read(ctx context.Context) ([]change.Event, error) {
	if s.sent {
		return nil, io.EOF
	}
	s.sent = true
	var out []change.Event
	for _, e := range s.events {
		if !s.from.Covers(e.Position) {
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}

func (s *injectedSource) Ack(context.Context, change.Checkpoint) error { return nil }
func (s *injectedSource) Close() error                                 { return nil }

// idleSource stands for a source no input of the test comes from: it
// delivers nothing until the test stops.
type idleSource struct{}

var _ engine.Source = idleSource{}

func (idleSource) Open(context.Context, change.Checkpoint, engine.State) error { return nil }
func (idleSource) Read(ctx context.Context) ([]change.Event, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (idleSource) Ack(context.Context, change.Checkpoint) error { return nil }
func (idleSource) Close() error                                 { return nil }

// liveSink wraps a sink of a test and records what it committed: the row
// events written since its last Flush, once that Flush succeeds, and the
// checkpoint it committed.
type liveSink struct {
	inner   engine.Sink
	st      *sinkState
	t       *testRun
	pending []change.Event
}

var _ engine.Sink = (*liveSink)(nil)

func (s *liveSink) Open(ctx context.Context, saved []byte) (change.Checkpoint, error) {
	s.pending = nil
	return s.inner.Open(ctx, saved)
}

func (s *liveSink) Write(ctx context.Context, events []change.Event) error {
	if err := s.inner.Write(ctx, events); err != nil {
		return err
	}
	for _, e := range events {
		if e.Op != change.Mark {
			s.pending = append(s.pending, e)
		}
	}
	return nil
}

func (s *liveSink) Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error) {
	b, err := s.inner.Flush(ctx, cp)
	if err != nil {
		return b, err
	}
	s.t.flushed(s.st, cp, s.pending)
	s.pending = nil
	return b, nil
}

func (s *liveSink) Close() error {
	s.pending = nil
	return s.inner.Close()
}

// recordSink stands for a sink a test cannot run (kafka, webhook): it
// takes everything, and liveSink records it.
type recordSink struct{}

var _ engine.Sink = recordSink{}

func (recordSink) Open(_ context.Context, saved []byte) (change.Checkpoint, error) {
	cp := change.Checkpoint{}
	if len(saved) > 0 {
		if err := json.Unmarshal(saved, &cp); err != nil {
			return nil, err
		}
	}
	return cp, nil
}
func (recordSink) Write(context.Context, []change.Event) error { return nil }
func (recordSink) Flush(_ context.Context, cp change.Checkpoint) ([]byte, error) {
	return json.Marshal(cp)
}
func (recordSink) Close() error { return nil }

// observer follows a test's run: errors, pauses and dead letters.
type observer struct{ t *testRun }

var _ engine.Observer = observer{}

func (observer) Read(string, int, int)              {}
func (observer) Written(string, int)                {}
func (observer) Flushed(string, int, time.Duration) {}
func (observer) Lag(string, engine.SinkLag)         {}
func (observer) Restarted()                         {}
func (o observer) Failed(stage string, err error)   { o.t.failed(stage, err) }
func (o observer) DeadLettered(stage string)        { o.t.deadLettered(stage) }
func (o observer) Phase(p engine.Phase)             { o.t.phase(p) }
