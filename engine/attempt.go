package engine

import (
	"context"
	"fmt"
	"log/slog"
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
			return named("sink", s.Name, "", err)
		}
		r.sinks[s.Name] = sink
		rec, err := r.store.Sink(s.Name)
		if err != nil {
			return Permanent(err)
		}
		cp, err := sink.Open(ctx, rec.Saved)
		if err != nil {
			return named("sink", s.Name, "open", err)
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
			return named("source", s.Name, "", err)
		}
		r.sources[s.Name] = src
		if rs, ok := src.(ResumeSetter); ok {
			rs.SetResume(r.committedFunc(s.Name))
		}
		from := r.frontier(s.Name, r.opened)
		if err := src.Open(ctx, from, r.store.Corner("source", s.Name)); err != nil {
			return named("source", s.Name, "open", err)
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
