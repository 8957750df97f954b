package nats

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Header keys of every message the sink publishes, besides JetStream's
// own Nats-Msg-Id, Nats-Expected-Stream and Nats-Expected-Last-Sequence.
const (
	// HeaderCheckpoint is the sink's checkpoint as of the message: the
	// checkpoint of the last Flush advanced by every event written since,
	// up to and including this one, as change.Checkpoint.MarshalJSON
	// encodes it ([{"source":"app","offset":23803720,"index":3}]).
	HeaderCheckpoint = "Sluice-Checkpoint"
	// HeaderSink names the sink that wrote the message,
	// "<pipeline>/<sink>": Open refuses a stream whose last message
	// another writer published.
	HeaderSink = "Sluice-Sink"
	// HeaderControl is only on the message Forget publishes ("forget"),
	// which has no payload; consumers skip it.
	HeaderControl = "Sluice-Control"
)

// MsgID is the Nats-Msg-Id of the message of the event at p:
// "<stream>@<OFFSET.INDEX>", e.g. "app@23803720.3" or, for a partitioned
// source, "orders/orders/2@1500.0". Positions are unique per stream, so
// the id is unique in the sink's stream and the same on every re-send.
func MsgID(p change.Position) string {
	return p.Stream().String() + "@" + p.String()
}

// running is the checkpoint carried in HeaderCheckpoint: it encodes as
// change.Checkpoint.MarshalJSON does, byte for byte, without
// reflection for each message.
type running struct {
	cp      change.Checkpoint
	streams []change.Stream          // the streams of cp, sorted as MarshalJSON sorts them
	prefix  map[change.Stream][]byte // `{"source":...,"offset":` of each stream
	text    string                   // the encoding of cp; "" when stale
}

func newRunning(cp change.Checkpoint) *running {
	r := &running{cp: change.Checkpoint{}, prefix: map[change.Stream][]byte{}}
	for _, p := range cp {
		r.advance(p)
	}
	return r
}

// advance moves the checkpoint to p if p is beyond its stream's position.
func (r *running) advance(p change.Position) {
	st := p.Stream()
	q, ok := r.cp[st]
	if ok && p.Compare(q) <= 0 {
		return
	}
	if !ok {
		i, _ := slices.BinarySearchFunc(r.streams, st, compareStreams)
		r.streams = slices.Insert(r.streams, i, st)
		src, _ := json.Marshal(st.Source)
		b := append([]byte(`{"source":`), src...)
		if st.Partition != "" {
			part, _ := json.Marshal(st.Partition)
			b = append(append(b, `,"partition":`...), part...)
		}
		r.prefix[st] = append(b, `,"offset":`...)
	}
	r.cp[st] = p
	r.text = ""
}

// String returns the encoding of the checkpoint.
func (r *running) String() string {
	if r.text != "" {
		return r.text
	}
	b := make([]byte, 0, 64*len(r.streams))
	b = append(b, '[')
	for i, st := range r.streams {
		if i > 0 {
			b = append(b, ',')
		}
		p := r.cp[st]
		b = append(b, r.prefix[st]...)
		b = strconv.AppendUint(b, p.Offset, 10)
		b = append(b, `,"index":`...)
		b = strconv.AppendUint(b, uint64(p.Index), 10)
		b = append(b, '}')
	}
	r.text = string(append(b, ']'))
	return r.text
}

func compareStreams(a, b change.Stream) int {
	return cmp.Or(strings.Compare(a.Source, b.Source), strings.Compare(a.Partition, b.Partition))
}

// later returns, per stream, the later of the positions in a and b (a
// stream in only one of them keeps its position).
func later(a, b change.Checkpoint) change.Checkpoint {
	out := a.Clone()
	for _, p := range b {
		out.Advance(p)
	}
	return out
}
