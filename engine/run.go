package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// RunOptions configures Graph.Run. The zero value of each field means its
// documented default.
type RunOptions struct {
	// Logger receives progress, retries and pauses; default slog.Default().
	Logger *slog.Logger
	// Stop is closed to stop gracefully (first SIGINT/SIGTERM): sources
	// stop reading, what is in flight drains, sinks flush at the last
	// source-transaction boundary, checkpoints are saved and acknowledged,
	// and Run returns nil. Cancelling Run's ctx is the forced stop: Run
	// returns ctx.Err() at once and a restart redoes uncommitted work.
	// nil means never.
	Stop <-chan struct{}
	// StatePath is the bbolt state file; default Pipeline.StatePath.
	StatePath string
	// BatchSize is how many events a sink takes before it flushes at the
	// next boundary; default the sink's batch_size (table sinks) or batch
	// (webhooks), else 1000.
	BatchSize int
	// Linger is how long a sink holds written events before it flushes at
	// the next boundary although BatchSize is not reached; default 200ms.
	// A sink whose input is idle flushes at once.
	Linger time.Duration
	// MinFlushInterval is the least time between two flushes of a sink:
	// an idle sink commits what it holds once this much time has passed
	// since its last commit, and a sink catching up commits a full batch
	// no sooner either (it writes on, and commits more at once). It
	// bounds the commit rate when a source delivers in small bursts or
	// fast, and adds at most this much latency. Default 5ms: at 1,000
	// changes a second, commit-to-visible in MariaDB measured p50 8.5 ms
	// and p99 17 ms with it, 16.8 ms and 31-34 ms with 20ms, at the same
	// catch-up rate (a catching-up sink commits per batch_size anyway).
	MinFlushInterval time.Duration
	// QueueLen is how many batches each edge (source → sink) holds; a full
	// edge stops its source reading. Default 4.
	QueueLen int
	// QueueBytes caps the estimated size of the events routed but not yet
	// written by their sinks, over all edges: a source waits for room
	// before it hands on a batch, so wide rows cannot fill memory. A batch
	// larger than the cap goes alone. Default 16 MiB.
	QueueBytes int64
	// MinBackoff and MaxBackoff bound the exponential backoff (with
	// jitter) between retries of transient errors; defaults 500ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// Observer receives counts, flush timings, lag and phase changes as
	// they happen (package observe turns them into metrics); nil: none.
	Observer Observer
	// Resume resumes a paused pipeline: while paused, Run receives from
	// it, and each receive retries from the checkpoints, starting with
	// the event that paused (it pauses again, with the new error, if that
	// fails again). A resume request file beside the state file
	// (state.RequestResume, `sluice resume`) does the same. nil: only the
	// request file.
	Resume <-chan struct{}
}

func (o RunOptions) withDefaults(p Pipeline) RunOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StatePath == "" {
		o.StatePath = p.StatePath()
	}
	if o.Linger <= 0 {
		o.Linger = 200 * time.Millisecond
	}
	if o.MinFlushInterval <= 0 {
		o.MinFlushInterval = 5 * time.Millisecond
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 4
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 16 << 20
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	return o
}

// ErrPaused is wrapped by the error Run returns when it was stopped while
// paused (on_error = "pause", or a rejected row under "retry"): the
// positions were kept, nothing after the offending event was committed.
var ErrPaused = errors.New("pipeline paused")

// EventError is an event that a stage could not process, reported as it
// is under on_error = "fail" (and as the cause of a pause).
type EventError struct {
	Stage string // "transform.NAME" or "sink.NAME"
	Event change.Event
	Err   error
}

func (e *EventError) Error() string {
	return fmt.Sprintf("%s: %s at position %s %s: %v", e.Stage, e.Event.QualifiedTable(), e.Event.Position.Stream(), e.Event.Position, e.Err)
}

func (e *EventError) Unwrap() error { return e.Err }

// Error policies (Pipeline.OnError).
const (
	policyRetry      = "retry"
	policyDeadLetter = "dead_letter"
	policyPause      = "pause"
	policyFail       = "fail"
)

// errRestart asks Run to reopen everything from the checkpoints at once,
// without backoff: a sink rejected an event that is now dead-lettered and
// will be skipped.
var errRestart = errors.New("restart after dead-lettering a rejected event")

// pauseError asks Run to pause.
type pauseError struct{ cause error }

func (e *pauseError) Error() string { return e.cause.Error() }
func (e *pauseError) Unwrap() error { return e.cause }

// Run runs the pipeline until every source is exhausted (finite sources
// such as a file without follow), Stop is closed, or ctx is cancelled.
//
// Each attempt opens the state file's checkpoints: every sink's Open
// gives its committed checkpoint, every source opens from the lowest
// checkpoint of the sinks downstream of it, and every sink skips the
// events it already committed, so no sink sees an event twice. After each
// sink Flush the checkpointer saves the sink's checkpoint and bytes in the
// state file and then acknowledges to each source the lowest checkpoint
// of its sinks.
//
// Errors follow the pipeline's on_error (see the package documentation):
// transient errors are retried from the checkpoints with exponential
// backoff (retry, dead_letter), pause the pipeline (pause) or end Run
// (fail); permanent errors (IsPermanent) always end Run.
func (g *Graph) Run(ctx context.Context, opts RunOptions) error {
	opts = opts.withDefaults(g.Spec.Pipeline)
	log := opts.Logger.With("pipeline", g.Spec.Pipeline.Name)
	store, err := state.Open(opts.StatePath)
	if err != nil {
		opts.Observer.Phase(PhaseStarting)
		opts.Observer.Phase(PhaseFailed)
		return Permanent(err)
	}
	rec := &statusRecorder{Observer: opts.Observer, store: store}
	opts.Observer = rec
	rec.Phase(PhaseStarting)
	err = g.attempts(ctx, opts, store, log, rec)
	final := PhaseStopped
	if err != nil && ctx.Err() == nil && !errors.Is(err, ErrPaused) {
		final = PhaseFailed
	}
	rec.Phase(final)
	_ = store.Close()
	return err
}

// attempts runs attempts until one ends Run; see Run.
func (g *Graph) attempts(ctx context.Context, opts RunOptions, store *state.Store, log *slog.Logger, rec *statusRecorder) error {
	obs := opts.Observer
	policy := g.Spec.Pipeline.OnError
	if policy == "" {
		policy = policyRetry
	}
	attempt := 0
	for {
		rec.failed.Store(false)
		r := newRun(g, opts, store, log, policy)
		err := r.run(ctx)
		if r.progress.Load() {
			attempt = 0
		}
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, errRestart):
			log.Info("restarting from checkpoints without the dead-lettered event")
			obs.Restarted()
			obs.Phase(PhaseStarting)
			continue
		}
		if !rec.failed.Load() {
			rec.lastError("", err) // opening failed: no stage reported it
		}
		var pe *pauseError
		if errors.As(err, &pe) || (policy == policyPause && !IsPermanent(err)) {
			cause := err
			if pe != nil {
				cause = pe.cause
			}
			store.TakeResume() // a request made before this pause does not count
			rec.phase(PhasePaused, func(run *state.Run) { run.Paused = pausedOf(cause) })
			resumed, err := pause(ctx, opts.Stop, opts.Resume, store, log, cause)
			if !resumed {
				return err
			}
			log.Info("resuming: retrying from the checkpoints, starting with the event that paused")
			attempt = 0
			obs.Restarted()
			obs.Phase(PhaseStarting)
			continue
		}
		if IsPermanent(err) || policy == policyFail {
			return err
		}
		attempt++
		wait := backoff(opts.MinBackoff, opts.MaxBackoff, attempt)
		log.Warn("transient error; reopening from checkpoints", "err", err, "attempt", attempt, "backoff", wait)
		next := time.Now().Add(wait).UTC()
		rec.phase(PhaseRetrying, func(run *state.Run) { run.Attempt, run.NextRetry = attempt, next })
		if !sleep(ctx, opts.Stop, wait) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return nil
		}
		obs.Restarted()
		obs.Phase(PhaseStarting)
	}
}

// resumePoll is how often a paused pipeline looks for a resume request
// file (state.RequestResume).
const resumePoll = 200 * time.Millisecond

// pause keeps every position where it is and waits to be resumed
// (resumed true: a receive on resume, or a resume request file beside the
// state file), stopped or cancelled.
func pause(ctx context.Context, stop, resume <-chan struct{}, store *state.Store, log *slog.Logger, cause error) (resumed bool, err error) {
	log.Error("PIPELINE PAUSED: nothing more is read or written until `sluice resume` (or a restart); fix the cause (or set on_error = \"dead_letter\" to set such events aside) and resume", "err", cause)
	t := time.NewTicker(resumePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-stop:
			return false, fmt.Errorf("%w: %w", ErrPaused, cause)
		case <-resume:
			return true, nil
		case <-t.C:
			if store.TakeResume() {
				return true, nil
			}
		}
	}
}

// pausedOf describes the cause of a pause for the status file.
func pausedOf(cause error) *state.Paused {
	p := &state.Paused{Error: cause.Error()}
	var ee *EventError
	if errors.As(cause, &ee) {
		p.Stage, p.Table = ee.Stage, ee.Event.QualifiedTable()
		p.Position = ee.Event.Position.Stream().String() + " " + ee.Event.Position.String()
		p.Error = ee.Err.Error()
	}
	return p
}

// statusRecorder is the Observer that the engine hands its stages and the
// components it builds: it passes everything on to RunOptions.Observer
// and keeps the status file's phase, last error and Kafka lag.
type statusRecorder struct {
	Observer
	store *state.Store
	// failed reports that a stage reported an error in this attempt.
	failed atomic.Bool
}

var (
	_ RecoveryObserver  = (*statusRecorder)(nil)
	_ SourceLagObserver = (*statusRecorder)(nil)
)

func (r *statusRecorder) Failed(stage string, err error) {
	r.Observer.Failed(stage, err)
	r.failed.Store(true)
	r.lastError(stage, err)
}

func (r *statusRecorder) lastError(stage string, err error) {
	now := time.Now().UTC()
	r.store.UpdateRun(func(run *state.Run) {
		run.LastError = &state.LastError{Time: now, Stage: stage, Error: err.Error()}
	})
}

func (r *statusRecorder) Phase(p Phase) { r.phase(p, nil) }

// phase records p (and, with detail, its details) and writes the status
// file at once, so that `sluice status` sees a pause or a retry without
// waiting for the next periodic write.
func (r *statusRecorder) phase(p Phase, detail func(*state.Run)) {
	r.Observer.Phase(p)
	now := time.Now().UTC()
	r.store.UpdateRun(func(run *state.Run) {
		run.Phase, run.Since = p.String(), now
		run.Attempt, run.NextRetry, run.Paused = 0, time.Time{}, nil
		if detail != nil {
			detail(run)
		}
	})
	r.store.WriteStatus()
}

func (r *statusRecorder) Recovered(source string) { Recovered(r.Observer, source) }

func (r *statusRecorder) SourceLag(source string, parts []PartitionLag) {
	ReportSourceLag(r.Observer, source, parts)
	out := make([]state.KafkaPartition, len(parts))
	for i, p := range parts {
		out[i] = state.KafkaPartition{Topic: p.Topic, Partition: p.Partition, HighWatermark: p.HighWatermark, Committed: p.Committed, Lag: p.Lag()}
	}
	r.store.SetKafkaLag(source, out)
}

// backoff returns the wait before retry attempt n (1-based): exponential
// from min, capped at max, with ±25% jitter so that pipelines sharing a
// target do not retry in step.
func backoff(minWait, maxWait time.Duration, n int) time.Duration {
	d := minWait
	for i := 1; i < n && d < maxWait; i++ {
		d *= 2
	}
	d = min(d, maxWait)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return max(d+jitter, 0)
}

// sleep waits d and reports true, or false if stopped or cancelled first.
func sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
}
