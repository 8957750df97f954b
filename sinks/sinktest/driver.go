package sinktest

// This file is the kit's only contact with the engine: it runs the sink
// under the real engine (engine.Compile, Graph.Run) behind an in-memory
// source, and wraps the sink to watch what the engine asks of it. Keep
// the engine's API to this file.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// PipelineName is the name of the pipeline the sinks under test run in.
const PipelineName = "sinktest"

// sourceName is the in-memory source's block name: every event's
// Position.Source.
const sourceName = "src"

// waitFor is how long a step may take before the case fails.
const waitFor = 90 * time.Second

// Pipeline is a pipeline of one in-memory source and the sink under test,
// run by the engine (on_error = "dead_letter", a state file of its own).
// The source delivers the batches a case reads, and on every open of the
// pipeline (a restart, or the engine's own after a rejected event or a
// retriable error) it delivers again, as one batch, every event it
// delivered that the checkpoint it is opened from does not cover, as a
// replication source does.
//
// The engine flushes whenever its input is empty at a boundary of every
// stream (its linger is an hour, its least flush interval a nanosecond),
// and after BatchSize events at a boundary: each step waits until the
// engine has done what it does with what the step delivered — written it
// (but the tail after the last boundary, which it holds back) and flushed
// it where it can, the state file saved — which Pipeline foresees by
// following the rules of the engine's sink stage (model). A step that the
// engine does not complete within a minute and a half fails the case.
type Pipeline struct {
	t      *testing.T
	target *Target
	// BatchSize is the engine's RunOptions.BatchSize, from the next Open
	// on; 0: the sink's own (engine.BatchSizer), else 1000.
	BatchSize int

	state string
	log   *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change below
	// batches is every batch the source delivered.
	batches [][]change.Event
	// gate is closed by Replay: the source of the run Open started waits
	// on it in its Open; opening counts the sources that got there.
	gate    chan struct{}
	opening int
	// run is the current run; nil between Crash and Open.
	run *runState
	// What the sink under test saw: of its latest instance, the
	// checkpoint Open returned and the last position Write took per
	// stream; of any instance, the checkpoint of the last Flush, the last
	// checkpoint the engine said it saved (engine.SaveNotifier), the
	// number of flushes and the events rejected.
	openedCP  change.Checkpoint
	opens     int
	sinkBatch int // the sink's own batch size (engine.BatchSizer)
	written   change.Checkpoint
	flushedCP change.Checkpoint
	storedCP  change.Checkpoint
	flushes   int
	rejects   []*engine.RejectError
	// hold makes a Flush wait for the end of the run instead of reaching
	// the sink; holding tells that one does.
	hold, holding bool
	// broken says what the sink did that it must not (reject the Mark of
	// an event it rejected), which would pause the pipeline.
	broken string

	m model
}

// runState is one Graph.Run.
type runState struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what it returned
}

// NewPipeline opens a pipeline writing into target with nothing saved (a
// first run): for cases of a sink's own that drive it as the engine does.
func NewPipeline(t *testing.T, target *Target) *Pipeline {
	p := &Pipeline{t: t, target: target, state: filepath.Join(t.TempDir(), "state.db"), changed: make(chan struct{}),
		flushedCP: change.Checkpoint{}, storedCP: change.Checkpoint{}}
	p.log = slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(p.stop)
	p.Restart()
	return p
}

// logWriter passes the engine's warnings (retries, dead letters) to the
// test's log.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// notify wakes the waiters; p.mu is held.
func (p *Pipeline) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// wait waits until cond, called under p.mu, holds; it fails the case if
// the run ends, the engine breaks a rule or the time is up.
func (p *Pipeline) wait(what string, cond func() bool) {
	p.t.Helper()
	deadline := time.After(waitFor)
	for {
		p.mu.Lock()
		ok, broken, run, ch := cond(), p.broken, p.run, p.changed
		p.mu.Unlock()
		switch {
		case broken != "":
			p.t.Fatalf("%s: %s", what, broken)
		case ok:
			return
		case run == nil:
			p.t.Fatalf("%s: the pipeline is not running", what)
		}
		select {
		case <-run.done:
			p.mu.Lock()
			ok = cond()
			p.mu.Unlock()
			if !ok {
				p.t.Fatalf("%s: the pipeline ended: %v", what, run.err)
			}
		default:
		}
		select {
		case <-ch:
		case <-run.done:
		case <-deadline:
			p.mu.Lock()
			defer p.mu.Unlock()
			p.t.Fatalf("%s: not done after %s; the sink has written up to %v, flushed %v, the state file saved %v (expected: written %v, flushed %v)",
				what, waitFor, p.written, p.flushedCP, p.storedCP, p.m.pos, p.m.flushed)
		}
	}
}

// Open starts a new run of the pipeline (the last one crashed first, if it
// runs) and returns the checkpoint the sink's Open returned. The source
// waits in its Open until Replay.
func (p *Pipeline) Open() change.Checkpoint {
	p.t.Helper()
	p.Crash()
	spec := engine.Spec{
		Pipeline: engine.Pipeline{Name: PipelineName, State: p.state, OnError: "dead_letter"},
		Sources: []engine.SourceNode{{Name: sourceName, Type: "sinktest", New: func(engine.Build) (engine.Source, error) {
			return &memSource{p: p}, nil
		}}},
		Sinks: []engine.SinkNode{{Name: "sink", Type: "sinktest", From: []engine.Ref{{Name: sourceName}}, New: func(b engine.Build) (engine.Sink, error) {
			s, err := p.target.New(b)
			if err != nil {
				return nil, err
			}
			return &probe{p: p, inner: s}, nil
		}}},
	}
	g, err := engine.Compile(spec, p.log)
	if err != nil {
		p.t.Fatalf("engine.Compile: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &runState{cancel: cancel, done: make(chan struct{})}
	p.mu.Lock()
	p.gate, p.opening, p.run = make(chan struct{}), 0, run
	p.hold, p.holding, p.written = false, false, change.Checkpoint{}
	opens, batchSize := p.opens, p.BatchSize
	p.mu.Unlock()
	go func() {
		err := g.Run(ctx, engine.RunOptions{
			Logger: p.log, StatePath: p.state, BatchSize: batchSize,
			Linger: time.Hour, MinFlushInterval: time.Nanosecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond,
		})
		p.mu.Lock()
		run.err = err
		close(run.done)
		p.notify()
		p.mu.Unlock()
	}()
	p.wait("opening the pipeline", func() bool { return p.opens > opens && p.opening > 0 })
	p.mu.Lock()
	cp := p.openedCP.Clone()
	if batchSize <= 0 {
		batchSize = p.sinkBatch
	}
	p.mu.Unlock()
	if batchSize <= 0 {
		batchSize = 1000
	}
	p.m.start(cp, batchSize)
	return cp.Clone()
}

// Crash ends the run at once (a forced stop, or a killed process): the
// engine closes the sink without flushing what it has not flushed.
func (p *Pipeline) Crash() {
	p.t.Helper()
	p.mu.Lock()
	run := p.run
	p.run = nil
	p.mu.Unlock()
	if run == nil {
		return
	}
	run.cancel()
	select {
	case <-run.done:
	case <-time.After(waitFor):
		p.t.Fatalf("the pipeline did not end within %s of its cancellation", waitFor)
	}
	if run.err != nil && !errors.Is(run.err, context.Canceled) {
		p.t.Fatalf("the pipeline ended with %v before the crash", run.err)
	}
}

// stop ends the run when the case ends.
func (p *Pipeline) stop() {
	p.mu.Lock()
	run := p.run
	p.run = nil
	p.mu.Unlock()
	if run != nil {
		run.cancel()
		<-run.done
	}
}

// Replay lets the source of the run Open started deliver again what the
// checkpoint it was opened from does not cover, and waits until the
// engine has written and flushed it.
func (p *Pipeline) Replay() {
	p.t.Helper()
	p.mu.Lock()
	select {
	case <-p.gate:
		p.mu.Unlock()
		p.t.Fatal("sinktest: Replay without an Open before it")
	default:
	}
	close(p.gate)
	var all []change.Event
	for _, b := range p.batches {
		all = append(all, b...)
	}
	p.mu.Unlock()
	p.m.write(all, false)
	p.settle("replaying")
}

// Restart is a crash, a new run's Open and the source's replay; it
// returns the checkpoint the sink's Open returned.
func (p *Pipeline) Restart() change.Checkpoint {
	p.t.Helper()
	cp := p.Open()
	p.Replay()
	return cp
}

// Read has the source deliver one batch, and waits until the engine has
// written it and flushed what it can.
func (p *Pipeline) Read(batch ...change.Event) {
	p.t.Helper()
	p.deliver(batch, false)
	p.settle("reading a batch")
}

// ReadUnflushed has the source deliver one batch and waits until the
// engine has written it; the Flush that would follow is held back, never
// reaching the sink, until the next Crash, which must come next.
func (p *Pipeline) ReadUnflushed(batch ...change.Event) {
	p.t.Helper()
	p.deliver(batch, true)
	flush := p.m.write(batch, true)
	want := p.m.pos.Clone()
	p.wait("writing a batch, its flush held back", func() bool {
		return p.reached(want) && (!flush || p.holding)
	})
}

func (p *Pipeline) deliver(batch []change.Event, hold bool) {
	p.t.Helper()
	for _, e := range batch {
		if e.Position.Source != sourceName {
			p.t.Fatalf("sinktest: an event of source %q: the source is %q", e.Position.Source, sourceName)
		}
	}
	p.mu.Lock()
	if p.run == nil {
		p.mu.Unlock()
		p.t.Fatal("sinktest: Read while the pipeline is not running: Open it")
	}
	if p.hold {
		p.mu.Unlock()
		p.t.Fatal("sinktest: Read after ReadUnflushed: Crash first")
	}
	select {
	case <-p.gate:
	default:
		p.mu.Unlock()
		p.t.Fatal("sinktest: Read after Open: Replay first")
	}
	p.hold = hold
	p.batches = append(p.batches, slices.Clone(batch))
	p.notify()
	p.mu.Unlock()
	if !hold {
		p.m.write(batch, false)
	}
}

// settle waits until the sink has written what the model wrote and the
// last flush the model did is flushed and saved.
func (p *Pipeline) settle(what string) {
	p.t.Helper()
	want, flushed := p.m.pos.Clone(), p.m.flushed.Clone()
	p.wait(what, func() bool {
		return p.reached(want) && maps.Equal(p.flushedCP, flushed) && maps.Equal(p.storedCP, flushed)
	})
}

// reached reports whether the sink's latest instance has written up to
// want, or was opened there; p.mu is held.
func (p *Pipeline) reached(want change.Checkpoint) bool {
	for st, pos := range want {
		if p.written[st] != pos && p.openedCP[st] != pos {
			return false
		}
	}
	return true
}

// Checkpoint is the position of every event written so far (but those
// the engine holds back).
func (p *Pipeline) Checkpoint() change.Checkpoint { return p.m.pos.Clone() }

// Flushed is the checkpoint of the last Flush.
func (p *Pipeline) Flushed() change.Checkpoint {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushedCP.Clone()
}

// Flushes counts the sink's successful Flush calls.
func (p *Pipeline) Flushes() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flushes
}

// Rejects are the RejectErrors the sink returned.
func (p *Pipeline) Rejects() []*engine.RejectError {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.rejects)
}

// memSource is the pipeline's source.
type memSource struct {
	p    *Pipeline
	from change.Checkpoint
	// next is the index of the next batch to deliver; -1 until the
	// replay after Open.
	next int
}

func (s *memSource) Open(ctx context.Context, from change.Checkpoint, _ engine.State) error {
	p := s.p
	p.mu.Lock()
	gate := p.gate
	p.opening++
	p.notify()
	p.mu.Unlock()
	select {
	case <-gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.from, s.next = from.Clone(), -1
	return nil
}

func (s *memSource) Read(ctx context.Context) ([]change.Event, error) {
	p := s.p
	for {
		p.mu.Lock()
		var out []change.Event
		switch {
		case s.next < 0: // the replay: everything so far, in one batch
			for _, b := range p.batches {
				out = append(out, b...)
			}
			s.next = len(p.batches)
		case s.next < len(p.batches):
			out = slices.Clone(p.batches[s.next])
			s.next++
		}
		ch := p.changed
		p.mu.Unlock()
		out = slices.DeleteFunc(out, func(e change.Event) bool { return s.from.Covers(e.Position) })
		if len(out) > 0 {
			return out, nil
		}
		if out == nil {
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
}

func (s *memSource) Ack(context.Context, change.Checkpoint) error { return nil }
func (s *memSource) Close() error                                 { return nil }

// probe is the sink under test as the engine sees it: it passes every
// call on and notes what it saw.
type probe struct {
	p     *Pipeline
	inner engine.Sink
}

var (
	_ engine.SaveNotifier = (*probe)(nil)
	_ engine.BatchSizer   = (*probe)(nil)
)

func (s *probe) Open(ctx context.Context, saved []byte) (change.Checkpoint, error) {
	cp, err := s.inner.Open(ctx, saved)
	if err != nil {
		return cp, err
	}
	p := s.p
	p.mu.Lock()
	p.openedCP, p.written, p.sinkBatch = cp.Clone(), change.Checkpoint{}, s.BatchSize()
	if p.openedCP == nil {
		p.openedCP = change.Checkpoint{}
	}
	p.opens++
	p.notify()
	p.mu.Unlock()
	return cp, nil
}

func (s *probe) Write(ctx context.Context, events []change.Event) error {
	err := s.inner.Write(ctx, events)
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		for i := range events {
			p.written.Advance(events[i].Position)
		}
	}
	s.rejected(err)
	p.notify()
	return err
}

func (s *probe) Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error) {
	p := s.p
	p.mu.Lock()
	if p.hold {
		p.holding = true
		p.notify()
		p.mu.Unlock()
		<-ctx.Done()
		return nil, ctx.Err()
	}
	p.mu.Unlock()
	saved, err := s.inner.Flush(ctx, cp)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		p.flushedCP = cp.Clone()
		p.flushes++
	}
	s.rejected(err)
	p.notify()
	return saved, err
}

// rejected notes a RejectError; p.mu is held.
func (s *probe) rejected(err error) {
	var rej *engine.RejectError
	if !errors.As(err, &rej) {
		return
	}
	p := s.p
	for _, r := range p.rejects {
		if r.Event.Position == rej.Event.Position {
			p.broken = fmt.Sprintf("the sink rejected %s at %s %s again after it was dead-lettered and written as its Mark: %v",
				rej.Event.QualifiedTable(), rej.Event.Position.Stream(), rej.Event.Position, err)
		}
	}
	p.rejects = append(p.rejects, rej)
}

func (s *probe) Close() error { return s.inner.Close() }

// Saved is engine.SaveNotifier: the state file holds the bytes of the
// Flush that brought the sink to cp.
func (s *probe) Saved(cp change.Checkpoint) {
	if n, ok := s.inner.(engine.SaveNotifier); ok {
		n.Saved(cp)
	}
	p := s.p
	p.mu.Lock()
	p.storedCP = cp.Clone()
	p.notify()
	p.mu.Unlock()
}

// BatchSize is the sink's own (engine.BatchSizer), which the model
// follows too.
func (s *probe) BatchSize() int {
	n := 0
	if b, ok := s.inner.(engine.BatchSizer); ok {
		n = b.BatchSize()
	}
	return n
}
