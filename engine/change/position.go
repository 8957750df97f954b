package change

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Stream names one totally ordered sequence of positions: a source block
// and, for partitioned sources (Kafka), one partition of it.
type Stream struct {
	Source    string // the source block's name, e.g. "app"
	Partition string // "" for unpartitioned sources; "topic/3" for Kafka
}

func (s Stream) String() string {
	if s.Partition == "" {
		return s.Source
	}
	return s.Source + "/" + s.Partition
}

// ParallelPartition is the partition of reader n (n ≥ 1) of a copy that
// several readers make at once of partition base ("" for the source's
// own): a parallel snapshot's. Reader 0 reads base itself.
func ParallelPartition(base string, n int) string {
	return base + parallelMark + strconv.Itoa(n)
}

// parallelMark separates a parallel reader's number from its base
// partition; no Kafka topic or PostgreSQL partition name holds it.
const parallelMark = "#"

// Parallel reports whether s is a parallel reader's stream
// (ParallelPartition). Its events are Snapshot rows, each a boundary, of
// keys no other stream of the source holds while the copy runs, and
// every change the source's other streams carry after the copy comes
// after them: so a sink may write such streams at once, on connections
// of their own (engine.Laned), as long as it writes its other events
// only once those rows are committed.
func (s Stream) Parallel() bool { return strings.Contains(s.Partition, parallelMark) }

// Position is where an event sits in its source. Positions of one Stream
// are totally ordered by Compare; positions of different streams are not
// comparable.
//
// For PostgreSQL, Offset is the transaction's commit LSN and Index the
// event's index inside the transaction; for files Offset is the byte
// offset of the line; for Kafka the record offset.
type Position struct {
	Source    string
	Partition string
	Offset    uint64
	Index     uint32
}

// Stream returns the stream the position belongs to.
func (p Position) Stream() Stream { return Stream{Source: p.Source, Partition: p.Partition} }

// IsZero reports whether p is the zero Position (no position).
func (p Position) IsZero() bool { return p == Position{} }

// Compare orders two positions of the same stream: -1, 0 or +1.
func (p Position) Compare(q Position) int {
	switch {
	case p.Offset < q.Offset:
		return -1
	case p.Offset > q.Offset:
		return 1
	case p.Index < q.Index:
		return -1
	case p.Index > q.Index:
		return 1
	}
	return 0
}

// String formats the position within its stream as "OFFSET.INDEX"
// (decimal); ParsePosition reads it back. It does not include the stream.
func (p Position) String() string {
	return strconv.FormatUint(p.Offset, 10) + "." + strconv.FormatUint(uint64(p.Index), 10)
}

// LSN formats Offset as a PostgreSQL LSN ("0/16B3748").
func (p Position) LSN() string {
	return fmt.Sprintf("%X/%X", uint32(p.Offset>>32), uint32(p.Offset))
}

// ParsePosition parses a position of stream s written as String writes it
// ("OFFSET.INDEX", decimal) or as a PostgreSQL LSN ("16/B374D848", hex,
// optionally followed by ".INDEX"), the form change logs exported from
// other tools carry.
func ParsePosition(s Stream, text string) (Position, error) {
	off, idx, hasIdx := strings.Cut(text, ".")
	var o uint64
	var err error
	if hi, lo, isLSN := strings.Cut(off, "/"); isLSN {
		var h, l uint64
		h, err = strconv.ParseUint(hi, 16, 32)
		if err == nil {
			l, err = strconv.ParseUint(lo, 16, 32)
		}
		o = h<<32 | l
	} else {
		o, err = strconv.ParseUint(off, 10, 64)
	}
	if err != nil {
		return Position{}, fmt.Errorf("position %q: want OFFSET.INDEX or an LSN such as 0/16B3748", text)
	}
	var i uint64
	if hasIdx {
		if i, err = strconv.ParseUint(idx, 10, 32); err != nil {
			return Position{}, fmt.Errorf("position %q: want OFFSET.INDEX or an LSN such as 0/16B3748", text)
		}
	}
	return Position{Source: s.Source, Partition: s.Partition, Offset: o, Index: uint32(i)}, nil
}

// Checkpoint is the last committed position of each stream a sink reads.
// The zero value is empty (nothing committed) and ready to use after Clone
// or make.
type Checkpoint map[Stream]Position

// Covers reports whether p is at or before the checkpoint of its stream,
// i.e. already committed: a sink skips such events on restart.
func (c Checkpoint) Covers(p Position) bool {
	q, ok := c[p.Stream()]
	return ok && p.Compare(q) <= 0
}

// Advance records p as committed if it is beyond the stream's checkpoint.
func (c Checkpoint) Advance(p Position) {
	if q, ok := c[p.Stream()]; !ok || p.Compare(q) > 0 {
		c[p.Stream()] = p
	}
}

// Clone returns an independent copy.
func (c Checkpoint) Clone() Checkpoint {
	out := make(Checkpoint, len(c))
	for k, v := range c {
		out[k] = v
	}
	return out
}

// Min returns, per stream present in every checkpoint, the lowest position;
// a stream missing from any checkpoint is missing from the result (that
// sink has committed nothing of it). This is how far a source may be
// acknowledged.
func Min(cps ...Checkpoint) Checkpoint {
	if len(cps) == 0 {
		return Checkpoint{}
	}
	out := cps[0].Clone()
	for _, c := range cps[1:] {
		for s, p := range out {
			q, ok := c[s]
			switch {
			case !ok:
				delete(out, s)
			case q.Compare(p) < 0:
				out[s] = q
			}
		}
	}
	return out
}

// checkpointEntry is the stable text form of one stream's position.
type checkpointEntry struct {
	Source    string `json:"source"`
	Partition string `json:"partition,omitempty"`
	Offset    uint64 `json:"offset"`
	Index     uint32 `json:"index"`
}

// MarshalJSON encodes the checkpoint as a list sorted by stream, so that
// the same checkpoint always has the same bytes (it is stored in state
// files and in targets' sluice_checkpoints tables).
func (c Checkpoint) MarshalJSON() ([]byte, error) {
	entries := make([]checkpointEntry, 0, len(c))
	for _, p := range c {
		entries = append(entries, checkpointEntry(p))
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].Source != entries[j].Source {
			return entries[i].Source < entries[j].Source
		}
		return entries[i].Partition < entries[j].Partition
	})
	return json.Marshal(entries)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (c *Checkpoint) UnmarshalJSON(b []byte) error {
	var entries []checkpointEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	out := make(Checkpoint, len(entries))
	for _, e := range entries {
		p := Position(e)
		out[p.Stream()] = p
	}
	*c = out
	return nil
}
