package engine

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
)

// savingSink is a fakeSink that implements SaveNotifier: at each Saved it
// takes a copy of the state file, as a kill -9 at that moment would
// leave it, and reads back what the copy holds for the sink.
type savingSink struct {
	*fakeSink
	t         *testing.T
	statePath string
	copyDir   string

	mu      sync.Mutex
	flushed []change.Checkpoint // what each Flush was given
	saved   []savedCall
}

type savedCall struct {
	cp, onDisk change.Checkpoint
	bytes      []byte // the record's bytes in the copy
}

func (k *savingSink) Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error) {
	b, err := k.fakeSink.Flush(ctx, cp)
	if err == nil {
		k.mu.Lock()
		k.flushed = append(k.flushed, cp.Clone())
		k.mu.Unlock()
	}
	return b, err
}

func (k *savingSink) Saved(cp change.Checkpoint) {
	b, err := os.ReadFile(k.statePath)
	if err != nil {
		k.t.Errorf("Saved: %v", err)
		return
	}
	cpy := filepath.Join(k.copyDir, "copy.db")
	if err := os.WriteFile(cpy, b, 0o600); err != nil {
		k.t.Errorf("Saved: %v", err)
		return
	}
	st, err := state.Open(cpy)
	if err != nil {
		k.t.Errorf("Saved: the copy of the state file: %v", err)
		return
	}
	defer os.Remove(cpy)
	defer st.Close()
	rec, err := st.Sink("out")
	if err != nil {
		k.t.Errorf("Saved: %v", err)
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.saved = append(k.saved, savedCall{cp: cp.Clone(), onDisk: rec.Checkpoint, bytes: rec.Saved})
}

var _ SaveNotifier = (*savingSink)(nil)

// TestSavedFollowsTheSave: the checkpointer calls Saved with the
// checkpoint of the sink's record once the state file holds that record
// (and its bytes), so a kill -9 at any moment after Saved finds it.
func TestSavedFollowsTheSave(t *testing.T) {
	h := newHarness(t, "")
	src := h.source("a", 200, 5, 5)
	src.pause = time.Millisecond // a trickle: many flushes and saves
	tg := h.sink("out", "a")
	h.spec.Sinks[0].Type = "saving"
	var sk *savingSink
	reg := h.registry()
	reg.Sinks["saving"] = func(_ Build, _ string) (Sink, error) {
		sk = &savingSink{fakeSink: &fakeSink{t: tg}, t: t, statePath: h.spec.Pipeline.State, copyDir: t.TempDir()}
		return sk, nil
	}
	g, err := h.compile(reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Run(context.Background(), RunOptions{BatchSize: 5, MinFlushInterval: time.Millisecond, MinBackoff: 1, MaxBackoff: 10, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	if len(sk.saved) < 10 {
		t.Fatalf("Saved was called %d times over %d flushes, want one per save", len(sk.saved), len(sk.flushed))
	}
	flushed := func(cp change.Checkpoint) bool {
		for _, f := range sk.flushed {
			if maps.Equal(f, cp) {
				return true
			}
		}
		return false
	}
	for i, c := range sk.saved {
		if !maps.Equal(c.onDisk, c.cp) {
			t.Errorf("Saved call %d: checkpoint %v, but the state file then held %v", i, c.cp, c.onDisk)
		}
		want, _ := json.Marshal(c.cp) // what fakeSink's Flush returns
		if string(c.bytes) != string(want) {
			t.Errorf("Saved call %d: the state file held the bytes %s, want %s", i, c.bytes, want)
		}
		if !flushed(c.cp) {
			t.Errorf("Saved call %d: checkpoint %v was given to no Flush", i, c.cp)
		}
		if i > 0 && c.cp[change.Stream{Source: "a"}].Compare(sk.saved[i-1].cp[change.Stream{Source: "a"}]) < 0 {
			t.Errorf("Saved call %d: checkpoint %v before the previous call's %v", i, c.cp, sk.saved[i-1].cp)
		}
	}
	last := sk.saved[len(sk.saved)-1].cp
	if want := pos("a", 199); last[want.Stream()] != want {
		t.Errorf("last Saved checkpoint %v, want the end %v", last, want)
	}
}
