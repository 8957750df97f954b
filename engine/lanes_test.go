package engine

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// scriptSource hands out its batches, in order, then io.EOF.
type scriptSource struct {
	batches [][]change.Event
	next    int
}

func (s *scriptSource) Open(context.Context, change.Checkpoint, State) error { return nil }
func (s *scriptSource) Ack(context.Context, change.Checkpoint) error         { return nil }
func (s *scriptSource) Close() error                                         { return nil }
func (s *scriptSource) Read(ctx context.Context) ([]change.Event, error) {
	if s.next == len(s.batches) {
		return nil, io.EOF
	}
	s.next++
	return s.batches[s.next-1], nil
}

// lanedTarget is the database behind lanedSink's instances: rows by id,
// and one checkpoint row that the instances merge their streams into.
type lanedTarget struct {
	mu        sync.Mutex
	rows      map[int64]string
	cp        change.Checkpoint
	instances int
	// laneRows is how many rows of parallel streams are committed;
	// early records a streamed change written before they all were.
	laneRows int
	early    []string
	// lanes counts the lanes not yet closed: with none, a flush writes
	// the whole checkpoint row, as the SQL sinks do.
	lanes int
}

// lanedSink is a Laned fake: each instance has its own pending rows and
// its own view of the checkpoint row, as the SQL sinks have.
type lanedSink struct {
	t        *lanedTarget
	seen     change.Checkpoint
	pending  []change.Event
	wantLane int  // parallel rows the source sends
	lane     bool // one of the lanes, counted in t.lanes until closed
}

func (k *lanedSink) Lane() (Sink, error) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.lanes++
	return &lanedSink{t: k.t, wantLane: k.wantLane, lane: true}, nil
}

func (k *lanedSink) Open(context.Context, []byte) (change.Checkpoint, error) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	k.t.instances++
	k.seen = k.t.cp.Clone()
	return k.t.cp.Clone(), nil
}

func (k *lanedSink) Write(_ context.Context, events []change.Event) error {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	for _, e := range events {
		if e.Op != change.Snapshot && k.t.laneRows < k.wantLane {
			k.t.early = append(k.t.early, fmt.Sprintf("%s of id %v with %d of %d parallel rows committed", e.Op, e.After.Get("id"), k.t.laneRows, k.wantLane))
		}
	}
	k.pending = append(k.pending, events...)
	return nil
}

func (k *lanedSink) Flush(_ context.Context, cp change.Checkpoint) ([]byte, error) {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	for _, e := range k.pending {
		k.t.rows[e.After.Get("id").(int64)] = e.After.Get("v").(string)
		if e.Position.Stream().Parallel() {
			k.t.laneRows++
		}
	}
	k.pending = nil
	if k.t.lanes == 0 {
		k.t.cp, k.seen = cp.Clone(), cp.Clone() // alone: the whole row
		return nil, nil
	}
	for st, p := range cp {
		if q, ok := k.seen[st]; !ok || q != p {
			k.t.cp[st], k.seen[st] = p, p
		}
	}
	return nil, nil
}

func (k *lanedSink) Close() error {
	k.t.mu.Lock()
	defer k.t.mu.Unlock()
	if k.lane {
		k.lane = false
		k.t.lanes--
	}
	return nil
}

// TestLanesWriteParallelStreamsApart: the rows of a parallel snapshot's
// readers go to lanes of their own (one sink instance each), the sink's
// checkpoint is every stream's, and the changes streamed after the copy
// are written only once every lane has committed its rows, so they land
// on top of the copy; the lanes then close, and the sink, writing its
// whole checkpoint row again, keeps the lanes' streams in it.
func TestLanesWriteParallelStreamsApart(t *testing.T) {
	const perBatch, rounds = 50, 6
	streams := []string{"", change.ParallelPartition("", 1), change.ParallelPartition("", 2)}
	var batches [][]change.Event
	index := map[string]uint32{}
	id := int64(0)
	for range rounds {
		for _, part := range streams {
			var b []change.Event
			for range perBatch {
				b = append(b, change.Event{Op: change.Snapshot, Table: "t", Boundary: true,
					After:    change.RowOf(map[string]any{"id": id, "v": "copied"}),
					Position: change.Position{Source: "pg", Partition: part, Offset: 10, Index: index[part]}})
				index[part]++
				id++
			}
			batches = append(batches, b)
		}
	}
	// Every row of the copy changes in the stream afterwards.
	var streamed []change.Event
	for i := range id {
		streamed = append(streamed, change.Event{Op: change.Update, Table: "t", Boundary: true,
			After:    change.RowOf(map[string]any{"id": i, "v": "streamed"}),
			Position: change.Position{Source: "pg", Offset: 100 + uint64(i)}})
	}
	batches = append(batches, streamed)

	tg := &lanedTarget{rows: map[int64]string{}, cp: change.Checkpoint{}}
	spec := Spec{
		Pipeline: Pipeline{Name: "t", State: t.TempDir() + "/state.db"},
		Sources:  []SourceNode{{Name: "pg", Type: "script", New: func(Build) (Source, error) { return &scriptSource{batches: batches}, nil }}},
		Sinks: []SinkNode{{Name: "db", Type: "laned", From: []Ref{{Name: "pg"}},
			New: func(Build) (Sink, error) { return &lanedSink{t: tg, wantLane: 2 * rounds * perBatch}, nil }}},
	}
	g, err := Compile(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background(), RunOptions{BatchSize: 20, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	if tg.instances != 3 {
		t.Errorf("%d sink instances, want the sink and a lane for each of 2 parallel streams", tg.instances)
	}
	if tg.lanes != 0 {
		t.Errorf("%d lanes left open after the copy", tg.lanes)
	}
	if len(tg.early) > 0 {
		t.Errorf("streamed changes written before the lanes committed: %v", tg.early)
	}
	for i := range id {
		if tg.rows[i] != "streamed" {
			t.Fatalf("row %d holds %q, want the streamed change on top of the copy", i, tg.rows[i])
		}
	}
	want := change.Checkpoint{}
	for _, part := range streams[1:] {
		want.Advance(change.Position{Source: "pg", Partition: part, Offset: 10, Index: index[part] - 1})
	}
	want.Advance(streamed[len(streamed)-1].Position)
	st, err := state.Inspect(spec.Pipeline.State)
	if err != nil {
		t.Fatal(err)
	}
	for s, p := range want {
		if tg.cp[s] != p {
			t.Errorf("target checkpoint of %v: %v, want %v", s, tg.cp[s], p)
		}
		if got := st.Sinks["db"].Checkpoint[s]; got != p {
			t.Errorf("saved checkpoint of %v: %v, want %v", s, got, p)
		}
	}
}
