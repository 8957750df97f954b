package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// run is one attempt of Graph.Run: components opened from the
// checkpoints, stages started, everything closed at the end. A retry
// builds a new run with new components.
type run struct {
	g      *Graph
	opts   RunOptions
	store  *state.Store
	log    *slog.Logger
	policy string

	sources map[string]Source
	sinks   map[string]Sink
	opened  map[string]change.Checkpoint // per sink, what Open returned
	// openedTime is, per sink, the commit time saved with its checkpoint.
	openedTime map[string]time.Time
	// lags follows, per sink, what it was handed and has not committed.
	lags   map[string]*lagTracker
	obs    Observer
	skip   map[string]*rejects
	inputs map[string]chan routed
	// queued holds the bytes of routed batches not yet written.
	queued *semaphore.Weighted
	// upstream counts, per sink, the source stages still sending to it;
	// the last one to finish closes the sink's input.
	upstream map[string]*atomic.Int32
	commits  chan commit
	// sinksLeft counts sink stages still running; the last one closes
	// commits.
	sinksLeft atomic.Int32
	// progress reports that the checkpointer saved something, which
	// resets the retry backoff.
	progress atomic.Bool
}

// routed is one source batch's part for one sink. done, called once the
// sink stage has written it, gives back the batch's queued bytes when
// every sink that got a part is done.
type routed struct {
	events []change.Event
	done   func()
}

// commit is a sink's durable Flush, on its way to the checkpointer.
type commit struct {
	sink  string
	cp    change.Checkpoint
	saved []byte
	// commitTime is the source commit time of the last change cp covers.
	commitTime time.Time
}

func newRun(g *Graph, opts RunOptions, store *state.Store, log *slog.Logger, policy string) *run {
	return &run{
		g: g, opts: opts, store: store, log: log, policy: policy,
		sources: map[string]Source{}, sinks: map[string]Sink{}, opened: map[string]change.Checkpoint{},
		openedTime: map[string]time.Time{}, lags: map[string]*lagTracker{}, obs: opts.Observer,
		skip: map[string]*rejects{}, inputs: map[string]chan routed{},
		queued:   semaphore.NewWeighted(opts.QueueBytes),
		upstream: map[string]*atomic.Int32{},
	}
}

// sinkStage is the dead-letter stage name of a sink.
func sinkStage(name string) string { return "sink." + name }

// transformStage names a transform's stage in dead letters and failures.
func transformStage(name string) string { return "transform." + name }

// run opens, runs the stages and closes; see Graph.Run.
func (r *run) run(ctx context.Context) error {
	defer r.closeAll()
	if err := r.open(ctx); err != nil {
		return err
	}
	grp, gctx := errgroup.WithContext(ctx)
	// readCtx ends reads: cancelled by Stop (graceful) or by gctx.
	readCtx, stopReading := context.WithCancel(gctx)
	defer stopReading()
	go func() {
		select {
		case <-r.opts.Stop:
			stopReading()
		case <-readCtx.Done():
		}
	}()

	r.commits = make(chan commit, len(r.sinks))
	r.sinksLeft.Store(int32(len(r.sinks)))
	if len(r.sinks) == 0 {
		close(r.commits) // nothing will commit: the checkpointer ends at once
	}
	for name, src := range r.sources {
		grp.Go(func() error { return r.readSource(gctx, readCtx, name, src) })
	}
	for name := range r.sinks {
		grp.Go(func() error { return r.writeSink(gctx, name) })
	}
	grp.Go(func() error { return r.checkpoint(gctx) })
	// Snapshot requests are taken while the sources read, and not after:
	// a pipeline whose sources are all finished is done.
	reqCtx, stopRequests := context.WithCancel(readCtx)
	requests := make(chan struct{})
	go func() { defer close(requests); r.takeSnapshotRequests(reqCtx) }()
	err := grp.Wait()
	stopRequests()
	<-requests
	return err
}

// open builds and opens every sink, then every source from the lowest
// checkpoint of its sinks.
func (r *run) open(ctx context.Context) error {
	b := Build{Pipeline: r.g.Spec.Pipeline, Logger: r.log, Observer: r.obs}
	for _, s := range r.g.Spec.Sinks {
		sink, err := s.New(b)
		if err != nil {
			return fmt.Errorf("sink %q: %w", s.Name, err)
		}
		r.sinks[s.Name] = sink
		rec, err := r.store.Sink(s.Name)
		if err != nil {
			return Permanent(err)
		}
		cp, err := sink.Open(ctx, rec.Saved)
		if err != nil {
			return fmt.Errorf("sink %q: open: %w", s.Name, err)
		}
		if cp == nil {
			cp = change.Checkpoint{}
		}
		r.opened[s.Name] = cp
		r.openedTime[s.Name] = rec.CommitTime
		r.lags[s.Name] = newLagTracker(cp)
		r.lags[s.Name].committed(cp, rec.CommitTime)
		r.reportLag(s.Name)
		if r.skip[s.Name], err = r.rejected(s.Name, cp); err != nil {
			return Permanent(err)
		}
		r.inputs[s.Name] = make(chan routed, r.opts.QueueLen)
		r.upstream[s.Name] = &atomic.Int32{}
	}
	for _, s := range r.g.Spec.Sources {
		sinks := r.g.SinksOf(s.Name)
		if len(sinks) == 0 {
			r.log.Warn("source is read by no sink; not opening it", "source", s.Name)
			continue
		}
		src, err := s.New(b)
		if err != nil {
			return fmt.Errorf("source %q: %w", s.Name, err)
		}
		r.sources[s.Name] = src
		if rs, ok := src.(ResumeSetter); ok {
			rs.SetResume(r.committedFunc(s.Name))
		}
		from := r.frontier(s.Name, r.opened)
		if err := src.Open(ctx, from, r.store.Corner("source", s.Name)); err != nil {
			return fmt.Errorf("source %q: open: %w", s.Name, err)
		}
		if err := checkResumed(s.Name, src, from); err != nil {
			return err
		}
		for _, sink := range sinks {
			r.upstream[sink].Add(1)
		}
		r.log.Debug("source opened", "source", s.Name, "from", fmt.Sprint(from))
	}
	for name, n := range r.upstream {
		if n.Load() == 0 {
			close(r.inputs[name]) // nothing feeds it: it flushes nothing and ends
		}
	}
	r.obs.Phase(PhaseRunning)
	return nil
}

// reportLag passes a sink's lag to the observer and the status file.
func (r *run) reportLag(sink string) {
	r.lags[sink].report(func(l SinkLag) {
		r.store.SetBehind(sink, l.BehindSince)
		r.obs.Lag(sink, l)
	})
}

// rejects are a sink's dead-lettered events that it must not write
// again: it writes their Marks instead.
type rejects struct {
	positions map[change.Position]bool
	// rows holds the rejected rows (After) by table and key: a snapshot
	// that starts over (nothing of it was committed) reads rows again at
	// new positions, and must pass over a row whose refused content was
	// dead-lettered already — as a snapshot row or as the insert or update
	// that wrote it — rather than dead-letter it again on every attempt.
	// A row whose content has changed since is a new change and goes on.
	rows map[string][]change.Row
}

func (r *rejects) has(e *change.Event) bool {
	if r.positions[e.Position] {
		return true
	}
	if e.Op != change.Snapshot || len(r.rows) == 0 {
		return false
	}
	for _, row := range r.rows[rowID(e)] {
		if sameRow(row, e.After) {
			return true
		}
	}
	return false
}

// sameRow compares two rows by value (times by instant: a row read back
// from the state file may carry another *time.Location).
func sameRow(a, b change.Row) bool {
	if a.Len() != b.Len() {
		return false
	}
	for c, av := range a.All() {
		bv, ok := b.Lookup(c)
		if !ok {
			return false
		}
		if at, ok := av.(time.Time); ok {
			if bt, ok := bv.(time.Time); !ok || !at.Equal(bt) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(av, bv) {
			return false
		}
	}
	return true
}

// rowID names a row by its table and key.
func rowID(e *change.Event) string {
	var b strings.Builder
	b.WriteString(e.QualifiedTable())
	for k, v := range e.Key.Sorted() {
		fmt.Fprintf(&b, "\x00%s=%T:%v", k, v, v)
	}
	return b.String()
}

// rejected loads the sink's dead-lettered events that its checkpoint does
// not yet cover (by position), and the rows of every dead-lettered event
// (by table, key and content) until it is replayed or purged.
func (r *run) rejected(sink string, cp change.Checkpoint) (*rejects, error) {
	skip := &rejects{positions: map[change.Position]bool{}, rows: map[string][]change.Row{}}
	var after uint64
	for {
		page, err := r.store.Letters(sinkStage(sink), after, 1000)
		if err != nil || len(page) == 0 {
			return skip, err
		}
		for _, l := range page {
			if !cp.Covers(l.Event.Position) {
				skip.positions[l.Event.Position] = true
			}
			if !l.Event.After.IsZero() && l.Event.Key.Len() > 0 {
				id := rowID(&l.Event)
				skip.rows[id] = append(skip.rows[id], l.Event.After)
			}
		}
		after = page[len(page)-1].ID
	}
}

// frontier returns, for one source, the lowest of the checkpoints of the
// sinks downstream of it, restricted to that source's streams.
func (r *run) frontier(source string, cps map[string]change.Checkpoint) change.Checkpoint {
	var list []change.Checkpoint
	for _, sink := range r.g.SinksOf(source) {
		list = append(list, cps[sink])
	}
	min := change.Min(list...)
	for s := range min {
		if s.Source != source {
			delete(min, s)
		}
	}
	return min
}

// closeAll closes every component, sources first (nothing reads any
// more), logging what fails: Close promises nothing.
func (r *run) closeAll() {
	for name, src := range r.sources {
		if err := src.Close(); err != nil {
			r.log.Warn("closing source", "source", name, "err", err)
		}
	}
	for name, sink := range r.sinks {
		if err := sink.Close(); err != nil {
			r.log.Warn("closing sink", "sink", name, "err", err)
		}
	}
}

// readSource is a source's stage: read a batch, route it through the
// transforms, hand each sink its part. A full sink input blocks here, so
// a slow sink stops the source reading.
func (r *run) readSource(ctx, readCtx context.Context, name string, src Source) error {
	defer func() {
		for _, sink := range r.g.SinksOf(name) {
			if r.upstream[sink].Add(-1) == 0 {
				close(r.inputs[sink])
			}
		}
	}()
	for {
		if readCtx.Err() != nil {
			return r.endRead(ctx)
		}
		batch, err := src.Read(readCtx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.log.Info("source finished", "source", name)
				return nil
			}
			if readCtx.Err() != nil {
				return r.endRead(ctx)
			}
			r.obs.Failed("source."+name, err)
			return fmt.Errorf("source %q: %w", name, err)
		}
		if len(batch) == 0 {
			continue
		}
		snapshot := 0
		for i := range batch {
			if batch[i].Op == change.Snapshot {
				snapshot++
			}
		}
		r.obs.Read(name, len(batch), snapshot)
		r.store.AddSnapshotRows(name, snapshot)
		perSink, failed := r.g.Route(name, batch)
		if len(failed) > 0 {
			if perSink, err = r.failures(name, perSink, failed); err != nil {
				return err
			}
		}
		if err := r.hand(ctx, batch, perSink); err != nil {
			return err
		}
	}
}

// hand sends each sink its part of a batch, once the batch's estimated
// size fits under QueueBytes.
func (r *run) hand(ctx context.Context, batch []change.Event, perSink map[string][]change.Event) error {
	size := min(batchSize(batch), r.opts.QueueBytes)
	if err := r.queued.Acquire(ctx, size); err != nil {
		return err
	}
	var left atomic.Int32
	for _, events := range perSink {
		if len(events) > 0 {
			left.Add(1)
		}
	}
	if left.Load() == 0 {
		r.queued.Release(size)
		return nil
	}
	done := func() {
		if left.Add(-1) == 0 {
			r.queued.Release(size)
		}
	}
	now := time.Now()
	for sink, events := range perSink {
		if len(events) == 0 {
			continue
		}
		r.lags[sink].add(events, now)
		r.reportLag(sink)
		select {
		case r.inputs[sink] <- routed{events: events, done: done}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// endRead tells a graceful stop (nil) from a cancellation.
func (r *run) endRead(ctx context.Context) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// failures applies on_error to events the transforms could not process.
// Under dead_letter they are stored (in one state-file update) and, where
// they ended a source transaction, replaced by their Mark for every sink
// of the source, so that the sinks still reach that boundary.
func (r *run) failures(source string, perSink map[string][]change.Event, failed []Failure) (map[string][]change.Event, error) {
	letters := make([]state.Letter, 0, len(failed))
	var marks []change.Event
	for _, f := range failed {
		if err := r.verdict(f.Stage, f.Event, f.Err); err != nil {
			r.obs.Failed(f.Stage, err)
			return nil, err
		}
		letters = append(letters, state.Letter{Stage: f.Stage, Err: f.Err.Error(), Event: f.Event})
		if f.Event.Boundary {
			marks = append(marks, f.Event.AsMark())
		}
	}
	added, err := r.store.AddLetters(letters)
	if err != nil {
		return nil, Permanent(err)
	}
	for _, l := range added {
		r.logLetter(l)
		r.obs.DeadLettered(l.Stage)
	}
	if len(marks) > 0 {
		for _, sink := range r.g.SinksOf(source) {
			perSink[sink] = mergeByPosition(perSink[sink], marks)
		}
	}
	return perSink, nil
}

// verdict applies on_error to an event a stage could not process: nil
// under dead_letter (store it and carry on), else the error that ends the
// attempt.
func (r *run) verdict(stage string, e change.Event, cause error) error {
	ee := &EventError{Stage: stage, Event: e, Err: cause}
	switch r.policy {
	case policyDeadLetter:
		return nil
	case policyFail:
		return Permanent(ee)
	}
	// retry and pause: retrying cannot fix an event, so pause.
	return &pauseError{cause: ee}
}

func (r *run) logLetter(l state.Letter) {
	e := &l.Event
	r.log.Warn("event dead-lettered", "stage", l.Stage, "table", e.QualifiedTable(), "position", e.Position.Stream().String()+" "+e.Position.String(), "letter", l.ID, "err", l.Err)
}

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
	return fmt.Errorf("sink %q: %s: %w", w.name, what, err)
}
