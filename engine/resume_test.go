package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/engine/change"
)

// committedSink is a Sink that can re-read its committed checkpoint.
type committedSink struct {
	Sink
	cp  change.Checkpoint
	err error
}

func (k committedSink) Committed(context.Context) (change.Checkpoint, error) { return k.cp, k.err }

// TestCommittedFuncTakesTheLowestFreshCheckpoint checks what a
// ResumeSetter source is given: per stream of that source, the lowest
// of its sinks' checkpoints, fresh where a sink can re-read its own and
// as opened where it cannot.
func TestCommittedFuncTakesTheLowestFreshCheckpoint(t *testing.T) {
	h := newHarness(t, "")
	h.source("a", 0, 1, 1)
	h.source("b", 0, 1, 1)
	h.sink("fresh", "a", "b")
	h.sink("plain", "a")
	h.sink("nocp", "a")
	g := h.graph(t)
	r := newRun(g, RunOptions{}.withDefaults(g.Spec.Pipeline), nil, testLogger(t), "")
	a0, a1, b := change.Stream{Source: "a", Partition: "t/0"}, change.Stream{Source: "a", Partition: "t/1"}, change.Stream{Source: "b"}
	at := func(st change.Stream, off uint64) change.Position {
		return change.Position{Source: st.Source, Partition: st.Partition, Offset: off}
	}
	r.sinks["fresh"] = committedSink{cp: change.Checkpoint{a0: at(a0, 9), a1: at(a1, 3), b: at(b, 4)}}
	r.opened["fresh"] = change.Checkpoint{a0: at(a0, 1), a1: at(a1, 1), b: at(b, 1)}
	r.sinks["plain"] = &fakeSink{} // no CommittedReader: counts as opened
	r.opened["plain"] = change.Checkpoint{a0: at(a0, 5), a1: at(a1, 8)}
	r.sinks["nocp"] = committedSink{err: fmt.Errorf("kafka sink: %w", ErrNoCommitted)}
	r.opened["nocp"] = change.Checkpoint{a0: at(a0, 7), a1: at(a1, 8)}

	got, err := r.committedFunc("a")(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := change.Checkpoint{a0: at(a0, 5), a1: at(a1, 3)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}

	// A sink that cannot read its checkpoint now fails the call: a
	// source must not resume from a guess.
	r.sinks["fresh"] = committedSink{err: errors.New("connection refused")}
	if _, err := r.committedFunc("a")(context.Background()); err == nil || !strings.Contains(err.Error(), `sink "fresh"`) {
		t.Errorf("err = %v, want the failing sink named", err)
	}
}
