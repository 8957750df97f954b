package engine

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

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
			return named("source", name, "", err)
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
	size := min(batchBytes(batch), r.opts.QueueBytes)
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
