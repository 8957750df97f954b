package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// memTarget is what an in-memory sink writes into: like a database, it
// outlives the sinks (each attempt of Run builds a new one) and holds
// only what a Flush committed.
type memTarget struct {
	mu        sync.Mutex
	committed []string
}

// memSink keeps its checkpoint in the bytes its Flush returns, as the
// file sink does: saved is the truth, and Open puts the target back to
// what saved records.
type memSink struct {
	target  *memTarget
	pending []change.Event // written since the last Flush
}

var (
	_ engine.Sink       = (*memSink)(nil)
	_ engine.BatchSizer = (*memSink)(nil)
)

// memSaved is what Flush returns and the next Open gets back.
type memSaved struct {
	Checkpoint change.Checkpoint `json:"checkpoint"`
	Committed  int               `json:"committed"` // the target's length
}

func (s *memSink) Open(_ context.Context, saved []byte) (change.Checkpoint, error) {
	var sv memSaved
	if saved != nil {
		if err := json.Unmarshal(saved, &sv); err != nil {
			return nil, engine.Permanent(fmt.Errorf("saved bytes: %w", err))
		}
	}
	s.target.mu.Lock()
	defer s.target.mu.Unlock()
	// A Flush that committed after the last one the state file recorded
	// is cut back: the engine writes its events again.
	s.target.committed = s.target.committed[:min(sv.Committed, len(s.target.committed))]
	return sv.Checkpoint, nil // nil: nothing committed yet
}

func (s *memSink) Write(_ context.Context, events []change.Event) error {
	// The slice is ours until Flush; its rows are shared and read-only.
	s.pending = append(s.pending, events...)
	return nil
}

func (s *memSink) Flush(_ context.Context, cp change.Checkpoint) ([]byte, error) {
	s.target.mu.Lock()
	defer s.target.mu.Unlock()
	for _, e := range s.pending {
		switch {
		case e.Op.IsRow():
			s.target.committed = append(s.target.committed, fmt.Sprintf("%s %s %v", e.Op, e.QualifiedTable(), e.Row()))
		case e.Op == change.Truncate:
			s.target.committed = append(s.target.committed, "truncate "+e.QualifiedTable())
		}
		// A Mark writes nothing: its position is in cp all the same.
	}
	s.pending = nil
	return json.Marshal(memSaved{Checkpoint: cp, Committed: len(s.target.committed)})
}

// Close discards what was written and not flushed: the next attempt
// writes it again.
func (s *memSink) Close() error {
	s.pending = nil
	return nil
}

// BatchSize makes the sink commit at the first boundary after 100 events.
func (s *memSink) BatchSize() int { return 100 }

// memLog is what an in-memory source reads: committed source
// transactions, one stream, the transaction at Offset n numbered n.
type memLog struct {
	mu    sync.Mutex
	txs   [][]change.Event
	acked change.Checkpoint
}

// memSource reads a memLog from the position after from, then io.EOF.
type memSource struct {
	name string
	log  *memLog
	next uint64 // the next transaction's offset
}

func (s *memSource) Open(_ context.Context, from change.Checkpoint, _ engine.State) error {
	s.next = 1
	if p, ok := from[change.Stream{Source: s.name}]; ok {
		s.next = p.Offset + 1 // each transaction ends with a boundary
	}
	return nil
}

func (s *memSource) Read(ctx context.Context) ([]change.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	if s.next > uint64(len(s.log.txs)) {
		return nil, io.EOF // everything delivered
	}
	var batch []change.Event // a new slice for every Read: the engine keeps it
	for ; s.next <= uint64(len(s.log.txs)); s.next++ {
		tx := s.log.txs[s.next-1]
		for i, e := range tx {
			e.Position = change.Position{Source: s.name, Offset: s.next, Index: uint32(i)}
			e.Boundary = i == len(tx)-1 // the transaction's last event
			batch = append(batch, e)
		}
	}
	return batch, nil
}

func (s *memSource) Ack(_ context.Context, cp change.Checkpoint) error {
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	s.log.acked = cp.Clone()
	return nil
}

func (s *memSource) Close() error { return nil }

// ExampleSink runs an in-memory source into an in-memory sink, stops, and
// runs again after the source has more: the second run resumes after
// what the sink committed, and nothing is written twice.
func ExampleSink() {
	dir, err := os.MkdirTemp("", "sluice-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	cols := change.NewColumns("id", "name") // one Columns per table shape
	insert := func(id int64, name string) change.Event {
		return change.Event{Op: change.Insert, Schema: "public", Table: "users",
			Key:   change.MakeRow(change.NewColumns("id"), []any{id}),
			After: change.MakeRow(cols, []any{id, name})}
	}
	changes := &memLog{txs: [][]change.Event{
		{insert(1, "ada"), insert(2, "grace")},
		{{Op: change.Mark}}, // a heartbeat: no row, a position and a boundary
	}}
	target := &memTarget{}

	g, err := engine.Compile(engine.Spec{
		Pipeline: engine.Pipeline{Name: "example"},
		Sources: []engine.SourceNode{{Name: "app", Type: "memory",
			New: func(engine.Build) (engine.Source, error) { return &memSource{name: "app", log: changes}, nil }}},
		Sinks: []engine.SinkNode{{Name: "out", Type: "memory", From: []engine.Ref{{Name: "app"}},
			New: func(engine.Build) (engine.Sink, error) { return &memSink{target: target}, nil }}},
	}, nil)
	if err != nil {
		panic(err)
	}
	opts := engine.RunOptions{
		StatePath: filepath.Join(dir, "example.db"),
		Logger:    slog.New(slog.DiscardHandler),
	}
	run := func() {
		if err := g.Run(context.Background(), opts); err != nil {
			panic(err)
		}
		target.mu.Lock()
		defer target.mu.Unlock()
		for _, c := range target.committed {
			fmt.Println(c)
		}
		fmt.Println("acknowledged:", changes.acked[change.Stream{Source: "app"}])
	}

	run()
	fmt.Println("-- more changes")
	changes.txs = append(changes.txs, []change.Event{insert(3, "edsger")})
	run()

	// Output:
	// insert public.users map[id:1 name:ada]
	// insert public.users map[id:2 name:grace]
	// acknowledged: 2.0
	// -- more changes
	// insert public.users map[id:1 name:ada]
	// insert public.users map[id:2 name:grace]
	// insert public.users map[id:3 name:edsger]
	// acknowledged: 3.0
}
