package engine

import (
	"context"
	"errors"
	"fmt"
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
	}
	if cfg != nil && cfg.Linger > 0 { // the sink's linger
		w.minFlush, w.linger = cfg.Linger, max(r.opts.Linger, cfg.Linger)
	}
	in := r.inputs[name]
	for {
		var batch routed
		var ok bool
		select {
		case batch, ok = <-in:
		default:
			batch, ok, err = w.idle(ctx, in)
			if err != nil {
				return err
			}
		}
		if !ok {
			return w.flushIfDue(ctx, true)
		}
		if err := w.write(ctx, batch.events); err != nil {
			return err
		}
		batch.done()
	}
}

// write writes one batch, cut after each boundary where a flush is due.
// Events after the batch's last boundary are held back (at most one
// batch) until the next batch arrives, so that a sink whose input goes
// idle or ends in the middle of a transaction can still flush everything
// up to that transaction. Each Write gets a slice of its own (sinks may
// keep it until Flush).
func (w *sinkWriter) write(ctx context.Context, batch []change.Event) error {
	events := make([]change.Event, 0, len(w.held)+len(batch))
	events = append(events, w.held...)
	w.held = nil
	last := -1
	for i := range batch {
		e := batch[i]
		if w.opened.Covers(e.Position) {
			continue
		}
		if w.skip.has(&e) {
			e = e.AsMark()
		}
		if e.Boundary {
			last = len(events)
		}
		events = append(events, e)
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
	w.r.obs.Flushed(w.name, w.pending, w.lastFlush.Sub(start))
	w.pending = 0
	w.r.lags[w.name].committed(cp, w.commitTime)
	w.r.reportLag(w.name)
	select {
	case w.r.commits <- commit{sink: w.name, cp: cp, saved: saved, commitTime: w.commitTime}:
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
