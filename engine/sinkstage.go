package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// sinkBatchSize is the count after which a sink flushes at the next
// boundary: RunOptions.BatchSize, else the sink's own (BatchSizer), else
// 1000.
func (r *run) sinkBatchSize(s Sink) int {
	if r.opts.BatchSize > 0 {
		return r.opts.BatchSize
	}
	if b, ok := s.(BatchSizer); ok && b.BatchSize() > 0 {
		return b.BatchSize()
	}
	return 1000
}

func (r *run) sinkNode(name string) *SinkNode {
	for i := range r.g.Spec.Sinks {
		if r.g.Spec.Sinks[i].Name == name {
			return &r.g.Spec.Sinks[i]
		}
	}
	return nil
}

// sinkWriter is the state of one sink's stage.
type sinkWriter struct {
	r      *run
	name   string
	sink   Sink
	opened change.Checkpoint // what Open returned: skip what it covers
	skip   *rejects
	pos    change.Checkpoint // the position of every event written
	// open holds the streams whose last written event is not a boundary:
	// the sink may flush only when it is empty, so that it never commits
	// part of a source transaction (of any of the sources it reads).
	open map[change.Stream]bool
	// held is the tail of the last batch after its last boundary, not
	// yet written.
	held      []change.Event
	pending   int       // events written since the last flush
	since     time.Time // when the first of them was written
	lastFlush time.Time // when the last flush ended
	batchSize int
	// minFlush is the least time between two flushes and linger how long
	// written events may wait for one (RunOptions, or the sink's linger).
	minFlush, linger time.Duration
	// commitTime is the source commit time of the last written change
	// that has one.
	commitTime time.Time
	// lanes write the parallel streams of a Laned sink (nil until the
	// first such event).
	lanes *lanes
	// mu guards sent and sentTime: what the checkpointer was last told
	// of the sink, the sink's own flushes and its lanes' merged.
	mu       sync.Mutex
	sent     change.Checkpoint
	sentTime time.Time
}

// writeSink is a sink's stage: write what arrives, flush at boundaries
// when the batch is full, the linger has passed or the input is idle, and
// pass each flush to the checkpointer.
func (r *run) writeSink(ctx context.Context, name string) (err error) {
	defer func() {
		if r.sinksLeft.Add(-1) == 0 {
			close(r.commits)
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, errRestart) {
			r.obs.Failed(sinkStage(name), err)
		}
	}()
	cfg := r.sinkNode(name)
	w := &sinkWriter{
		r: r, name: name, sink: r.sinks[name], opened: r.opened[name], skip: r.skip[name],
		pos: r.opened[name].Clone(), open: map[change.Stream]bool{}, batchSize: r.sinkBatchSize(r.sinks[name]),
		commitTime: r.openedTime[name], minFlush: r.opts.MinFlushInterval, linger: r.opts.Linger,
		sent: r.opened[name].Clone(), sentTime: r.openedTime[name],
	}
	defer func() { err = w.lanes.close(err) }()
	if cfg != nil && cfg.Linger > 0 { // the sink's linger
		w.minFlush, w.linger = cfg.Linger, max(r.opts.Linger, cfg.Linger)
	}
	in := r.inputs[name]
	for {
		var batch routed
		var ok bool
		select {
		case batch, ok = <-in:
		case err := <-w.lanes.failures():
			return err
		default:
			batch, ok, err = w.idle(ctx, in)
			if err != nil {
				return err
			}
		}
		if !ok {
			return w.flushIfDue(ctx, true)
		}
		if err := w.write(ctx, batch); err != nil {
			return err
		}
	}
}

// write writes one batch, cut after each boundary where a flush is due.
// Events after the batch's last boundary are held back (at most one
// batch) until the next batch arrives, so that a sink whose input goes
// idle or ends in the middle of a transaction can still flush everything
// up to that transaction. Each Write gets a slice of its own (sinks may
// keep it until Flush). A Laned sink's parallel streams go to its lanes.
func (w *sinkWriter) write(ctx context.Context, batch routed) error {
	// The slices are made at the first event they get, as large as the
	// rest of the batch: a batch of one parallel stream (a snapshot
	// reader's chunk) costs no slice for the sink's own events, and none
	// grows.
	events := w.held
	w.held = nil
	last := -1
	var parallel map[change.Stream][]change.Event
	laned, isLaned := w.sink.(Laned)
	for i := range batch.events {
		e := batch.events[i]
		if w.opened.Covers(e.Position) {
			continue
		}
		if w.skip.has(&e) {
			e = e.AsMark()
		}
		if st := e.Position.Stream(); isLaned && st.Parallel() {
			if parallel == nil {
				parallel = map[change.Stream][]change.Event{}
			}
			if parallel[st] == nil {
				parallel[st] = make([]change.Event, 0, len(batch.events)-i)
			}
			parallel[st] = append(parallel[st], e)
			continue
		}
		if cap(events) == len(events) {
			events = append(make([]change.Event, 0, len(events)+len(batch.events)-i), events...)
		}
		if e.Boundary {
			last = len(events)
		}
		events = append(events, e)
	}
	written, err := w.toLanes(ctx, laned, parallel, batch.done)
	if err != nil {
		return err
	}
	defer written()
	if w.lanes != nil && !allSnapshot(events) {
		if err := w.endLanes(); err != nil {
			return err
		}
	}
	if last >= 0 && last < len(events)-1 {
		w.held = events[last+1:]
		events = events[: last+1 : last+1]
	}
	start := 0
	for i := range events {
		w.note(&events[i])
		if events[i].Boundary && w.flushDue(false) {
			if err := w.send(ctx, events[start:i+1:i+1]); err != nil {
				return err
			}
			if err := w.flush(ctx); err != nil {
				return err
			}
			start = i + 1
		}
	}
	return w.send(ctx, events[start:])
}

// toLanes hands each parallel stream's events to its lane. It returns
// the func the stage calls once it has written the rest of the batch:
// done is called when that and the lanes' writes are all done, so that
// the batch leaves the queue's bytes only then.
func (w *sinkWriter) toLanes(ctx context.Context, laned Laned, parallel map[change.Stream][]change.Event, done func()) (func(), error) {
	if len(parallel) == 0 {
		return done, nil
	}
	if w.lanes == nil {
		w.lanes = newLanes(ctx, w, laned)
	}
	var left sync.WaitGroup
	left.Add(len(parallel) + 1)
	go func() { left.Wait(); done() }()
	given := 0
	for st, events := range parallel {
		if err := w.lanes.give(st, events, left.Done); err != nil {
			for range len(parallel) - given + 1 {
				left.Done() // the parts never given, and the stage's
			}
			return func() {}, err
		}
		given++
	}
	return left.Done, nil
}

// endLanes is called before the sink's own changes go on past a copy:
// the parallel streams are over by then (change.Stream.Parallel), so the
// lanes commit what they hold and close, and the sink writes alone again,
// its checkpoint holding the lanes' streams too (a Laned sink writes its
// whole checkpoint again once its lanes are closed). A later copy (after
// a lost slot) makes lanes anew.
func (w *sinkWriter) endLanes() error {
	ls := w.lanes
	if err := ls.sync(); err != nil {
		return err
	}
	w.lanes = nil
	if err := ls.close(nil); err != nil {
		return err
	}
	for _, l := range ls.byName {
		for _, p := range l.pos {
			w.pos.Advance(p)
		}
	}
	return nil
}

// allSnapshot reports whether every event is a Snapshot row.
func allSnapshot(events []change.Event) bool {
	for i := range events {
		if events[i].Op != change.Snapshot {
			return false
		}
	}
	return true
}

// note records a written event's position and boundary.
func (w *sinkWriter) note(e *change.Event) {
	w.pos.Advance(e.Position)
	if !e.Tx.CommitTime.IsZero() {
		w.commitTime = e.Tx.CommitTime
	}
	if e.Boundary {
		delete(w.open, e.Position.Stream())
	} else {
		w.open[e.Position.Stream()] = true
	}
	if w.pending == 0 {
		w.since = time.Now()
	}
	w.pending++
}

// idle is the sink's wait for input when none is queued: it commits what
// is written first, so a quiet pipeline has nothing pending, but no sooner
// than MinFlushInterval after the last commit. A source that delivers in
// small bursts (one replication message at a time) would otherwise cost a
// target commit per burst: the interval lets bursts gather into one
// commit while keeping commit-to-visible latency within it.
func (w *sinkWriter) idle(ctx context.Context, in <-chan routed) (routed, bool, error) {
	if wait := w.minFlush - time.Since(w.lastFlush); wait > 0 && w.flushDue(true) {
		timer := time.NewTimer(wait)
		select {
		case batch, ok := <-in:
			timer.Stop()
			return batch, ok, nil
		case <-timer.C:
		case err := <-w.lanes.failures():
			timer.Stop()
			return routed{}, false, err
		case <-ctx.Done():
			timer.Stop()
			return routed{}, false, ctx.Err()
		}
	}
	if err := w.flushIfDue(ctx, true); err != nil {
		return routed{}, false, err
	}
	select {
	case batch, ok := <-in:
		return batch, ok, nil
	case err := <-w.lanes.failures():
		return routed{}, false, err
	case <-ctx.Done():
		return routed{}, false, ctx.Err()
	}
}

// flushDue reports whether the sink should flush now: it is at a boundary
// of every stream and has something to flush, and the batch is full (and
// MinFlushInterval has passed since the last flush), the linger has
// passed, or (idle) its input is empty.
func (w *sinkWriter) flushDue(idle bool) bool {
	if w.pending == 0 || len(w.open) > 0 {
		return false
	}
	full := w.pending >= w.batchSize && time.Since(w.lastFlush) >= w.minFlush
	return idle || full || time.Since(w.since) >= w.linger
}

func (w *sinkWriter) flushIfDue(ctx context.Context, idle bool) error {
	if !w.flushDue(idle) {
		return nil
	}
	return w.flush(ctx)
}

// send hands events to the sink.
func (w *sinkWriter) send(ctx context.Context, events []change.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := w.sink.Write(ctx, events); err != nil {
		return w.failed(ctx, "write", err)
	}
	w.r.obs.Written(w.name, len(events))
	return nil
}

// flush makes the written events durable and passes the checkpoint to the
// checkpointer.
func (w *sinkWriter) flush(ctx context.Context) error {
	cp := w.pos.Clone()
	start := time.Now()
	saved, err := w.sink.Flush(ctx, cp)
	if err != nil {
		return w.failed(ctx, "flush", err)
	}
	w.lastFlush = time.Now()
	n := w.pending
	w.pending = 0
	return w.committed(ctx, cp, saved, n, start, w.commitTime)
}

// committed passes a flush of the sink, or of one of its lanes (which
// commit their own streams), to the checkpointer: the sink's checkpoint
// is every stream's furthest committed position. commitTime is zero for
// a lane's flush, whose rows have none.
func (w *sinkWriter) committed(ctx context.Context, cp change.Checkpoint, saved []byte, n int, start time.Time, commitTime time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.r.obs.Flushed(w.name, n, time.Since(start))
	for _, p := range cp {
		w.sent.Advance(p)
	}
	if !commitTime.IsZero() {
		w.sentTime = commitTime
	}
	all := w.sent.Clone()
	w.r.lags[w.name].committed(all, w.sentTime)
	w.r.reportLag(w.name)
	select {
	case w.r.commits <- commit{sink: w.name, cp: all, saved: saved, commitTime: w.sentTime}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failed turns a Write or Flush error into the stage's result. A rejected
// event goes through on_error; under dead_letter the run restarts from
// the checkpoints and this sink writes the event's Mark instead.
func (w *sinkWriter) failed(ctx context.Context, what string, err error) error {
	var rej *RejectError
	if errors.As(err, &rej) {
		stage := sinkStage(w.name)
		if err := w.r.verdict(stage, rej.Event, rej.Err); err != nil {
			return err
		}
		l := state.Letter{Stage: stage, Err: rej.Err.Error(), Event: rej.Event}
		id, added, err := w.r.store.AddLetter(l)
		if err != nil {
			return Permanent(err)
		}
		if !added {
			// Already dead-lettered, so this run wrote only its Mark:
			// restarting would loop.
			return &pauseError{cause: fmt.Errorf("sink %q rejected %s at position %s %s again after it was dead-lettered (letter %d): %w",
				w.name, rej.Event.QualifiedTable(), rej.Event.Position.Stream(), rej.Event.Position, id, rej.Err)}
		}
		l.ID = id
		w.r.logLetter(l)
		w.r.obs.DeadLettered(stage)
		return errRestart
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return named("sink", w.name, what, err)
}
