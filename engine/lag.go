package engine

import (
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// maxLagEntries bounds a lagTracker's queue per stream: past it, new
// batches merge into the newest entry, which keeps the oldest time (lag
// is then over-estimated until that merged entry commits, never under).
const maxLagEntries = 256

// lagTracker follows, for one sink, the changes handed to it and not yet
// committed: per stream, a queue of (last position of a batch part, the
// oldest time in it), in position order. Commits pop what they cover.
// Safe for concurrent use (source stages add, the sink stage commits).
type lagTracker struct {
	mu      sync.Mutex
	streams map[change.Stream][]lagEntry
	// skip is what the sink had committed when opened: the sink stage
	// drops those events, so they never commit again and must not count.
	skip change.Checkpoint
	// last is the sink's last committed checkpoint and commit time.
	last       change.Checkpoint
	commitTime time.Time
}

type lagEntry struct {
	pos   change.Position
	since time.Time
}

func newLagTracker(opened change.Checkpoint) *lagTracker {
	return &lagTracker{streams: map[change.Stream][]lagEntry{}, skip: opened}
}

// add records a batch part handed to the sink, read at now. Each event
// counts from its source commit time, or now when it has none.
func (t *lagTracker) add(events []change.Event, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var part map[change.Stream]lagEntry
	for i := range events {
		e := &events[i]
		if t.skip.Covers(e.Position) {
			continue
		}
		since := e.Tx.CommitTime
		if since.IsZero() || since.After(now) {
			since = now
		}
		s := e.Position.Stream()
		if part == nil {
			part = map[change.Stream]lagEntry{}
		}
		cur, ok := part[s]
		if !ok || since.Before(cur.since) {
			cur.since = since
		}
		cur.pos = e.Position
		part[s] = cur
	}
	for s, e := range part {
		q := t.streams[s]
		if n := len(q); n >= maxLagEntries {
			q[n-1].pos = e.pos
			q[n-1].since = minTime(q[n-1].since, e.since)
			continue
		}
		t.streams[s] = append(q, e)
	}
}

// committed records the sink's commit of cp (whose last change has
// commitTime, zero if unknown) and drops every entry cp covers.
func (t *lagTracker) committed(cp change.Checkpoint, commitTime time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.last, t.commitTime = cp, commitTime
	for s, q := range t.streams {
		i := 0
		for i < len(q) && cp.Covers(q[i].pos) {
			i++
		}
		if i == len(q) {
			delete(t.streams, s)
		} else if i > 0 {
			t.streams[s] = append(q[:0:0], q[i:]...)
		}
	}
}

// lag returns the sink's lag: BehindSince is the oldest time of any
// uncommitted change, zero when none is waiting.
func (t *lagTracker) lag() SinkLag {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lagLocked()
}

// report passes the current lag to f under the tracker's lock, so that
// reports from the source and sink stages reach f in the order of the
// states they describe: a stale lag never overwrites a newer one.
func (t *lagTracker) report(f func(SinkLag)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t.lagLocked())
}

func (t *lagTracker) lagLocked() SinkLag {
	var oldest time.Time
	for _, q := range t.streams {
		if len(q) > 0 {
			oldest = minTime(oldest, q[0].since)
		}
	}
	return SinkLag{Committed: t.last, CommitTime: t.commitTime, BehindSince: oldest}
}

// minTime returns the earlier of a and b, a zero time counting as absent.
func minTime(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
