package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-cdc/sluice/engine/change"
)

// ErrPositionLost is wrapped by the (permanent) error Run returns when a
// source cannot continue from the positions its sinks committed: for
// PostgreSQL, a replication slot dropped behind sluice's back, so the
// changes since were removed from the server. Carrying on would silently
// skip them, or re-copy every table over the targets.
var ErrPositionLost = errors.New("source cannot resume where its sinks committed")

// Resumer is implemented by sources that can tell, after Open, whether
// they continue right after the checkpoint they were opened from. The
// engine asks only when that checkpoint is not empty, and stops with
// ErrPositionLost when the answer is no.
type Resumer interface {
	// Resumed reports whether the events Read returns follow right after
	// Open's from. A PostgreSQL source whose slot was missing and had to
	// be created anew returns false.
	Resumed() bool
}

// checkResumed fails when src started afresh although its sinks have
// committed from.
func checkResumed(name string, src Source, from change.Checkpoint) error {
	r, ok := src.(Resumer)
	if !ok || len(from) == 0 || r.Resumed() {
		return nil
	}
	return Permanent(fmt.Errorf("source %q: %w (committed: %v): its position on the server is gone (PostgreSQL: the replication slot was dropped or lost), so the changes since then cannot be read. To start over with a new snapshot, run `sluice drop FILE` and then `sluice run FILE`", name, ErrPositionLost, from))
}

// CommittedReader is implemented by sinks that can read back, at any time
// after Open and from any goroutine, the checkpoint their target holds
// now. When several sluice processes share a partitioned source (a Kafka
// consumer group), a stream that moves to this process was committed by
// another one after this process opened its sinks; only the target knows
// how far.
type CommittedReader interface {
	// Committed re-reads the committed checkpoint from the target. A sink
	// that keeps no checkpoint in its target in this configuration (a
	// Kafka sink without exactly_once) returns an error wrapping
	// ErrNoCommitted.
	Committed(ctx context.Context) (change.Checkpoint, error)
}

// Forgetter is implemented by sinks that keep their checkpoint in their
// target (a SQL sink's sluice_checkpoints row, an exactly-once Kafka
// sink's checkpoint records). `sluice drop` calls Forget so that the next
// run starts over with a new snapshot: left in place, the checkpoint would
// make that run resume from a position the dropped replication slot can
// no longer serve, and refuse. Forget is called on a sink that was built
// but never opened: it connects by itself and disconnects before it
// returns. It reports whether there was a checkpoint to remove.
type Forgetter interface {
	Forget(ctx context.Context) (bool, error)
}

// ErrNoCommitted is wrapped by CommittedReader.Committed when the sink
// keeps no checkpoint in its target; the engine then uses the checkpoint
// the sink opened with, which is never ahead of what it committed.
var ErrNoCommitted = errors.New("the sink keeps no checkpoint in its target")

// ResumeSetter is implemented by sources whose streams can move between
// processes (a Kafka source's partitions, as its consumer group
// rebalances). Before Open the engine gives them a function that returns
// the lowest checkpoint, per stream of the source, that the sinks
// downstream hold now; the source calls it when streams are assigned to
// it, and resumes each after that position rather than the one it was
// opened from (or the group's), so events another process's sinks
// committed before it died are not applied twice.
type ResumeSetter interface {
	SetResume(fn func(ctx context.Context) (change.Checkpoint, error))
}

// committedFunc returns the function given to a ResumeSetter source: the
// lowest of its sinks' fresh checkpoints, restricted to its streams. A
// sink without CommittedReader (or with ErrNoCommitted) counts with the
// checkpoint it opened with, so the result is never ahead of what any
// sink committed.
func (r *run) committedFunc(source string) func(ctx context.Context) (change.Checkpoint, error) {
	sinks := r.g.SinksOf(source)
	return func(ctx context.Context) (change.Checkpoint, error) {
		cps := make(map[string]change.Checkpoint, len(sinks))
		for _, name := range sinks {
			cps[name] = r.opened[name]
			cr, ok := r.sinks[name].(CommittedReader)
			if !ok {
				continue
			}
			cp, err := cr.Committed(ctx)
			switch {
			case errors.Is(err, ErrNoCommitted):
			case err != nil:
				return nil, named("sink", name, "", err)
			default:
				cps[name] = cp
			}
		}
		return r.frontier(source, cps), nil
	}
}
