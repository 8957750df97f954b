package state

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// recordVersion is the format byte every record starts with.
const recordVersion byte = 1

// errRecord wraps every decoding failure: the file was damaged or written
// by an incompatible sluice.
var errRecord = errors.New("damaged state record")

func encodeRecord(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append([]byte{recordVersion}, b...), nil
}

func decodeRecord(b []byte, v any) error {
	if len(b) == 0 {
		return fmt.Errorf("%w: empty", errRecord)
	}
	if b[0] != recordVersion {
		return fmt.Errorf("%w: format version %d, this sluice reads version %d (was the file written by a newer sluice?)", errRecord, b[0], recordVersion)
	}
	d := json.NewDecoder(bytes.NewReader(b[1:]))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errRecord, err)
	}
	return nil
}

// sinkRecord is what is stored per sink.
type sinkRecord struct {
	Checkpoint change.Checkpoint `json:"checkpoint"`
	Saved      []byte            `json:"saved,omitempty"`
	Time       time.Time         `json:"time"`
	// CommitTime is the source commit time of the last change the
	// checkpoint covers (absent in files of older sluices).
	CommitTime time.Time `json:"commit_time,omitzero"`
}

// sourceRecord is what is stored per source.
type sourceRecord struct {
	Acked change.Checkpoint `json:"acked"`
	Time  time.Time         `json:"time"`
}

// letterRecord is a dead letter as stored.
type letterRecord struct {
	Stage string      `json:"stage"`
	Err   string      `json:"error"`
	Time  time.Time   `json:"time"`
	Event eventRecord `json:"event"`
}

// eventRecord stores an event without loss of its values' Go types, so
// that a replayed event is the event that failed (unlike the native
// format, which cannot tell a timestamp from a string).
type eventRecord struct {
	Op         string          `json:"op"`
	Schema     string          `json:"schema,omitempty"`
	Table      string          `json:"table"`
	Key        json.RawMessage `json:"key,omitempty"`
	Before     json.RawMessage `json:"before,omitempty"`
	After      json.RawMessage `json:"after,omitempty"`
	Changed    []string        `json:"changed,omitempty"`
	TxID       uint64          `json:"tx_id,omitempty"`
	CommitTime time.Time       `json:"commit_time"`
	Source     string          `json:"source"`
	Partition  string          `json:"partition,omitempty"`
	Offset     uint64          `json:"offset"`
	Index      uint32          `json:"index"`
	Boundary   bool            `json:"boundary,omitempty"`
	Relation   *relationRecord `json:"relation,omitempty"`
}

type relationRecord struct {
	Schema  string          `json:"schema"`
	Table   string          `json:"table"`
	Columns []change.Column `json:"columns"`
	Version uint32          `json:"version"`
}

func toEventRecord(e *change.Event) eventRecord {
	r := eventRecord{
		Op: e.Op.String(), Schema: e.Schema, Table: e.Table, Changed: e.Changed,
		TxID: e.Tx.ID, CommitTime: e.Tx.CommitTime,
		Source: e.Position.Source, Partition: e.Position.Partition, Offset: e.Position.Offset, Index: e.Position.Index,
		Boundary: e.Boundary,
		Key:      rowJSON(e.Key), Before: rowJSON(e.Before), After: rowJSON(e.After),
	}
	if rel := e.Relation; rel != nil {
		r.Relation = &relationRecord{Schema: rel.Schema, Table: rel.Table, Columns: rel.Columns, Version: rel.Version}
	}
	return r
}

func (r *eventRecord) event() (change.Event, error) {
	op, err := change.ParseOp(r.Op)
	if err != nil {
		return change.Event{}, fmt.Errorf("%w: %v", errRecord, err)
	}
	e := change.Event{
		Op: op, Schema: r.Schema, Table: r.Table, Changed: r.Changed,
		Tx:       change.Tx{ID: r.TxID, CommitTime: r.CommitTime},
		Position: change.Position{Source: r.Source, Partition: r.Partition, Offset: r.Offset, Index: r.Index},
		Boundary: r.Boundary,
	}
	for _, f := range []struct {
		raw json.RawMessage
		dst *change.Row
	}{{r.Key, &e.Key}, {r.Before, &e.Before}, {r.After, &e.After}} {
		if *f.dst, err = rowFromJSON(f.raw); err != nil {
			return change.Event{}, err
		}
	}
	if rel := r.Relation; rel != nil {
		e.Relation = &change.Relation{Schema: rel.Schema, Table: rel.Table, Columns: rel.Columns, Version: rel.Version}
	}
	return e, nil
}

// rowJSON encodes a row with each value tagged by its type:
// {"i":1} int64, {"f":"1.5"} float64, {"s":..} string, {"b":base64} []byte,
// {"t":RFC3339Nano} time, {"n":..} Numeric, {"j":..} JSON, {"a":[..]}
// array, {"m":{..}} object; booleans and null as themselves.
func rowJSON(r change.Row) json.RawMessage {
	if r.IsZero() {
		return nil
	}
	m := make(map[string]any, r.Len())
	for k, v := range r.All() {
		m[k] = tagged(v)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

func tagged(v any) any {
	switch v := v.(type) {
	case nil, bool:
		return v
	case int64:
		return map[string]int64{"i": v}
	case int:
		return map[string]int64{"i": int64(v)}
	case int32:
		return map[string]int64{"i": int64(v)}
	case float64:
		return map[string]string{"f": strconv.FormatFloat(v, 'g', -1, 64)}
	case float32:
		return map[string]string{"f": strconv.FormatFloat(float64(v), 'g', -1, 32)}
	case string:
		return map[string]string{"s": v}
	case []byte:
		return map[string]string{"b": base64.StdEncoding.EncodeToString(v)}
	case time.Time:
		return map[string]string{"t": v.Format(time.RFC3339Nano)}
	case change.Numeric:
		return map[string]string{"n": string(v)}
	case change.JSON:
		return map[string]string{"j": string(v)}
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = tagged(x)
		}
		return map[string]any{"a": out}
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = tagged(x)
		}
		return map[string]any{"m": out}
	}
	return map[string]string{"s": fmt.Sprint(v)}
}

func rowFromJSON(raw json.RawMessage) (change.Row, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return change.Row{}, nil
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return change.Row{}, fmt.Errorf("%w: row: %v", errRecord, err)
	}
	for k, v := range m {
		x, err := untagged(v)
		if err != nil {
			return change.Row{}, fmt.Errorf("column %q: %w", k, err)
		}
		m[k] = x
	}
	return change.RowOf(m), nil
}

func untagged(v any) (any, error) {
	switch v := v.(type) {
	case nil, bool:
		return v, nil
	case map[string]any:
		if len(v) != 1 {
			break
		}
		for tag, x := range v {
			return untag(tag, x)
		}
	}
	return nil, fmt.Errorf("%w: value %v has no type tag", errRecord, v)
}

func untag(tag string, x any) (any, error) {
	bad := fmt.Errorf("%w: bad %q value %v", errRecord, tag, x)
	s, isString := x.(string)
	switch tag {
	case "i":
		n, ok := x.(json.Number)
		if !ok {
			return nil, bad
		}
		i, err := n.Int64()
		if err != nil {
			return nil, bad
		}
		return i, nil
	case "f":
		f, err := strconv.ParseFloat(s, 64)
		if !isString || (err != nil && !math.IsInf(f, 0)) {
			return nil, bad
		}
		return f, nil
	case "s":
		if !isString {
			return nil, bad
		}
		return s, nil
	case "b":
		b, err := base64.StdEncoding.DecodeString(s)
		if !isString || err != nil {
			return nil, bad
		}
		return b, nil
	case "t":
		t, err := time.Parse(time.RFC3339Nano, s)
		if !isString || err != nil {
			return nil, bad
		}
		return t, nil
	case "n":
		if !isString {
			return nil, bad
		}
		return change.Numeric(s), nil
	case "j":
		if !isString {
			return nil, bad
		}
		return change.JSON(s), nil
	case "a":
		list, ok := x.([]any)
		if !ok {
			return nil, bad
		}
		out := make([]any, len(list))
		for i, y := range list {
			var err error
			if out[i], err = untagged(y); err != nil {
				return nil, err
			}
		}
		return out, nil
	case "m":
		m, ok := x.(map[string]any)
		if !ok {
			return nil, bad
		}
		out := make(map[string]any, len(m))
		for k, y := range m {
			var err error
			if out[k], err = untagged(y); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, bad
}
