package txmeta

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

// CommitSkew is how far a resolved timestamp stays behind the commit
// times it comes from. PostgreSQL takes a transaction's commit time just
// before it writes the commit record, so transactions committing at the
// same moment can reach the log (and so the sink) in the opposite order
// of their commit times: a transaction after the last one the sink wrote
// may carry an earlier commit time, earlier by as long as writing its
// commit record took (microseconds, more when the WAL is stalled).
// Staying this far behind keeps the promise for any such transaction that
// took less than CommitSkew to write its commit record.
const CommitSkew = time.Second

// Resolver decides when a sink emits a resolved message and for which
// time. Build it with NewResolver; the zero value is not usable.
type Resolver struct {
	every   time.Duration
	streams map[change.Stream]streamMark
	last    time.Time // the last T emitted
	at      time.Time // when it was emitted (zero: not since Restore)
}

// streamMark is the latest transaction of a stream the sink has written
// that carried a commit time.
type streamMark struct {
	time time.Time
	pos  change.Position
}

// NewResolver returns a Resolver that emits at most once per interval
// every: a resolved message is due no sooner than nine tenths of every
// after the previous one (the tenth absorbs jitter, so that heartbeats
// exactly as frequent as the interval bring one each).
func NewResolver(every time.Duration) *Resolver {
	return &Resolver{every: max(every, time.Millisecond), streams: map[change.Stream]streamMark{}}
}

// Note follows an event the sink writes (every one Write gets, Marks
// included): a Boundary with a commit time moves its stream's commit
// time (to the latest seen: commit times are not monotonic in commit
// order) and position.
func (r *Resolver) Note(e *change.Event) {
	if !e.Boundary || e.Tx.CommitTime.IsZero() {
		return
	}
	st := e.Position.Stream()
	m := r.streams[st]
	if e.Tx.CommitTime.After(m.time) {
		m.time = e.Tx.CommitTime.UTC()
	}
	m.pos = e.Position
	r.streams[st] = m
}

// Due returns the resolved message to emit at a commit that makes durable
// every event noted so far and brings the sink to cp, and whether one is
// due. T is the lowest commit time over the streams of cp that have
// carried one (streams that never did, such as a snapshot's, do not
// count), less CommitSkew; it is due when it is later than the last T
// emitted and the interval has passed since that one (see NewResolver).
func (r *Resolver) Due(cp change.Checkpoint, now time.Time) (format.Resolved, bool) {
	var low streamMark
	found := false
	for st, m := range r.streams {
		if _, ok := cp[st]; !ok {
			delete(r.streams, st) // no longer the sink's: it does not hold T back
			continue
		}
		if !found || m.time.Before(low.time) {
			low, found = m, true
		}
	}
	if !found {
		return format.Resolved{}, false
	}
	t := low.time.Add(-CommitSkew)
	if !t.After(r.last) || !r.at.IsZero() && now.Sub(r.at) < r.every-r.every/10 {
		return format.Resolved{}, false
	}
	return format.Resolved{Time: t, Position: low.pos}, true
}

// Emitted records that res is written and durable (or, for a sink that
// commits atomically, committed).
func (r *Resolver) Emitted(res format.Resolved, now time.Time) {
	if res.Time.After(r.last) {
		r.last = res.Time
	}
	r.at = now
}

// Last is the last T emitted (zero before the first).
func (r *Resolver) Last() time.Time { return r.last }

// state is the JSON form of a Resolver's state. Pending is a Held's T
// found due but not sent yet (nil: none).
type state struct {
	Resolved time.Time     `json:"resolved"`
	Pending  *time.Time    `json:"pending,omitempty"`
	Streams  []streamState `json:"streams,omitempty"`
}

type streamState struct {
	Source    string    `json:"source"`
	Partition string    `json:"partition,omitempty"`
	Time      time.Time `json:"time"`
	Position  string    `json:"position"`
}

// State returns what Restore needs to go on after a restart: the last T
// emitted and each stream's commit time and position.
func (r *Resolver) State() json.RawMessage { return r.marshal(r.last, nil) }

// marshal is the JSON form of the state with last as the last T emitted
// and pending as a T due but not emitted yet (nil: none).
func (r *Resolver) marshal(last time.Time, pending *time.Time) json.RawMessage {
	s := state{Resolved: last, Pending: pending}
	for st, m := range r.streams {
		s.Streams = append(s.Streams, streamState{Source: st.Source, Partition: st.Partition, Time: m.time, Position: m.pos.String()})
	}
	b, _ := json.Marshal(s) // times and strings only: cannot fail
	return b
}

// Restore replaces the state with one State (or Held.State) returned;
// empty (or null) means none: nothing emitted yet. The last T emitted
// becomes the later of the state's last T and its pending one, so that
// no T lower than either is emitted.
func (r *Resolver) Restore(b []byte) error {
	_, err := r.restore(b)
	return err
}

// restore is Restore; it also returns the state's last T emitted, the
// pending one left out.
func (r *Resolver) restore(b []byte) (time.Time, error) {
	r.last, r.at = time.Time{}, time.Time{}
	clear(r.streams)
	if len(b) == 0 || string(b) == "null" {
		return time.Time{}, nil
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return time.Time{}, fmt.Errorf("resolved state: %v", err)
	}
	for _, m := range s.Streams {
		st := change.Stream{Source: m.Source, Partition: m.Partition}
		p, err := change.ParsePosition(st, m.Position)
		if err != nil {
			clear(r.streams)
			return time.Time{}, fmt.Errorf("resolved state of stream %s: %v", st, err)
		}
		r.streams[st] = streamMark{time: m.Time.UTC(), pos: p}
	}
	sent := s.Resolved.UTC()
	r.last = sent
	if s.Pending != nil && s.Pending.After(r.last) {
		r.last = s.Pending.UTC()
	}
	return sent, nil
}
