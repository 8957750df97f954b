package engine

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// ReplayOptions configures Graph.ReplayDeadLetters.
type ReplayOptions struct {
	// Logger; default slog.Default().
	Logger *slog.Logger
	// StatePath; default as for Run.
	StatePath string
	// Stage limits the replay to one stage's letters ("transform.NAME" or
	// "sink.NAME"), or to one kind's ("transform", "sink"); "" replays all.
	Stage string
}

// ReplayResult counts what a replay did.
type ReplayResult struct {
	Replayed int // written, flushed and removed from the queue
	Failed   int // still failing (rejected again, or their sink is gone): kept
}

// ReplayDeadLetters writes dead-lettered events again (`sluice dlq
// replay`), oldest first, for when the cause has been fixed. A sink's
// letter is written to that sink; a transform's letter goes through the
// transforms again and on to every sink it reaches. Each letter is
// flushed on its own, its sink's saved bytes are updated in the state
// file, and it leaves the queue only when every sink it reached has
// committed it. A letter that fails again is kept (Failed); an error
// other than a rejection ends the replay.
//
// It opens the state file, so it cannot run while the pipeline runs.
// Replayed events arrive out of position order, after later events: a
// replay is at-least-once for a letter whose fan-out failed part way.
func (g *Graph) ReplayDeadLetters(ctx context.Context, opts ReplayOptions) (ReplayResult, error) {
	var res ReplayResult
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.StatePath == "" {
		opts.StatePath = g.Spec.Pipeline.StatePath()
	}
	store, err := state.Open(opts.StatePath)
	if err != nil {
		return res, err
	}
	defer store.Close()
	rp := &replayer{g: g, store: store, log: opts.Logger, sinks: map[string]Sink{}, cps: map[string]change.Checkpoint{}}
	defer rp.close()
	var after uint64
	for {
		page, err := store.Letters(opts.Stage, after, 100)
		if err != nil || len(page) == 0 {
			return res, err
		}
		for _, l := range page {
			after = l.ID
			ok, err := rp.replay(ctx, l)
			if err != nil {
				return res, err
			}
			if !ok {
				res.Failed++
				continue
			}
			if err := store.DeleteLetters(l.ID); err != nil {
				return res, err
			}
			res.Replayed++
		}
	}
}

type replayer struct {
	g     *Graph
	store *state.Store
	log   *slog.Logger
	sinks map[string]Sink
	cps   map[string]change.Checkpoint
}

// replay writes one letter and reports whether every sink committed it.
func (rp *replayer) replay(ctx context.Context, l state.Letter) (bool, error) {
	targets := map[string][]change.Event{}
	switch {
	case strings.HasPrefix(l.Stage, "sink."):
		targets[strings.TrimPrefix(l.Stage, "sink.")] = []change.Event{l.Event}
	case l.Stage == "transform" || strings.HasPrefix(l.Stage, "transform."): // "transform": letters of earlier versions
		perSink, failed := rp.g.Route(l.Event.Position.Source, []change.Event{l.Event})
		if len(failed) > 0 {
			rp.log.Warn("dead letter still fails in the transforms", "letter", l.ID, "err", failed[0].Err)
			return false, nil
		}
		for sink, events := range perSink {
			if rows := withoutMarks(events); len(rows) > 0 {
				targets[sink] = rows
			}
		}
	default:
		rp.log.Warn("dead letter of an unknown stage", "letter", l.ID, "stage", l.Stage)
		return false, nil
	}
	all := true
	for name, events := range targets {
		ok, err := rp.write(ctx, name, events)
		if err != nil {
			return false, err
		}
		if !ok {
			rp.log.Warn("dead letter rejected again", "letter", l.ID, "sink", name)
			all = false
		}
	}
	return all, nil
}

func withoutMarks(events []change.Event) []change.Event {
	var out []change.Event
	for _, e := range events {
		if e.Op != change.Mark {
			out = append(out, e)
		}
	}
	return out
}

// write writes and flushes events to a sink (opened on first use) and
// saves its new bytes; false means the sink rejected them.
func (rp *replayer) write(ctx context.Context, name string, events []change.Event) (bool, error) {
	sink, err := rp.open(ctx, name)
	if err != nil || sink == nil {
		return false, err
	}
	err = sink.Write(ctx, events)
	var saved []byte
	if err == nil {
		saved, err = sink.Flush(ctx, rp.cps[name].Clone())
	}
	var rej *RejectError
	if errors.As(err, &rej) {
		// The sink's open work is in doubt: reopen it for the next letter.
		sink.Close()
		delete(rp.sinks, name)
		return false, nil
	}
	if err != nil {
		return false, named("sink", name, "replay", err)
	}
	return true, rp.store.Save(state.Save{Sinks: map[string]state.SinkRecord{name: {Checkpoint: rp.cps[name], Saved: saved}}})
}

// open returns the named sink, opened from its saved state; nil if the
// pipeline no longer has it.
func (rp *replayer) open(ctx context.Context, name string) (Sink, error) {
	if s, ok := rp.sinks[name]; ok {
		return s, nil
	}
	for _, cfg := range rp.g.Spec.Sinks {
		if cfg.Name != name {
			continue
		}
		s, err := cfg.New(Build{Pipeline: rp.g.Spec.Pipeline, Logger: rp.log})
		if err != nil {
			return nil, named("sink", name, "", err)
		}
		rec, err := rp.store.Sink(name)
		if err != nil {
			return nil, err
		}
		cp, err := s.Open(ctx, rec.Saved)
		if err != nil {
			return nil, named("sink", name, "open", err)
		}
		rp.sinks[name], rp.cps[name] = s, cp
		return s, nil
	}
	rp.log.Warn("dead letter for a sink the pipeline no longer has", "sink", name)
	return nil, nil
}

func (rp *replayer) close() {
	for name, s := range rp.sinks {
		if err := s.Close(); err != nil {
			rp.log.Warn("closing sink", "sink", name, "err", err)
		}
	}
}
