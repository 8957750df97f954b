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

func pos(source string, off int) change.Position {
	return change.Position{Source: source, Offset: uint64(off)}
}

func TestRunDeliversInOrderAndAcksTheEnd(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", 1000, 3, 64)
	tg := h.sink("out", "a")
	if err := h.run(t, context.Background(), RunOptions{BatchSize: 50}); err != nil {
		t.Fatal(err)
	}
	// 1000 events, boundaries every 3rd: the last transaction (event 999)
	// never ends, so it is not committed.
	wantSequence(t, "committed", tg.rows(), 999, nil)
	last := src.acks[len(src.acks)-1]
	if want := pos("a", 998); last[want.Stream()] != want {
		t.Errorf("last ack %v, want %v", last, want)
	}
	st, err := state.Inspect(h.spec.Pipeline.State)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Sinks["out"].Checkpoint[change.Stream{Source: "a"}]; got != pos("a", 998) {
		t.Errorf("saved sink checkpoint %v", got)
	}
	if got := st.Sources["a"].Acked[change.Stream{Source: "a"}]; got != pos("a", 998) {
		t.Errorf("saved source ack %v", got)
	}
	if tg.flushes < 2 {
		t.Errorf("%d flushes: batches were not cut", tg.flushes)
	}
}

func TestFanOutSlowAndFastSinksAckTheMinimum(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", 600, 1, 20)
	fast := h.sink("fast", "a")
	slow := h.sink("slow", "a")
	gate := make(chan struct{})
	h.sinkSetup["slow"] = func(k *fakeSink) { k.gate, k.entered = gate, make(chan struct{}, 1) }
	go func() {
		for {
			select {
			case gate <- struct{}{}:
				time.Sleep(200 * time.Microsecond)
			case <-time.After(5 * time.Second):
				return
			}
		}
	}()
	// Every ack must be committed by both sinks when it is made.
	var violations []string
	var mu sync.Mutex
	src.onAck = func(cp change.Checkpoint) {
		p := cp[change.Stream{Source: "a"}]
		for name, tg := range map[string]*target{"fast": fast, "slow": slow} {
			tg.mu.Lock()
			c, ok := tg.cp[p.Stream()]
			tg.mu.Unlock()
			if !ok || c.Compare(p) < 0 {
				mu.Lock()
				violations = append(violations, name+" had not committed "+p.String()+" when it was acked")
				mu.Unlock()
			}
		}
	}
	if err := h.run(t, context.Background(), RunOptions{BatchSize: 40}); err != nil {
		t.Fatal(err)
	}
	wantSequence(t, "fast", fast.rows(), 600, nil)
	wantSequence(t, "slow", slow.rows(), 600, nil)
	if len(violations) > 0 {
		t.Fatalf("acks ahead of a sink: %v", violations)
	}
	if last := src.acks[len(src.acks)-1]; last[change.Stream{Source: "a"}] != pos("a", 599) {
		t.Errorf("last ack %v", last)
	}
}

func TestFanInKeepsEachStreamInOrder(t *testing.T) {
	h := newHarness(t, "")
	h.source("a", 300, 2, 7)
	h.source("b", 500, 5, 11)
	tg := h.sink("out", "a", "b")
	if err := h.run(t, context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	per := map[string][]change.Event{}
	for _, e := range tg.rows() {
		per[e.Position.Source] = append(per[e.Position.Source], e)
	}
	wantSequence(t, "stream a", per["a"], 300, nil)
	wantSequence(t, "stream b", per["b"], 500, nil)
	if tg.cp[change.Stream{Source: "a"}] != pos("a", 299) || tg.cp[change.Stream{Source: "b"}] != pos("b", 499) {
		t.Errorf("checkpoint %v", tg.cp)
	}
}

// readPastBlockedSink runs an endless source of 10-event batches into a
// sink blocked in its first Write, and returns how many events the source
// read meanwhile; then it unblocks the sink and stops gracefully.
func readPastBlockedSink(t *testing.T, opts RunOptions) int {
	h := newHarness(t, "")
	src := h.source("a", -1, 1, 10)
	h.sink("out", "a")
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	h.sinkSetup["out"] = func(k *fakeSink) { k.gate, k.entered = gate, entered }
	stop := make(chan struct{})
	opts.Stop = stop
	done := make(chan error, 1)
	go func() { done <- h.run(t, context.Background(), opts) }()
	<-entered // the sink is blocked in its first Write
	// Give the source every chance to run ahead.
	for range 50 {
		time.Sleep(2 * time.Millisecond)
	}
	n := src.readCount()
	close(stop)
	close(gate) // let the sink drain
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBlockedSinkStopsTheSource(t *testing.T) {
	// At most: the batch in the blocked Write, QueueLen batches queued,
	// and one batch the source holds while it waits to send.
	if n := readPastBlockedSink(t, RunOptions{QueueLen: 2}); n > 10*(1+2+1) {
		t.Fatalf("source read %d events past a blocked sink; the queue is not bounded", n)
	}
}

func TestQueuedBytesAreBounded(t *testing.T) {
	// Room for less than one batch: a batch goes alone. So: the batch in
	// the blocked Write, and one the source waits to hand on.
	if n := readPastBlockedSink(t, RunOptions{QueueLen: 100, QueueBytes: 1}); n > 10*2 {
		t.Fatalf("source read %d events with room for one batch", n)
	}
}

func TestGracefulStopDrainsAndCommitsEverythingRead(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", -1, 1, 25)
	tg := h.sink("out", "a")
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- h.run(t, context.Background(), RunOptions{Stop: stop}) }()
	for src.readCount() < 2000 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	read := src.readCount()
	wantSequence(t, "committed after stop", tg.rows(), read, nil)
	if last := src.acks[len(src.acks)-1]; last[change.Stream{Source: "a"}] != pos("a", read-1) {
		t.Errorf("last ack %v, want offset %d", last, read-1)
	}
}

func TestRestartResumesWithoutDuplicates(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", -1, 4, 16)
	tg := h.sink("out", "a")
	// First run: forced stop (cancel) in the middle of the stream. Every
	// full batch of 8 is committed at once (no MinFlushInterval), so the
	// checkpoint is still far below 2000 when the cancel lands.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.run(t, ctx, RunOptions{BatchSize: 8, MinFlushInterval: time.Nanosecond}) }()
	for len(tg.rows()) < 500 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("forced stop: %v", err)
	}
	// Second run to the end of a now finite stream.
	src.n = 2000
	if err := h.run(t, context.Background(), RunOptions{BatchSize: 8, MinFlushInterval: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	wantSequence(t, "committed over two runs", tg.rows(), 2000, nil)
	if src.from[change.Stream{Source: "a"}].Offset == 0 {
		t.Errorf("second run opened from %v, not from the checkpoint", src.from)
	}
}

func TestTransientErrorsAreRetriedFromCheckpoints(t *testing.T) {
	h := newHarness(t, "retry")
	src := h.source("a", 400, 2, 10)
	src.failAt, src.failRead = 150, errors.New("connection reset by peer")
	tg := h.sink("out", "a")
	h.sinkSetup["out"] = func(k *fakeSink) { k.failFlush, k.flushErr = 3, errors.New("deadlock detected") }
	if err := h.run(t, context.Background(), RunOptions{BatchSize: 20}); err != nil {
		t.Fatal(err)
	}
	wantSequence(t, "committed", tg.rows(), 400, nil)
}

func TestPermanentErrorEndsRun(t *testing.T) {
	h := newHarness(t, "retry")
	src := h.source("a", 100, 1, 10)
	src.failAt, src.failRead = 50, Permanent(errors.New("permission denied for table t"))
	h.sink("out", "a")
	err := h.run(t, context.Background(), RunOptions{})
	if !IsPermanent(err) || !strings.Contains(err.Error(), `source "a"`) || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Run = %v", err)
	}
}

func TestDeadLetterTransformFailures(t *testing.T) {
	h := newHarness(t, "dead_letter")
	h.source("a", 100, 1, 10)
	h.transform("odd", failEvery{10}, "a")
	tg := h.sink("out", "transform.odd")
	if err := h.run(t, context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
	wantSequence(t, "committed", tg.rows(), 100, func(i int) bool { return i%10 == 0 })
	letters := h.letters(t)
	if len(letters) != 10 || letters[0].Stage != "transform.odd" || !strings.Contains(letters[0].Err, "multiple of 10") {
		t.Fatalf("letters = %+v", letters)
	}
	// The failed events' marks reached the sink, so its checkpoint passed them.
	if tg.cp[change.Stream{Source: "a"}] != pos("a", 99) {
		t.Errorf("checkpoint %v", tg.cp)
	}
}

func (h *harness) letters(t *testing.T) []state.Letter {
	t.Helper()
	st, err := state.Open(h.spec.Pipeline.State)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.Letters("", 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestDeadLetterSinkRejectSkipsOnlyThatEvent(t *testing.T) {
	h := newHarness(t, "dead_letter")
	h.source("a", 200, 1, 16)
	tg := h.sink("out", "a")
	other := h.sink("other", "a")
	bad := pos("a", 77)
	h.sinkSetup["out"] = func(k *fakeSink) { k.reject = &bad }
	if err := h.run(t, context.Background(), RunOptions{BatchSize: 30}); err != nil {
		t.Fatal(err)
	}
	wantSequence(t, "rejecting sink", tg.rows(), 200, func(i int) bool { return i == 77 })
	wantSequence(t, "other sink", other.rows(), 200, nil)
	letters := h.letters(t)
	if len(letters) != 1 || letters[0].Stage != "sink.out" || letters[0].Event.Position != bad || !strings.Contains(letters[0].Err, "value too long") {
		t.Fatalf("letters = %+v", letters)
	}

	// Replay once the target accepts it: the event reaches the sink and
	// leaves the queue.
	h.sinkSetup["out"] = nil
	res, err := h.graph(t).ReplayDeadLetters(context.Background(), ReplayOptions{})
	if err != nil || res.Replayed != 1 || res.Failed != 0 {
		t.Fatalf("replay = %+v, %v", res, err)
	}
	rows := tg.rows()
	if last := rows[len(rows)-1]; last.Position != bad {
		t.Errorf("replayed event not written: last row %v", last.Position)
	}
	if n := len(h.letters(t)); n != 0 {
		t.Errorf("%d letters left after replay", n)
	}
}

func TestDeadLetterRejectLoopPauses(t *testing.T) {
	h := newHarness(t, "dead_letter")
	h.source("a", 50, 1, 16)
	h.sink("out", "a")
	bad := pos("a", 7)
	stop := make(chan struct{})
	rejects := 0
	h.sinkSetup["out"] = func(k *fakeSink) {
		k.reject, k.rejectMarks = &bad, true
		k.onReject = func() {
			if rejects++; rejects == 2 {
				close(stop) // the second time, it should pause
			}
		}
	}
	err := h.run(t, context.Background(), RunOptions{Stop: stop})
	if !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "again after it was dead-lettered") {
		t.Fatalf("Run = %v, want a pause instead of restarting for ever", err)
	}
}

func TestFailPolicyNamesStageTableAndPosition(t *testing.T) {
	h := newHarness(t, "fail")
	h.source("a", 200, 1, 16)
	tg := h.sink("out", "a")
	bad := pos("a", 42)
	h.sinkSetup["out"] = func(k *fakeSink) { k.reject = &bad }
	err := h.run(t, context.Background(), RunOptions{})
	var ee *EventError
	if !errors.As(err, &ee) || ee.Stage != "sink.out" || ee.Event.Position != bad {
		t.Fatalf("Run = %v", err)
	}
	for _, want := range []string{"sink.out", "public.t", "a 42.0", "value too long"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	for _, e := range tg.rows() {
		if e.Position.Offset >= 42 {
			t.Fatalf("committed %v at or after the failing event", e.Position)
		}
	}
}

// pausedObserver signals on c when the run pauses.
type pausedObserver struct {
	nopObserver
	c chan struct{}
}

func (o pausedObserver) Phase(p Phase) {
	if p == PhasePaused {
		select {
		case o.c <- struct{}{}:
		default:
		}
	}
}

func TestPauseKeepsPositionsUntilStopped(t *testing.T) {
	for _, policy := range []string{"pause", "retry"} {
		t.Run(policy, func(t *testing.T) {
			h := newHarness(t, policy)
			src := h.source("a", 200, 1, 16)
			tg := h.sink("out", "a")
			bad := pos("a", 42)
			h.sinkSetup["out"] = func(k *fakeSink) { k.reject = &bad }
			stop := make(chan struct{})
			done := make(chan error, 1)
			paused := pausedObserver{c: make(chan struct{}, 1)}
			go func() { done <- h.run(t, context.Background(), RunOptions{Stop: stop, Observer: paused}) }()
			select {
			case err := <-done:
				t.Fatalf("Run returned %v before it was stopped", err)
			case <-paused.c:
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not pause")
			}
			reads := src.readCount()
			time.Sleep(50 * time.Millisecond) // paused: nothing is read
			close(stop)
			err := <-done
			if !errors.Is(err, ErrPaused) || !strings.Contains(err.Error(), "a 42.0") {
				t.Fatalf("Run = %v, want ErrPaused naming the event", err)
			}
			if src.readCount() != reads {
				t.Errorf("source read while paused")
			}
			for _, e := range tg.rows() {
				if e.Position.Offset >= 42 {
					t.Fatalf("committed %v at or after the rejected event", e.Position)
				}
			}
		})
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	for n := 1; n < 40; n++ {
		d := backoff(100*time.Millisecond, 2*time.Second, n)
		base := min(100*time.Millisecond<<min(n-1, 30), 2*time.Second)
		if d < base*3/4 || d > base*5/4 {
			t.Fatalf("attempt %d: %v outside ±25%% of %v", n, d, base)
		}
	}
}

func TestPipelineWithoutSinksEnds(t *testing.T) {
	h := newHarness(t, "")
	h.source("a", 10, 1, 5)
	if err := h.run(t, context.Background(), RunOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestBatchSizeGrowsWithValues(t *testing.T) {
	small := []change.Event{{After: change.RowOf(map[string]any{"a": "x"})}}
	big := []change.Event{{After: change.RowOf(map[string]any{"a": strings.Repeat("x", 1<<20)})}}
	if s, b := batchBytes(small), batchBytes(big); b-s < 1<<20-1 {
		t.Errorf("a 1 MiB value adds %d bytes to the estimate", b-s)
	}
}

// TestTricklingSourceCommitsAtMostEveryMinFlushInterval: a source that
// hands over a few events at a time with pauses leaves the sink idle
// between batches; the sink must not commit after every batch but at most
// once per MinFlushInterval, and still commit everything.
func TestTricklingSourceCommitsAtMostEveryMinFlushInterval(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", 600, 1, 2)
	src.pause = 2 * time.Millisecond
	tg := h.sink("out", "a")
	const interval = 40 * time.Millisecond
	start := time.Now()
	if err := h.run(t, context.Background(), RunOptions{MinFlushInterval: interval}); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	wantSequence(t, "committed", tg.rows(), 600, nil)
	batches := 600 / 2
	if limit := int(elapsed/interval) + 2; tg.flushes > limit || tg.flushes >= batches/2 {
		t.Errorf("%d flushes for %d batches in %v: more than one per %v", tg.flushes, batches, elapsed, interval)
	}
	if tg.flushes < 2 {
		t.Errorf("%d flushes in %v: an idle sink must still commit what it holds", tg.flushes, elapsed)
	}
	t.Logf("%d batches, %d flushes in %v", batches, tg.flushes, elapsed.Round(time.Millisecond))
}

func TestRejectsMatchRefusedRowsReadAgainBySnapshot(t *testing.T) {
	refused := change.RowOf(map[string]any{"id": int64(2), "body": "too long", "at": time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	r := &rejects{positions: map[change.Position]bool{}, rows: map[string][]change.Row{}}
	letter := change.Event{Op: change.Insert, Schema: "public", Table: "notes", Key: change.RowOf(map[string]any{"id": int64(2)}), After: refused}
	r.rows[rowID(&letter)] = append(r.rows[rowID(&letter)], letter.After)

	again := change.Event{Op: change.Snapshot, Schema: "public", Table: "notes", Key: change.RowOf(map[string]any{"id": int64(2)}),
		After:    change.RowOf(map[string]any{"id": int64(2), "body": "too long", "at": time.Date(2026, 1, 1, 1, 0, 0, 0, time.FixedZone("CET", 3600))}),
		Position: change.Position{Source: "app", Offset: 99}}
	if !r.has(&again) {
		t.Error("the refused row read again by a restarted snapshot is not recognised")
	}
	changed := again
	changed.After = change.RowOf(map[string]any{"id": int64(2), "body": "fixed", "at": refused.Get("at")})
	if r.has(&changed) {
		t.Error("a row whose content changed since it was refused is skipped")
	}
	insert := again
	insert.Op = change.Insert
	if r.has(&insert) {
		t.Error("a streamed change is matched by content; only positions identify those")
	}
}

// TestSinkLingerSpacesItsCommits: a sink's linger replaces
// MinFlushInterval for that sink alone: the trickling source of the test
// above commits at most once per linger into a sink with linger = 150ms,
// while its neighbour without one commits far more often.
func TestSinkLingerSpacesItsCommits(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", 400, 1, 2)
	src.pause = 2 * time.Millisecond
	slow := h.sink("slow", "a")
	fast := h.sink("fast", "a")
	h.spec.Sinks[0].Linger = 150 * time.Millisecond
	start := time.Now()
	if err := h.run(t, context.Background(), RunOptions{MinFlushInterval: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	wantSequence(t, "committed with linger", slow.rows(), 400, nil)
	wantSequence(t, "committed without", fast.rows(), 400, nil)
	if limit := int(elapsed/(150*time.Millisecond)) + 2; slow.flushes > limit {
		t.Errorf("%d flushes in %v with linger = 150ms: more than one per linger", slow.flushes, elapsed)
	}
	if fast.flushes <= 2*slow.flushes {
		t.Errorf("the sink without linger flushed %d times, the one with it %d: the linger did not apply to its own sink alone", fast.flushes, slow.flushes)
	}
	t.Logf("%v: %d flushes with linger = 150ms, %d without", elapsed.Round(time.Millisecond), slow.flushes, fast.flushes)
}

// sizedSink is a sink that states its batch size (engine.BatchSizer).
type sizedSink struct {
	*fakeSink
	n int
}

func (s sizedSink) BatchSize() int { return s.n }

// TestSinkStatesItsBatchSize: the run's BatchSize wins, else the sink's
// own, else 1000.
func TestSinkStatesItsBatchSize(t *testing.T) {
	for _, c := range []struct {
		opts int
		sink Sink
		want int
	}{
		{0, sizedSink{&fakeSink{}, 7}, 7},
		{50, sizedSink{&fakeSink{}, 7}, 50},
		{0, sizedSink{&fakeSink{}, 0}, 1000},
		{0, &fakeSink{}, 1000},
	} {
		r := &run{opts: RunOptions{BatchSize: c.opts}}
		if got := r.sinkBatchSize(c.sink); got != c.want {
			t.Errorf("RunOptions.BatchSize %d, sink %T: batch %d, want %d", c.opts, c.sink, got, c.want)
		}
	}
}
