package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
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
	// StatePath is the bbolt state file; default Config.Pipeline.State,
	// else ".sluice/NAME.db".
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
	// fast, and adds at most this much latency. Default 20ms.
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
}

func (o RunOptions) withDefaults(cfg *dsl.Config) RunOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StatePath == "" {
		o.StatePath = StatePath(cfg)
	}
	if o.Linger <= 0 {
		o.Linger = 200 * time.Millisecond
	}
	if o.MinFlushInterval <= 0 {
		o.MinFlushInterval = 20 * time.Millisecond
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

// StatePath returns the pipeline's state file: Config.Pipeline.State, else
// ".sluice/NAME.db".
func StatePath(cfg *dsl.Config) string {
	if cfg.Pipeline.State != "" {
		return cfg.Pipeline.State
	}
	return filepath.Join(".sluice", cfg.Pipeline.Name+".db")
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

// Error policies (dsl.Pipeline.OnError).
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
	opts = opts.withDefaults(g.Config)
	obs := opts.Observer
	obs.Phase(PhaseStarting)
	defer obs.Phase(PhaseStopped)
	log := opts.Logger.With("pipeline", g.Config.Pipeline.Name)
	store, err := state.Open(opts.StatePath)
	if err != nil {
		return Permanent(err)
	}
	defer store.Close()
	policy := g.Config.Pipeline.OnError
	if policy == "" {
		policy = policyRetry
	}
	attempt := 0
	for {
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
		var pe *pauseError
		if errors.As(err, &pe) || (policy == policyPause && !IsPermanent(err)) {
			cause := err
			if pe != nil {
				cause = pe.cause
			}
			obs.Phase(PhasePaused)
			return pause(ctx, opts.Stop, log, cause)
		}
		if IsPermanent(err) || policy == policyFail {
			return err
		}
		attempt++
		wait := backoff(opts.MinBackoff, opts.MaxBackoff, attempt)
		log.Warn("transient error; reopening from checkpoints", "err", err, "attempt", attempt, "backoff", wait)
		obs.Phase(PhaseRetrying)
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

// pause keeps every position where it is and waits to be stopped.
func pause(ctx context.Context, stop <-chan struct{}, log *slog.Logger, cause error) error {
	log.Error("PIPELINE PAUSED: nothing more is read or written until sluice is restarted; fix the cause (or set on_error = \"dead_letter\" to set such events aside) and restart", "err", cause)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return fmt.Errorf("%w: %w", ErrPaused, cause)
	}
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
