package txmeta

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

// heldSink is what a sink does with a Held: it notes what it writes,
// sends at Flush what Held releases, and returns Held's state as the
// bytes of each Flush.
type heldSink struct {
	h    *Held
	cp   change.Checkpoint
	sent []format.Resolved
	fail error // send fails with it
}

// flush writes one transaction committed at at (LSN lsn) and flushes
// it; it returns the bytes of the Flush and the checkpoint they record.
func (s *heldSink) flush(t *testing.T, lsn uint64, at, now time.Time) ([]byte, change.Checkpoint) {
	t.Helper()
	for _, e := range pgTx(lsn, lsn, at) {
		s.h.Note(&e)
		s.cp.Advance(e.Position)
	}
	cp := s.cp.Clone()
	err := s.h.Flush(cp, now, func(res *format.Resolved) error {
		if s.fail != nil {
			return s.fail
		}
		s.sent = append(s.sent, *res)
		return nil
	})
	if err != nil && !errors.Is(err, s.fail) {
		t.Fatal(err)
	}
	return s.h.State(), cp
}

// TestHeldSendsOnlyWhatIsSaved: a message found due is held until Saved
// confirms the checkpoint of the Flush that found it, then goes at the
// next Flush; the interval runs from when it was found due, so one
// heartbeat per interval still brings one message per interval.
func TestHeldSendsOnlyWhatIsSaved(t *testing.T) {
	s := &heldSink{h: NewHeld(time.Second), cp: change.Checkpoint{}}
	now := t0.Add(time.Hour)
	_, cp1 := s.flush(t, 100, t0, now)
	if len(s.sent) != 0 {
		t.Fatalf("sent %v at the Flush that found it due", s.sent)
	}
	if p, ok := s.h.Pending(); !ok || !p.Equal(t0.Add(-CommitSkew)) {
		t.Fatalf("pending %v, %v", p, ok)
	}
	// Not saved yet: the next Flush holds it on and finds nothing new
	// due (one is held).
	s.flush(t, 200, t0.Add(time.Second), now.Add(time.Second))
	if len(s.sent) != 0 {
		t.Fatalf("sent %v before its bytes were saved", s.sent)
	}
	// A save of an earlier checkpoint is not enough.
	s.h.Saved(change.Checkpoint{{Source: "app"}: {Source: "app", Offset: 50}})
	s.flush(t, 300, t0.Add(2*time.Second), now.Add(2*time.Second))
	if len(s.sent) != 0 {
		t.Fatalf("sent %v after a save of an earlier checkpoint", s.sent)
	}
	// Saved at the Flush's own checkpoint: the next Flush sends it, and
	// finds the next one due, one interval after the first was.
	s.h.Saved(cp1)
	_, cp4 := s.flush(t, 400, t0.Add(3*time.Second), now.Add(3*time.Second))
	if len(s.sent) != 1 || !s.sent[0].Time.Equal(t0.Add(-CommitSkew)) || s.sent[0].Position.Offset != 100 {
		t.Fatalf("sent %v, want the T of LSN 100", s.sent)
	}
	if p, ok := s.h.Pending(); !ok || !p.Equal(t0.Add(3*time.Second-CommitSkew)) {
		t.Fatalf("pending %v, %v after the release, want the T of LSN 400", p, ok)
	}

	// A heartbeat per interval: one message per interval, one flush late.
	s.h.Saved(cp4)
	at := t0.Add(3 * time.Second)
	for i := range 5 {
		at = at.Add(time.Second)
		_, cp := s.flush(t, uint64(500+100*i), at, now.Add(time.Duration(4+i)*time.Second))
		s.h.Saved(cp)
	}
	if len(s.sent) != 6 {
		t.Fatalf("%d messages after 5 more heartbeats, want 6: %v", len(s.sent), s.sent)
	}
	for i := 1; i < len(s.sent); i++ {
		if !s.sent[i].Time.After(s.sent[i-1].Time) {
			t.Errorf("message %d: T %v after %v", i, s.sent[i].Time, s.sent[i-1].Time)
		}
	}
	// A send that fails keeps the message held.
	s.fail = errors.New("receiver down")
	n := len(s.sent)
	s.flush(t, 1100, at.Add(time.Second), now.Add(10*time.Second))
	if _, ok := s.h.Pending(); !ok || len(s.sent) != n {
		t.Fatal("a failed send dropped the held message")
	}
}

// TestHeldRestoreNeverLowersT plays a sink whose Flush bytes the engine
// saves one, two or three flushes late, and a kill -9 after every Flush:
// the restarted sink, restored from the bytes the state file holds then
// (saved before the last sends) and replaying from their checkpoint,
// never sends a T at or below one sent before the kill. The bytes of a
// Resolver (an older sluice) restore too.
func TestHeldRestoreNeverLowersT(t *testing.T) {
	const n = 40
	now := t0.Add(time.Hour)
	// Transaction k commits at about t0+k*700ms, some of them earlier
	// than the one before (commit times are not monotonic).
	commit := func(k int) time.Time {
		at := t0.Add(time.Duration(k) * 700 * time.Millisecond)
		if k%7 == 3 {
			at = at.Add(-900 * time.Millisecond)
		}
		return at
	}
	lsn := func(k int) uint64 { return uint64(100 * (k + 1)) }
	type snapshot struct {
		saved    []byte // what the state file holds
		from     change.Checkpoint
		next     int // the first transaction after from
		sentMax  time.Time
		killedAt int
	}
	s := &heldSink{h: NewHeld(time.Second), cp: change.Checkpoint{}}
	type unsaved struct {
		b   []byte
		cp  change.Checkpoint
		due int // the Flush before which the engine saves it
		k   int
	}
	var queue []unsaved
	file := snapshot{next: 0, from: change.Checkpoint{}}
	var snaps []snapshot
	for k := range n {
		for len(queue) > 0 && queue[0].due <= k {
			file.saved, file.from, file.next = queue[0].b, queue[0].cp, queue[0].k+1
			s.h.Saved(queue[0].cp)
			queue = queue[1:]
		}
		b, cp := s.flush(t, lsn(k), commit(k), now.Add(time.Duration(k)*700*time.Millisecond))
		queue = append(queue, unsaved{b: b, cp: cp, due: k + 1 + k%3, k: k})
		// A kill -9 here, before the saves still queued.
		snap := file
		for _, res := range s.sent {
			if res.Time.After(snap.sentMax) {
				snap.sentMax = res.Time
			}
		}
		snap.killedAt = k
		snaps = append(snaps, snap)
	}
	if len(s.sent) < 10 {
		t.Fatalf("only %d messages sent in %d flushes", len(s.sent), n)
	}
	for _, snap := range snaps {
		r := &heldSink{h: NewHeld(time.Second), cp: snap.from.Clone()}
		if err := r.h.Restore(snap.saved); err != nil {
			t.Fatal(err)
		}
		later := now.Add(time.Hour)
		for k := snap.next; k < n+5; k++ {
			_, cp := r.flush(t, lsn(k), commit(k), later.Add(time.Duration(k)*time.Second))
			r.h.Saved(cp) // the restarted engine saves at once
		}
		if len(r.sent) == 0 && snap.next < n {
			t.Errorf("killed after Flush %d: the restarted sink sent nothing", snap.killedAt)
		}
		for _, res := range r.sent {
			if !res.Time.After(snap.sentMax) {
				t.Errorf("killed after Flush %d, restored from the bytes of Flush %d: sent T %v, not above %v sent before the kill", snap.killedAt, snap.next-1, res.Time, snap.sentMax)
			}
		}
	}

	// Restored from bytes that hold a T back (its Flush's save was the
	// last before the kill; the next Flush may have sent it): a replay
	// that brings no later commit time does not send that T again.
	h := NewHeld(time.Second)
	b, _ := (&heldSink{h: h, cp: change.Checkpoint{}}).flush(t, 100, t0, now)
	pending, ok := h.Pending()
	if !ok {
		t.Fatal("nothing held")
	}
	r2 := &heldSink{h: NewHeld(time.Second), cp: change.Checkpoint{}}
	if err := r2.h.Restore(b); err != nil {
		t.Fatal(err)
	}
	for k := range 3 {
		_, cp := r2.flush(t, 101+uint64(k), t0.Add(-time.Second), now.Add(time.Duration(k+1)*time.Minute))
		r2.h.Saved(cp)
	}
	for _, res := range r2.sent {
		if !res.Time.After(pending) {
			t.Errorf("restored with %v pending: sent T %v", pending, res.Time)
		}
	}

	// A Resolver's state (no pending) restores as the last T sent.
	r := NewResolver(time.Second)
	r.Emitted(format.Resolved{Time: t0}, now)
	h = NewHeld(time.Second)
	if err := h.Restore(r.State()); err != nil || !h.Last().Equal(t0) {
		t.Errorf("Restore(Resolver state) = %v, last %v", err, h.Last())
	}
	if _, ok := h.Pending(); ok {
		t.Error("restored a pending message from a Resolver's state")
	}
	if err := h.Restore([]byte(`{"resolved":1}`)); err == nil {
		t.Error("Restore accepted a damaged state")
	}
}
