package txmeta

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

// Held is a Resolver for a sink that keeps its state only in the bytes
// its Flush returns and cannot take back a message it sent (the webhook
// sink, the file sink): a resolved message found due at a Flush is held
// back until the bytes recording it are in the state file, so that no
// restart, not even after a kill -9, starts again from a lower T than one
// sent.
//
// At a Flush that brings the sink to cp, Flush sends the message held at
// an earlier Flush once Saved has confirmed a checkpoint at or after the
// one it was found due with (per stream), then asks the Resolver whether
// a new one is due and holds it: State records it as pending, and
// Restore makes the later of the last T sent and the pending one the
// floor. This costs one flush of delay; the interval (NewResolver) runs
// from when a message was found due, so a heartbeat as frequent as the
// interval still brings one message per interval.
//
// Saved may be called from any goroutine (the engine's checkpointer);
// the other methods from the one goroutine that calls the sink's Write
// and Flush.
type Held struct {
	r       *Resolver
	sent    time.Time // the last T sent (zero before the first)
	pending *heldMessage

	mu    sync.Mutex
	saved change.Checkpoint // the latest checkpoint Saved confirmed
}

// heldMessage is a message found due at the Flush that brought the sink
// to cp.
type heldMessage struct {
	res format.Resolved
	cp  change.Checkpoint
}

// NewHeld returns a Held that sends at most once per interval every (see
// NewResolver).
func NewHeld(every time.Duration) *Held {
	return &Held{r: NewResolver(every)}
}

// Note is Resolver.Note: the sink calls it for every event Write gets.
func (h *Held) Note(e *change.Event) { h.r.Note(e) }

// Flush is what the sink does about resolved messages at a Flush that
// brings it to cp (every written event is durable or delivered): it
// calls send with the held message whose bytes are saved, if any, then
// holds the next one if due. An error from send is returned as is and
// the message stays held.
func (h *Held) Flush(cp change.Checkpoint, now time.Time, send func(*format.Resolved) error) error {
	if p := h.pending; p != nil {
		for st := range p.cp {
			if _, ok := cp[st]; !ok {
				delete(p.cp, st) // no longer the sink's: no save will bring it
			}
		}
		if h.isSaved(p.cp) {
			if err := send(&p.res); err != nil {
				return err
			}
			if p.res.Time.After(h.sent) {
				h.sent = p.res.Time
			}
			h.pending = nil
		}
	}
	if h.pending == nil {
		if res, ok := h.r.Due(cp, now); ok {
			h.pending = &heldMessage{res: res, cp: cp.Clone()}
			h.r.Emitted(res, now) // found due: the interval runs from now
		}
	}
	return nil
}

// isSaved reports whether Saved has confirmed a checkpoint at or after cp
// on each of cp's streams.
func (h *Held) isSaved(cp change.Checkpoint) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for st, p := range cp {
		q, ok := h.saved[st]
		if !ok || q.Compare(p) < 0 {
			return false
		}
	}
	return true
}

// Saved records that the sink record with checkpoint cp is in the state
// file (engine.SaveNotifier: a sink implements Saved by calling it). Safe
// for concurrent use with the other methods.
func (h *Held) Saved(cp change.Checkpoint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.saved = cp.Clone()
}

var _ engine.SaveNotifier = (*Held)(nil)

// Last is the last T sent (zero before the first and after Restore).
func (h *Held) Last() time.Time { return h.sent }

// Pending is the T held back, if any.
func (h *Held) Pending() (time.Time, bool) {
	if h.pending == nil {
		return time.Time{}, false
	}
	return h.pending.res.Time, true
}

// State returns what Restore needs to go on after a restart: the last T
// sent, the one held back and each stream's commit time and position.
// Its form is the Resolver's (Resolver.State) with "pending" added.
func (h *Held) State() json.RawMessage {
	var pending *time.Time
	if h.pending != nil {
		pending = &h.pending.res.Time
	}
	return h.r.marshal(h.sent, pending)
}

// Restore replaces the state with one State (or Resolver.State) returned;
// empty means none. No T at or before the later of the last T sent and
// the pending one is sent afterwards; the pending message itself is not
// sent (a later, higher T is). What Saved confirmed is kept: it is about
// the state file, not the sink's session.
func (h *Held) Restore(b []byte) error {
	h.pending = nil
	sent, err := h.r.restore(b)
	h.sent = sent
	return err
}
