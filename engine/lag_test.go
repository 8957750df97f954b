package engine

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

func timedEvent(i int, at time.Time, boundary bool) change.Event {
	return change.Event{Op: change.Insert, Table: "t", Tx: change.Tx{CommitTime: at},
		Position: change.Position{Source: "a", Offset: uint64(i)}, Boundary: boundary}
}

func TestLagTracker(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := base.Add(time.Hour)
	tr := newLagTracker(change.Checkpoint{{Source: "a"}: pos("a", 1)})
	tr.add([]change.Event{timedEvent(0, base, true), timedEvent(1, base, true)}, now)
	if l := tr.lag(); !l.BehindSince.IsZero() || l.Seconds(now) != 0 {
		t.Fatalf("events the sink committed before it opened count as lag: %+v", l)
	}
	tr.add([]change.Event{timedEvent(2, base.Add(2*time.Second), true), timedEvent(3, base.Add(3*time.Second), true)}, now)
	tr.add([]change.Event{timedEvent(4, time.Time{}, true)}, now)
	if got := tr.lag().BehindSince; !got.Equal(base.Add(2 * time.Second)) {
		t.Fatalf("behind since %v, want the oldest uncommitted commit time", got)
	}
	if s := tr.lag().Seconds(now); s != 3598 {
		t.Fatalf("lag %v s, want 3598", s)
	}
	tr.committed(change.Checkpoint{{Source: "a"}: pos("a", 3)}, base.Add(3*time.Second))
	if got := tr.lag(); !got.BehindSince.Equal(now) || !got.CommitTime.Equal(base.Add(3*time.Second)) {
		t.Fatalf("after committing 3: %+v; want behind since the read time of event 4 (it has no commit time)", got)
	}
	tr.committed(change.Checkpoint{{Source: "a"}: pos("a", 4)}, base.Add(3*time.Second))
	if l := tr.lag(); !l.BehindSince.IsZero() || l.Seconds(now) != 0 {
		t.Fatalf("caught up but lag %+v", l)
	}
}

func TestLagTrackerIsBounded(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newLagTracker(change.Checkpoint{})
	for i := range 10 * maxLagEntries {
		tr.add([]change.Event{timedEvent(i, base.Add(time.Duration(i)*time.Second), true)}, base.Add(time.Hour))
	}
	if n := len(tr.streams[change.Stream{Source: "a"}]); n > maxLagEntries {
		t.Fatalf("%d entries for one stream", n)
	}
	tr.committed(change.Checkpoint{{Source: "a"}: pos("a", 10)}, time.Time{})
	if got := tr.lag().BehindSince; !got.Equal(base.Add(11 * time.Second)) {
		t.Fatalf("behind since %v, want event 11's commit time", got)
	}
	tr.committed(change.Checkpoint{{Source: "a"}: pos("a", 10*maxLagEntries-2)}, time.Time{})
	if got := tr.lag().BehindSince; got.IsZero() || got.After(base.Add(time.Duration(10*maxLagEntries-1)*time.Second)) {
		t.Fatalf("behind since %v: the merged tail must keep its oldest time, never a later one", got)
	}
}

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu                    sync.Mutex
	read, snapshot, wrote int
	flushed, flushes      int
	lags                  map[string]SinkLag
	maxLag                map[string]time.Duration
	phases                []Phase
}

func newRecorder() *recorder {
	return &recorder{lags: map[string]SinkLag{}, maxLag: map[string]time.Duration{}}
}

func (r *recorder) Read(_ string, n, snap int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.read += n
	r.snapshot += snap
}

func (r *recorder) Written(_ string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.wrote += n
}

func (r *recorder) Flushed(_ string, n int, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushed += n
	r.flushes++
}

func (r *recorder) Lag(sink string, l SinkLag) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lags[sink] = l
}

func (r *recorder) Failed(string, error)    {}
func (r *recorder) DeadLettered(string)     {}
func (r *recorder) Restarted()              {}
func (r *recorder) Phase(p Phase)           { r.mu.Lock(); r.phases = append(r.phases, p); r.mu.Unlock() }
func (r *recorder) lag(sink string) SinkLag { r.mu.Lock(); defer r.mu.Unlock(); return r.lags[sink] }

// timedSource gives fakeSource's events commit times, one second apart
// from base.
type timedSource struct {
	*fakeSource
	base time.Time
}

func (s timedSource) Read(ctx context.Context) ([]change.Event, error) {
	out, err := s.fakeSource.Read(ctx)
	for i := range out {
		out[i].Tx.CommitTime = s.base.Add(time.Duration(out[i].Position.Offset) * time.Second)
	}
	return out, err
}

// TestLagBuildsBehindABlockedSinkAndClearsOnceCaughtUp blocks a sink, checks
// the observer and the status file report it behind since the oldest
// commit time it has not committed, then unblocks it and checks lag drops
// to 0 with the last commit time saved beside the checkpoint.
func TestLagBuildsBehindABlockedSinkAndClearsOnceCaughtUp(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", 100, 10, 10)
	h.sink("out", "a")
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	h.sinkSetup["out"] = func(k *fakeSink) { k.gate, k.entered = gate, entered }
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	reg := h.registry()
	reg.Sources["fake"] = func(Build, string) (Source, error) { return timedSource{src, base}, nil }
	g, err := h.compile(reg)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	done := make(chan error, 1)
	go func() {
		done <- g.Run(context.Background(), RunOptions{Logger: testLogger(t), Observer: rec})
	}()
	<-entered
	l := rec.lag("out")
	if !l.BehindSince.Equal(base) {
		t.Fatalf("blocked sink: behind since %v, want the first event's commit time %v", l.BehindSince, base)
	}
	if s := l.Seconds(time.Now()); s < 3600 {
		t.Fatalf("blocked sink: lag %v s, want ≥ 3600", s)
	}
	st := waitStatus(t, h.spec.Pipeline.State, func(st state.Status) bool { return !st.Sinks["out"].BehindSince.IsZero() })
	if sk := st.Sinks["out"]; !sk.Live || !sk.BehindSince.Equal(base) {
		t.Fatalf("status file while blocked: %+v", sk)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l = rec.lag("out")
	if !l.BehindSince.IsZero() || l.Seconds(time.Now()) != 0 {
		t.Fatalf("caught up: lag %+v, want 0", l)
	}
	last := base.Add(99 * time.Second)
	if !l.CommitTime.Equal(last) || l.Committed[change.Stream{Source: "a"}] != pos("a", 99) {
		t.Fatalf("caught up: committed %v at %v, want offset 99 at %v", l.Committed, l.CommitTime, last)
	}
	if rec.read != 100 || rec.wrote != 100 || rec.flushed != 100 || rec.snapshot != 0 {
		t.Fatalf("counts: read %d, written %d, flushed %d, snapshot %d; want 100, 100, 100, 0", rec.read, rec.wrote, rec.flushed, rec.snapshot)
	}
	if got := rec.phases; len(got) < 3 || got[0] != PhaseStarting || got[1] != PhaseRunning || got[len(got)-1] != PhaseStopped {
		t.Fatalf("phases %v", got)
	}
	store, err := state.Open(h.spec.Pipeline.State)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	saved, err := store.Sink("out")
	if err != nil {
		t.Fatal(err)
	}
	if !saved.CommitTime.Equal(last) {
		t.Fatalf("state file: commit time %v, want %v", saved.CommitTime, last)
	}
}

// waitStatus polls the status file of a running pipeline until ok.
func waitStatus(t *testing.T, path string, ok func(state.Status) bool) state.Status {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := state.Inspect(path)
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status file never showed the expected state; last %+v (err %v)", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freshSource is a source that always starts afresh, like a PostgreSQL
// source whose slot was dropped behind its back.
type freshSource struct{ *fakeSource }

func (freshSource) Resumed() bool { return false }

func TestSourceThatCannotResumeStopsThePipeline(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", 10, 1, 5)
	tg := h.sink("out", "a")
	reg := h.registry()
	reg.Sources["fake"] = func(Build, string) (Source, error) { return freshSource{src}, nil }
	g, err := h.compile(reg)
	if err != nil {
		t.Fatal(err)
	}
	// First run: nothing committed yet, so starting afresh is right.
	if err := g.Run(context.Background(), RunOptions{Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	src.n = 20
	err = g.Run(context.Background(), RunOptions{Logger: testLogger(t), MinBackoff: 1, MaxBackoff: 10})
	if !errors.Is(err, ErrPositionLost) || !IsPermanent(err) || !strings.Contains(err.Error(), "sluice drop") {
		t.Fatalf("rerun from a lost position: %v; want a permanent ErrPositionLost saying what to do", err)
	}
	if n := len(tg.rows()); n != 10 {
		t.Fatalf("sink got %d rows; nothing may be written after the position was lost", n)
	}
}

// BenchmarkLagTracker measures what lag tracking adds per batch: one add
// of a 1000-event part and one commit covering it.
func BenchmarkLagTracker(b *testing.B) {
	base := time.Now()
	batch := make([]change.Event, 1000)
	tr := newLagTracker(change.Checkpoint{})
	off := 0
	for b.Loop() {
		for i := range batch {
			batch[i] = timedEvent(off, base, true)
			off++
		}
		tr.add(batch, base)
		tr.committed(change.Checkpoint{{Source: "a"}: pos("a", off-1)}, base)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/event")
}
