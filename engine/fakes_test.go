package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// This file holds in-memory fakes of the engine's own interfaces (Source,
// Sink, Transform): no database is faked.

// fakeSource yields events [0, n) of one stream; every per-th event ends a
// transaction. With n < 0 it never ends (like follow = true).
type fakeSource struct {
	name  string
	n     int
	per   int
	batch int

	mu    sync.Mutex
	next  int // index of the next event
	read  int // events handed out, all runs of this instance
	from  change.Checkpoint
	acks  []change.Checkpoint
	onAck func(change.Checkpoint) // called under no lock
	// failRead fails Read once, with this error, when next reaches failAt.
	failAt   int
	failRead error
	// pause is how long each Read waits first: a source that trickles.
	pause time.Duration
}

func (s *fakeSource) Open(_ context.Context, from change.Checkpoint, _ State) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.from = from
	s.next = 0
	if p, ok := from[change.Stream{Source: s.name}]; ok {
		s.next = int(p.Offset) + 1
	}
	return nil
}

func (s *fakeSource) Read(ctx context.Context) ([]change.Event, error) {
	time.Sleep(s.pause)
	// A cancelled read returns no events, like a real source: it must not
	// count as read what it never hands over.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.failRead != nil && s.next >= s.failAt {
		err := s.failRead
		s.failRead = nil
		s.mu.Unlock()
		return nil, err
	}
	if s.n >= 0 && s.next >= s.n {
		s.mu.Unlock()
		return nil, io.EOF
	}
	var out []change.Event
	for len(out) < s.batch && (s.n < 0 || s.next < s.n) {
		out = append(out, fakeEvent(s.name, s.next, s.per))
		s.next++
	}
	s.read += len(out)
	s.mu.Unlock()
	return out, nil
}

func fakeEvent(source string, i, per int) change.Event {
	return change.Event{
		Op: change.Insert, Schema: "public", Table: "t",
		After:    change.RowOf(map[string]any{"id": int64(i)}),
		Position: change.Position{Source: source, Offset: uint64(i)},
		Boundary: (i+1)%per == 0,
	}
}

func (s *fakeSource) Ack(_ context.Context, cp change.Checkpoint) error {
	if s.onAck != nil {
		s.onAck(cp)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = append(s.acks, cp.Clone())
	return nil
}

func (s *fakeSource) Close() error { return nil }

func (s *fakeSource) readCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read
}

// target is what a fake sink writes into: it survives the sink (a new
// sink instance after a retry sees it), and keeps the checkpoint in the
// same "transaction" as the rows, like a database target.
type target struct {
	mu        sync.Mutex
	committed []change.Event // rows only, in commit order
	marks     int
	cp        change.Checkpoint
	flushes   int
}

func (t *target) rows() []change.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]change.Event(nil), t.committed...)
}

// fakeSink buffers writes and commits them on Flush.
type fakeSink struct {
	t       *target
	pending []change.Event
	// gate, when set, is received from before each Write (a slow or
	// blocked sink); entered is signalled before waiting.
	gate    chan struct{}
	entered chan struct{}
	// reject makes Write reject the event at this position; rejectMarks
	// rejects its Mark too (a misbehaving sink).
	reject      *change.Position
	rejectMarks bool
	onReject    func()
	// failFlush fails the flush with this number once (transient).
	failFlush int
	flushErr  error
}

func (k *fakeSink) Open(_ context.Context, saved []byte) (change.Checkpoint, error) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	if k.t.cp == nil {
		k.t.cp = change.Checkpoint{}
	}
	// The saved bytes must agree with the target (the engine saves what
	// Flush returned).
	if saved != nil {
		var cp change.Checkpoint
		if err := json.Unmarshal(saved, &cp); err != nil {
			return nil, err
		}
	}
	return k.t.cp.Clone(), nil
}

func (k *fakeSink) Write(ctx context.Context, events []change.Event) error {
	if k.gate != nil {
		select {
		case k.entered <- struct{}{}:
		default:
		}
		select {
		case <-k.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, e := range events {
		if k.reject != nil && (e.Op != change.Mark || k.rejectMarks) && e.Position == *k.reject {
			if k.onReject != nil {
				k.onReject()
			}
			return &RejectError{Event: e, Err: errors.New("value too long for column id")}
		}
	}
	k.pending = append(k.pending, events...)
	return nil
}

func (k *fakeSink) Flush(_ context.Context, cp change.Checkpoint) ([]byte, error) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.flushes++
	if k.flushErr != nil && k.t.flushes == k.failFlush {
		return nil, k.flushErr
	}
	for _, e := range k.pending {
		if e.Op == change.Mark {
			k.t.marks++
			continue
		}
		k.t.committed = append(k.t.committed, e)
	}
	k.pending = nil
	k.t.cp = cp.Clone()
	return json.Marshal(cp)
}

func (k *fakeSink) Close() error { return nil }

// failEvery is a transform that fails events whose id is a multiple of n.
type failEvery struct{ n int64 }

func (f failEvery) Apply(in []change.Event) ([]change.Event, []Failure) {
	var out []change.Event
	var failed []Failure
	for _, e := range in {
		if id, _ := e.After.Get("id").(int64); id%f.n == 0 {
			failed = append(failed, Failure{Event: e, Err: fmt.Errorf("transform %q: id %d is a multiple of %d", "odd", id, f.n)})
			continue
		}
		out = append(out, e)
	}
	return out, failed
}

// harness builds a pipeline of fake sources, transforms and sinks: an
// engine.Spec whose nodes get their constructors, by type, from kinds.
type harness struct {
	spec       Spec
	sources    map[string]*fakeSource
	targets    map[string]*target
	sinkSetup  map[string]func(*fakeSink)
	transforms map[string]Transform
}

// kinds maps node types to constructors, given the node's name, as
// package components maps a pipeline file's kinds.
type kinds struct {
	Sources   map[string]func(Build, string) (Source, error)
	Sinks     map[string]func(Build, string) (Sink, error)
	Transform func(Build, string) (Transform, error)
}

func newHarness(t *testing.T, policy string) *harness {
	return &harness{
		spec:    Spec{Pipeline: Pipeline{Name: "t", State: filepath.Join(t.TempDir(), "state.db"), OnError: policy}},
		sources: map[string]*fakeSource{}, targets: map[string]*target{}, sinkSetup: map[string]func(*fakeSink){},
		transforms: map[string]Transform{},
	}
}

func (h *harness) source(name string, n, per, batch int) *fakeSource {
	s := &fakeSource{name: name, n: n, per: per, batch: batch}
	h.sources[name] = s
	h.spec.Sources = append(h.spec.Sources, SourceNode{Type: "fake", Name: name})
	return s
}

func refs(names ...string) []Ref {
	var out []Ref
	for _, n := range names {
		name, transform := strings.CutPrefix(n, "transform.")
		out = append(out, Ref{Transform: transform, Name: name})
	}
	return out
}

func (h *harness) sink(name string, from ...string) *target {
	t := &target{}
	h.targets[name] = t
	h.spec.Sinks = append(h.spec.Sinks, SinkNode{Type: "fake", Name: name, From: refs(from...)})
	return t
}

func (h *harness) transform(name string, tr Transform, from ...string) {
	h.transforms[name] = tr
	h.spec.Transforms = append(h.spec.Transforms, TransformNode{Name: name, From: refs(from...)})
}

func (h *harness) registry() kinds {
	return kinds{
		Sources: map[string]func(Build, string) (Source, error){
			"fake": func(_ Build, name string) (Source, error) { return h.sources[name], nil },
		},
		Sinks: map[string]func(Build, string) (Sink, error){
			"fake": func(_ Build, name string) (Sink, error) {
				k := &fakeSink{t: h.targets[name]}
				if f := h.sinkSetup[name]; f != nil {
					f(k)
				}
				return k, nil
			},
		},
		Transform: func(_ Build, name string) (Transform, error) { return h.transforms[name], nil },
	}
}

// compile gives each node of the spec its constructor from k and
// compiles the graph.
func (h *harness) compile(k kinds) (*Graph, error) {
	spec := h.spec
	spec.Sources, spec.Transforms, spec.Sinks = slices.Clone(spec.Sources), slices.Clone(spec.Transforms), slices.Clone(spec.Sinks)
	for i, n := range spec.Sources {
		newSource := k.Sources[n.Type]
		spec.Sources[i].New = func(b Build) (Source, error) { return newSource(b, n.Name) }
	}
	for i, n := range spec.Transforms {
		spec.Transforms[i].New = func(b Build) (Transform, error) { return k.Transform(b, n.Name) }
	}
	for i, n := range spec.Sinks {
		newSink := k.Sinks[n.Type]
		spec.Sinks[i].New = func(b Build) (Sink, error) { return newSink(b, n.Name) }
	}
	return Compile(spec, nil)
}

func (h *harness) graph(t *testing.T) *Graph {
	t.Helper()
	g, err := h.compile(h.registry())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (h *harness) run(t *testing.T, ctx context.Context, opts RunOptions) error {
	t.Helper()
	if opts.MinBackoff == 0 {
		opts.MinBackoff, opts.MaxBackoff = 1, 10
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	return h.graph(t).Run(ctx, opts)
}

// offsets lists the offsets of events.
func offsets(events []change.Event) []int {
	out := make([]int, len(events))
	for i, e := range events {
		out[i] = int(e.Position.Offset)
	}
	return out
}

// wantSequence checks that events are exactly offsets [0, n) minus skip,
// in order, once each.
func wantSequence(t *testing.T, what string, events []change.Event, n int, skip func(int) bool) {
	t.Helper()
	var want []int
	for i := 0; i < n; i++ {
		if skip == nil || !skip(i) {
			want = append(want, i)
		}
	}
	got := offsets(events)
	if len(got) != len(want) {
		t.Fatalf("%s: %d events, want %d (first differences: %v)", what, len(got), len(want), firstDiff(got, want))
	}
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("%s: %s", what, d)
	}
}

func firstDiff(got, want []int) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d got offset %d, want %d", i, got[i], want[i])
		}
	}
	return ""
}

// testLogger sends the engine's logs to the test's log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
