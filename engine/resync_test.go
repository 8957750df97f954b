package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// TestRouteAddressedEvents: an event with Sink set reaches that sink
// only; the Mark after it reaches every sink, so every sink still
// commits the transaction.
func TestRouteAddressedEvents(t *testing.T) {
	h := newHarness(t, "")
	h.source("a", 0, 1, 1)
	h.sink("one", "a")
	h.sink("two", "a")
	g := h.graph(t)
	batch := []change.Event{
		{Op: change.Snapshot, Table: "t", Position: pos("a", 1), Sink: "two"},
		{Op: change.Insert, Table: "t", Position: pos("a", 2)},
		{Op: change.Mark, Boundary: true, Position: pos("a", 3)},
	}
	perSink, failed := g.Route("a", batch)
	if len(failed) > 0 {
		t.Fatal(failed)
	}
	ops := func(events []change.Event) []change.Op {
		var out []change.Op
		for _, e := range events {
			out = append(out, e.Op)
		}
		return out
	}
	if got := ops(perSink["one"]); len(got) != 2 || got[0] != change.Insert || got[1] != change.Mark {
		t.Errorf("sink one got %v, want the insert and the Mark", got)
	}
	if got := ops(perSink["two"]); len(got) != 3 || got[0] != change.Snapshot {
		t.Errorf("sink two got %v, want all three", got)
	}
	if batch[0].Sink != "two" || len(batch) != 3 {
		t.Error("Route changed the source's batch")
	}
}

// resyncSource is a fake source that takes snapshot requests.
type resyncSource struct {
	*fakeSource
	got chan state.SnapshotRequest
}

func (s *resyncSource) Resync(_ context.Context, req state.SnapshotRequest) error {
	s.got <- req
	return nil
}

// TestSnapshotRequestsReachTheirSource: a request filed before the run
// is handed to its source at start, one filed while it runs within a
// poll, and one for a source that cannot take it is set aside with the
// reason.
func TestSnapshotRequestsReachTheirSource(t *testing.T) {
	h := newHarness(t, "")
	h.source("a", 1_000_000, 1, 64)
	h.source("plain", 1_000_000, 1, 64)
	h.sink("out", "a", "plain")
	src := &resyncSource{fakeSource: h.sources["a"], got: make(chan state.SnapshotRequest, 3)}
	reg := h.registry()
	build := reg.Sources["fake"]
	reg.Sources["fake"] = func(b Build, name string) (Source, error) {
		if name == "a" {
			return src, nil
		}
		return build(b, name)
	}
	g, err := h.compile(reg)
	if err != nil {
		t.Fatal(err)
	}
	path := h.spec.Pipeline.State
	file := func(id, source string) {
		if err := state.RequestSnapshot(path, state.SnapshotRequest{ID: id, Source: source, Tables: []string{"public.t"}, Requested: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	file("before", "a")
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- g.Run(context.Background(), RunOptions{Stop: stop, Logger: testLogger(t), MinBackoff: 1, MaxBackoff: 10})
	}()
	wantReq := func(id string) {
		t.Helper()
		select {
		case req := <-src.got:
			if req.ID != id {
				t.Fatalf("source got request %s, want %s", req.ID, id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("request %s never reached the source", id)
		}
	}
	wantReq("before")
	file("during", "a")
	wantReq("during")
	file("refused", "plain")
	deadline := time.Now().Add(10 * time.Second)
	for state.SnapshotRequestFailure(path, "refused") == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if why := state.SnapshotRequestFailure(path, "refused"); !strings.Contains(why, "cannot copy tables") {
		t.Errorf("refused request: %q", why)
	}
	for _, id := range []string{"before", "during", "refused"} {
		if state.SnapshotRequestPending(path, id) {
			t.Errorf("request %s is still pending", id)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
