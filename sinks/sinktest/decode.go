package sinktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// The decoders read messages with encoding/json alone, as a consumer of
// the target would, not with sluice's format package: the cases check
// what a reader gets.

// DecodeNative decodes one event in sluice's native format:
// {"op":"insert","schema":"public","table":"items","key":{...},
// "before":{...},"after":{...},...}.
func DecodeNative(b []byte) (Message, error) {
	var v struct {
		Op     string          `json:"op"`
		Table  string          `json:"table"`
		Key    json.RawMessage `json:"key"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return Message{}, fmt.Errorf("native event %s: %w", b, err)
	}
	if v.Op == "" || v.Table == "" {
		return Message{}, fmt.Errorf("native event %s: no op or table", b)
	}
	m := Message{Op: v.Op, Table: v.Table}
	var err error
	if m.Key, err = JSONRow(v.Key); err != nil {
		return Message{}, fmt.Errorf("native event %s: key: %w", b, err)
	}
	row := v.After
	if v.Op == "delete" {
		row = v.Before
	}
	if m.Row, err = JSONRow(row); err != nil {
		return Message{}, fmt.Errorf("native event %s: %w", b, err)
	}
	if m.Row == nil && v.Op == "delete" {
		m.Row = m.Key
	}
	return m, nil
}

// debeziumOps maps Debezium's op letters to sluice's op names.
var debeziumOps = map[string]string{"c": "insert", "u": "update", "d": "delete", "r": "snapshot", "t": "truncate"}

// DecodeDebezium decodes one Debezium envelope (schemas disabled, or the
// payload of {"schema":...,"payload":...}) with its record key, a JSON
// object (nil: no key).
func DecodeDebezium(key, value []byte) (Message, error) {
	var wrapped struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(value, &wrapped); err == nil && wrapped.Schema != nil && wrapped.Payload != nil {
		value = wrapped.Payload
	}
	var v struct {
		Op     string          `json:"op"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
		Source struct {
			Table string `json:"table"`
		} `json:"source"`
	}
	if err := json.Unmarshal(value, &v); err != nil {
		return Message{}, fmt.Errorf("debezium envelope %s: %w", value, err)
	}
	op, ok := debeziumOps[v.Op]
	if !ok || v.Source.Table == "" {
		return Message{}, fmt.Errorf("debezium envelope %s: op %q or source.table missing", value, v.Op)
	}
	m := Message{Op: op, Table: v.Source.Table}
	var err error
	if len(key) > 0 {
		if m.Key, err = JSONRow(key); err != nil {
			return Message{}, fmt.Errorf("record key %s: %w", key, err)
		}
	}
	row := v.After
	if op == "delete" {
		row = v.Before
	}
	if m.Row, err = JSONRow(row); err != nil {
		return Message{}, fmt.Errorf("debezium envelope %s: %w", value, err)
	}
	return m, nil
}

// JSONRow decodes a JSON object into a Row: each value as its JSON text,
// strings unquoted, null as Null. Absent or null gives nil.
func JSONRow(raw json.RawMessage) (Row, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	out := Row{}
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			out[k] = Null
		case string:
			out[k] = v
		case json.Number:
			out[k] = v.String()
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			out[k] = string(b)
		}
	}
	return out, nil
}
