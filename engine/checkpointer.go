package engine

import (
	"context"
	"fmt"
	"maps"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// checkpoint is the checkpointer stage. For every batch of sink commits it
// saves them, with the new source acknowledgements, in one state-file
// Update, then acknowledges each source with the lowest checkpoint of the
// sinks that read it: a source never hears of a position some sink has
// not durably committed. Commits that queue up while a save runs are
// coalesced into the next one. It returns when every sink stage has ended
// (after saving what they committed) or ctx is cancelled.
func (r *run) checkpoint(ctx context.Context) error {
	latest := map[string]change.Checkpoint{}
	for name, cp := range r.opened {
		latest[name] = cp
	}
	acked := map[string]change.Checkpoint{}
	for name := range r.sources {
		cp, err := r.store.Acked(name)
		if err != nil {
			return Permanent(err)
		}
		acked[name] = cp
	}
	for {
		var c commit
		var ok bool
		select {
		case c, ok = <-r.commits:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		sv := state.Save{Sinks: map[string]state.SinkRecord{}, Acks: map[string]change.Checkpoint{}}
		for {
			sv.Sinks[c.sink] = state.SinkRecord{Checkpoint: c.cp, Saved: c.saved, CommitTime: c.commitTime}
			latest[c.sink] = c.cp
			if c, ok = r.nextCommit(); !ok {
				break
			}
		}
		for name := range r.sources {
			if cp := r.frontier(name, latest); !maps.Equal(cp, acked[name]) {
				sv.Acks[name] = cp
			}
		}
		if err := r.store.Save(sv); err != nil {
			r.obs.Failed("checkpoint", err)
			return Permanent(err)
		}
		for name, rec := range sv.Sinks {
			if n, ok := r.sinks[name].(SaveNotifier); ok {
				n.Saved(rec.Checkpoint)
			}
		}
		r.progress.Store(true)
		for name, cp := range sv.Acks {
			if err := r.sources[name].Ack(ctx, cp); err != nil {
				return named("source", name, fmt.Sprintf("ack %v", cp), err)
			}
			acked[name] = cp
		}
	}
}

// nextCommit returns a commit that is already waiting, if any.
func (r *run) nextCommit() (commit, bool) {
	select {
	case c, ok := <-r.commits:
		return c, ok
	default:
		return commit{}, false
	}
}
