package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Native is LANGUAGE.md's native event format:
//
//	{"op":"update","schema":"public","table":"users","key":{"id":1},
//	 "before":{...},"after":{...},"changed":["email"],
//	 "tx":{"id":123,"commit_time":"2026-01-02T03:04:05.123456Z"},"position":"1234.0"}
//
// Absent parts are omitted: schema when empty, key/before/after when nil,
// changed when nil, tx when unknown (id 0 and no commit time), position
// when zero. Columns are written sorted by name. position is the event's
// Position.String() ("OFFSET.INDEX"), the same text `position` has in
// expressions; positions are unique within a stream, so an event of a
// partition of its source (a Kafka source's "topic/3", a parallel
// snapshot reader's "#1") also has "partition" before it.
type Native struct{}

// Name returns "native".
func (Native) Name() string { return "native" }

// Append appends e as one native JSON object. A Mark appends nothing.
func (Native) Append(dst []byte, e *change.Event) []byte {
	return appendNative(dst, e, nil)
}

// AppendInTx is Append with the event's place in its source transaction:
// a "transaction" object after "tx",
// {"id":"123:23803720","total_order":2,"data_collection_order":1}
// (Debezium's transaction block). A nil o is Append.
func (Native) AppendInTx(dst []byte, e *change.Event, o *TxOrder) []byte {
	return appendNative(dst, e, o)
}

func appendNative(dst []byte, e *change.Event, o *TxOrder) []byte {
	if e.Op == change.Mark {
		return dst
	}
	dst = append(dst, `{"op":`...)
	dst = appendString(dst, e.Op.String())
	if e.Schema != "" {
		dst = append(dst, `,"schema":`...)
		dst = appendString(dst, e.Schema)
	}
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, e.Table)
	if !e.Key.IsZero() {
		dst = append(dst, `,"key":`...)
		dst = appendRow(dst, e.Key)
	}
	if !e.Before.IsZero() {
		dst = append(dst, `,"before":`...)
		dst = appendRow(dst, e.Before)
	}
	if !e.After.IsZero() {
		dst = append(dst, `,"after":`...)
		dst = appendRow(dst, e.After)
	}
	if e.Changed != nil {
		dst = append(dst, `,"changed":[`...)
		for i, c := range e.Changed {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, c)
		}
		dst = append(dst, ']')
	}
	dst = appendNativeTx(dst, e.Tx)
	if o != nil {
		dst = append(dst, `,"transaction":`...)
		dst = appendTxOrder(dst, o)
	}
	if e.Position.Partition != "" {
		dst = append(dst, `,"partition":`...)
		dst = appendString(dst, e.Position.Partition)
	}
	if !e.Position.IsZero() {
		dst = append(dst, `,"position":`...)
		dst = appendString(dst, e.Position.String())
	}
	return append(dst, '}')
}

// nativeFields are the top-level fields of a native event, for the
// "unknown field" message. "transaction" (AppendInTx) is accepted and
// not decoded: it describes the sink's output, not the change.
var nativeFields = []string{"op", "schema", "table", "key", "before", "after", "changed", "tx", "partition", "position", "transaction"}

// DecodeNative parses one native event. Numbers become int64 when they are
// integers that fit, else change.Numeric (exact, never float64); JSON
// objects inside a row become map[string]any and arrays []any; strings
// stay strings (the format does not say which are timestamps).
//
// When "changed" is absent it is derived: every column of "after" for
// inserts and snapshots, the columns whose value differs between "before"
// and "after" for updates that have both. The returned Position has no
// stream (Source and Partition are empty): the reader assigns it.
//
// Errors name the field that is wrong and what was expected.
func DecodeNative(line []byte) (change.Event, error) {
	if e, ok := fastNative(line); ok {
		return e, nil
	}
	return decodeNativeCarefully(line)
}

// decodeNativeCarefully is DecodeNative through encoding/json, field by
// field, so that an error can say which field is wrong.
func decodeNativeCarefully(line []byte) (change.Event, error) {
	var e change.Event
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return e, errors.New("empty line: want one JSON object per line")
	}
	if line[0] != '{' {
		return e, errors.New("want a JSON object ({...}) per line")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return e, jsonError(err)
	}
	for name := range fields {
		if !slices.Contains(nativeFields, name) {
			return e, fmt.Errorf("unknown field %q: the native format has %s", name, strings.Join(nativeFields, ", "))
		}
	}
	op, err := decodeString(fields, "op")
	if err != nil {
		return e, err
	}
	if op == "" {
		return e, errors.New(`field "op" is missing: want "insert", "update", "delete", "snapshot" or "truncate"`)
	}
	if e.Op, err = change.ParseOp(op); err != nil || e.Op == change.Mark {
		return e, fmt.Errorf(`field "op": unknown op %q: want "insert", "update", "delete", "snapshot" or "truncate"`, op)
	}
	if e.Schema, err = decodeString(fields, "schema"); err != nil {
		return e, err
	}
	if e.Table, err = decodeString(fields, "table"); err != nil {
		return e, err
	}
	if e.Table == "" {
		return e, errors.New(`field "table" is missing: want the table's name, e.g. "users"`)
	}
	for _, f := range []struct {
		name string
		dst  *change.Row
	}{{"key", &e.Key}, {"before", &e.Before}, {"after", &e.After}} {
		if *f.dst, err = decodeRow(fields, f.name); err != nil {
			return e, err
		}
	}
	switch {
	case (e.Op == change.Insert || e.Op == change.Snapshot || e.Op == change.Update) && e.After.IsZero():
		return e, fmt.Errorf(`field "after" is missing: an %s event needs the row after the change`, e.Op)
	case e.Op == change.Delete && e.Before.IsZero() && e.Key.IsZero():
		return e, errors.New(`fields "before" and "key" are both missing: a delete event needs the deleted row or its key`)
	}
	if e.Changed, err = decodeChanged(fields); err != nil {
		return e, err
	}
	if e.Changed == nil {
		e.Changed = deriveChanged(&e)
	}
	if e.Tx, err = decodeTx(fields); err != nil {
		return e, err
	}
	pos, err := decodeString(fields, "position")
	if err != nil {
		return e, err
	}
	if _, err := decodeString(fields, "partition"); err != nil { // the stream's, which the reader assigns
		return e, err
	}
	if pos != "" {
		if e.Position, err = change.ParsePosition(change.Stream{}, pos); err != nil {
			return e, fmt.Errorf(`field "position": %v`, err)
		}
	}
	return e, nil
}

// jsonError rewords encoding/json's errors for a person reading a file.
func jsonError(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("invalid JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	}
	return fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// kindOf names a raw JSON value's kind for messages.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

func decodeString(fields map[string]json.RawMessage, name string) (string, error) {
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("field %q: want a string, got %s", name, kindOf(raw))
	}
	return s, nil
}

func decodeRow(fields map[string]json.RawMessage, name string) (change.Row, error) {
	raw, ok := fields[name]
	if !ok || isNull(raw) {
		return change.Row{}, nil
	}
	if kindOf(raw) != "an object" {
		return change.Row{}, fmt.Errorf("field %q: want an object of columns, got %s", name, kindOf(raw))
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return change.Row{}, fmt.Errorf("field %q: %v", name, jsonError(err))
	}
	for k, v := range m {
		m[k] = normalise(v)
	}
	return change.RowOf(m), nil
}

// normalise turns encoding/json's json.Number into int64 or Numeric,
// recursively.
func normalise(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		return change.Numeric(v)
	case map[string]any:
		for k, x := range v {
			v[k] = normalise(x)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = normalise(x)
		}
		return v
	}
	return v
}

func decodeChanged(fields map[string]json.RawMessage) ([]string, error) {
	raw, ok := fields["changed"]
	if !ok || isNull(raw) {
		return nil, nil
	}
	var names []string
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, fmt.Errorf(`field "changed": want an array of column names, got %s`, kindOf(raw))
	}
	if names == nil {
		names = []string{}
	}
	return names, nil
}

// deriveChanged fills in "changed" as LANGUAGE.md defines it when the line
// does not say.
func deriveChanged(e *change.Event) []string {
	switch {
	case e.Op == change.Insert || e.Op == change.Snapshot:
		return e.After.Names()
	case e.Op == change.Update && !e.Before.IsZero():
		var names []string
		for k, a := range e.After.Sorted() {
			if b, ok := e.Before.Lookup(k); !ok || !reflect.DeepEqual(b, a) {
				names = append(names, k)
			}
		}
		return names
	}
	return nil
}

func decodeTx(fields map[string]json.RawMessage) (change.Tx, error) {
	var tx change.Tx
	raw, ok := fields["tx"]
	if !ok || isNull(raw) {
		return tx, nil
	}
	var t struct {
		ID         *json.RawMessage `json:"id"`
		CommitTime *json.RawMessage `json:"commit_time"`
	}
	if kindOf(raw) != "an object" {
		return tx, fmt.Errorf(`field "tx": want an object {"id": ..., "commit_time": ...}, got %s`, kindOf(raw))
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&t); err != nil {
		return tx, fmt.Errorf(`field "tx": %v (want "id" and "commit_time")`, jsonError(err))
	}
	if t.ID != nil && !isNull(*t.ID) {
		id, err := strconv.ParseUint(string(bytes.TrimSpace(*t.ID)), 10, 64)
		if err != nil {
			return tx, fmt.Errorf(`field "tx.id": want a non-negative integer transaction id, got %s`, bytes.TrimSpace(*t.ID))
		}
		tx.ID = id
	}
	if t.CommitTime != nil && !isNull(*t.CommitTime) {
		var s string
		if err := json.Unmarshal(*t.CommitTime, &s); err != nil {
			return tx, fmt.Errorf(`field "tx.commit_time": want an RFC 3339 time string, got %s`, kindOf(*t.CommitTime))
		}
		ct, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return tx, fmt.Errorf(`field "tx.commit_time": %q is not an RFC 3339 time such as "2026-01-02T03:04:05.123456Z"`, s)
		}
		tx.CommitTime = ct.UTC()
	}
	return tx, nil
}
