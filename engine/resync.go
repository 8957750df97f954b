package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/sluice-cdc/sluice/engine/state"
)

// Resyncer is implemented by sources that can copy tables again while
// they stream (the PostgreSQL source's incremental snapshot). The engine
// hands them the requests of `sluice snapshot` and `sluice verify
// --repair`, after Open, from a goroutine of its own: Resync must be safe
// to call while Read runs. It records the request durably in the
// source's state before it returns (a request taken is never lost, and a
// restart carries on with it where it stopped), and reports an error for
// a request it cannot serve (a table it does not capture).
type Resyncer interface {
	Resync(ctx context.Context, req state.SnapshotRequest) error
}

// requestPoll is how often a running pipeline looks for snapshot
// requests beside its state file.
const requestPoll = 500 * time.Millisecond

// takeSnapshotRequests hands the snapshot requests waiting beside the
// state file to their sources until ctx ends: at once when the pipeline
// starts (a request made while it was stopped), then as they come. A
// request whose source cannot take it is set aside with the reason
// (state.FailSnapshotRequest), where `sluice snapshot` and `sluice
// status` find it.
func (r *run) takeSnapshotRequests(ctx context.Context) {
	t := time.NewTicker(requestPoll)
	defer t.Stop()
	for {
		reqs, err := state.SnapshotRequests(r.store.Path())
		if err != nil {
			r.log.Warn("reading snapshot requests", "err", err)
		}
		for _, req := range reqs {
			if err := r.resync(ctx, req); err != nil {
				if ctx.Err() != nil {
					return
				}
				r.log.Error("snapshot request refused", "request", req.ID, "err", err)
				state.FailSnapshotRequest(r.store.Path(), req, err)
				continue
			}
			r.log.Info("snapshot requested: the tables are copied again while streaming goes on", "request", req.ID, "source", req.Source, "tables", fmt.Sprint(req.Tables), "sink", req.Sink)
			state.TakeSnapshotRequest(r.store.Path(), req)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *run) resync(ctx context.Context, req state.SnapshotRequest) error {
	src, ok := r.sources[req.Source]
	if !ok {
		return Permanent(fmt.Errorf("source %q is not a source of this pipeline (or no sink reads it)", req.Source))
	}
	rs, ok := src.(Resyncer)
	if !ok {
		return Permanent(fmt.Errorf("source %q cannot copy tables while it streams (only PostgreSQL sources can)", req.Source))
	}
	if req.Sink != "" && !slices.Contains(r.g.SinksOf(req.Source), req.Sink) {
		return Permanent(fmt.Errorf("sink %q does not read source %q", req.Sink, req.Source))
	}
	return rs.Resync(ctx, req)
}
