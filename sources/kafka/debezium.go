package kafka

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

// debeziumOps maps Debezium's op letters to sluice's ops; "m" (a logical
// decoding message) carries no row and becomes a Mark.
var debeziumOps = map[string]string{"c": "insert", "u": "update", "d": "delete", "r": "snapshot", "t": "truncate"}

// DecodeDebezium decodes one record of a Debezium topic: value is the
// change event's value, key its key (both as Kafka Connect's JSON
// converter writes them, with or without the schema/payload wrapper).
// It reports row=false, with no error, for records that carry no row: a
// tombstone (nil or null value) and a message event (op "m").
//
// With a schema, values are converted by their semantic type: Decimal
// and VariableScaleDecimal to change.Numeric, Date/Timestamp/
// MicroTimestamp/NanoTimestamp/ZonedTimestamp to time.Time (UTC), Json to
// change.JSON, bytes to []byte. Without one they stay as JSON has them.
// The returned Position has no stream; the caller assigns it.
func DecodeDebezium(key, value []byte) (e change.Event, row bool, err error) {
	value = bytes.TrimSpace(value)
	if len(value) == 0 || string(value) == "null" {
		return e, false, nil
	}
	payload, schema, err := unwrap(value)
	if err != nil {
		return e, false, err
	}
	if payload == nil {
		return e, false, nil // a null payload inside the wrapper: a tombstone
	}
	var env struct {
		Op     string          `json:"op"`
		Before json.RawMessage `json:"before"`
		After  json.RawMessage `json:"after"`
		Source *struct {
			Schema string       `json:"schema"`
			Table  string       `json:"table"`
			TxID   *json.Number `json:"txId"`
			TsMs   *json.Number `json:"ts_ms"`
		} `json:"source"`
	}
	if err := json.Unmarshal(payload, &env); err != nil {
		return e, false, fmt.Errorf("debezium envelope: %v", err)
	}
	if env.Op == "m" {
		return e, false, nil
	}
	op, ok := debeziumOps[env.Op]
	if !ok {
		return e, false, fmt.Errorf(`debezium envelope: field "op" is %q: want c, u, d, r, t or m (is this topic written by Debezium? use format = "native" for sluice's native events)`, env.Op)
	}
	if env.Source == nil || env.Source.Table == "" {
		return e, false, errors.New(`debezium envelope: field "source.table" is missing: cannot tell which table changed`)
	}
	// The envelope's rows are decoded as a native event, so values are
	// normalised exactly as everywhere else (int64 or exact Numeric).
	k, err := keyPayload(key)
	if err != nil {
		return e, false, err
	}
	line := make([]byte, 0, len(payload)+len(k)+64)
	line = append(line, `{"op":"`...)
	line = append(line, op...)
	line = append(line, `","schema":`...)
	line = appendJSONString(line, env.Source.Schema)
	line = append(line, `,"table":`...)
	line = appendJSONString(line, env.Source.Table)
	for _, part := range []struct {
		name string
		raw  json.RawMessage
	}{{"key", k}, {"before", env.Before}, {"after", env.After}} {
		if len(part.raw) > 0 && string(part.raw) != "null" {
			line = append(line, `,"`+part.name+`":`...)
			line = append(line, part.raw...)
		}
	}
	line = append(line, '}')
	if e, err = format.DecodeNative(line); err != nil {
		return e, false, fmt.Errorf("debezium envelope: %v", err)
	}
	if env.Source.TxID != nil {
		if id, err := strconv.ParseUint(env.Source.TxID.String(), 10, 64); err == nil {
			e.Tx.ID = id
		}
	}
	if env.Source.TsMs != nil {
		if ms, err := env.Source.TsMs.Int64(); err == nil && ms > 0 {
			e.Tx.CommitTime = time.UnixMilli(ms).UTC()
		}
	}
	if schema != nil {
		types, err := rowTypes(schema)
		if err != nil {
			return e, false, err
		}
		for _, r := range []*change.Row{&e.Before, &e.After, &e.Key} {
			if *r, err = convert(*r, types); err != nil {
				return e, false, err
			}
		}
	}
	return e, true, nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}

// unwrap returns the payload of a {"schema":...,"payload":...} document
// and its schema, or the document itself when it has no wrapper.
func unwrap(doc []byte) (payload, schema json.RawMessage, err error) {
	if len(doc) == 0 || doc[0] != '{' {
		return nil, nil, fmt.Errorf("want a JSON object, got %.40q", doc)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, nil, fmt.Errorf("not JSON: %v", err)
	}
	p, hasPayload := top["payload"]
	_, hasSchema := top["schema"]
	if !hasPayload || !hasSchema || len(top) != 2 {
		return doc, nil, nil
	}
	if string(bytes.TrimSpace(p)) == "null" {
		return nil, nil, nil
	}
	s := top["schema"]
	if string(bytes.TrimSpace(s)) == "null" {
		s = nil
	}
	return p, s, nil
}

// keyPayload returns the record key's columns as a JSON object (nil for
// a null key, or a key that is not an object, such as a plain string).
func keyPayload(key []byte) (json.RawMessage, error) {
	key = bytes.TrimSpace(key)
	if len(key) == 0 || key[0] != '{' {
		return nil, nil
	}
	p, _, err := unwrap(key)
	if err != nil {
		return nil, fmt.Errorf("record key: %v", err)
	}
	if len(p) == 0 || p[0] != '{' {
		return nil, nil
	}
	return p, nil
}

// connectField is one field of a Kafka Connect schema.
type connectField struct {
	Field      string            `json:"field"`
	Type       string            `json:"type"`
	Name       string            `json:"name"`
	Parameters map[string]string `json:"parameters"`
	Fields     []connectField    `json:"fields"`
}

// rowTypes returns the column schemas of the envelope's before/after
// struct, by column name.
func rowTypes(schema json.RawMessage) (map[string]connectField, error) {
	var env connectField
	if err := json.Unmarshal(schema, &env); err != nil {
		return nil, fmt.Errorf("debezium schema: %v", err)
	}
	types := map[string]connectField{}
	for _, f := range env.Fields {
		if f.Field == "before" || f.Field == "after" {
			for _, c := range f.Fields {
				types[c.Field] = c
			}
		}
	}
	return types, nil
}

// convert returns r with the values that the schema gives a semantic
// type replaced. r itself is left as it is: the replaced values go to a
// copy (a Row shares its values, and Set on a copy of the Row value
// would write them in place).
func convert(r change.Row, types map[string]connectField) (change.Row, error) {
	out, copied := r, false
	for col, v := range r.All() {
		t, ok := types[col]
		if !ok || v == nil {
			continue
		}
		nv, err := semantic(v, t)
		if err != nil {
			return r, fmt.Errorf("debezium envelope: column %q (%s): %v", col, t.Name, err)
		}
		if !copied {
			out, copied = r.Clone(), true
		}
		out.Set(col, nv)
	}
	return out, nil
}

func semantic(v any, t connectField) (any, error) {
	switch t.Name {
	case "org.apache.kafka.connect.data.Decimal":
		s, ok := v.(string)
		if !ok {
			return v, nil // decimal.handling.mode double or string
		}
		scale, _ := strconv.Atoi(t.Parameters["scale"])
		return decimal(s, scale)
	case "io.debezium.data.VariableScaleDecimal":
		m, ok := v.(map[string]any)
		if !ok {
			return v, nil
		}
		s, _ := m["value"].(string)
		scale, _ := m["scale"].(int64)
		return decimal(s, int(scale))
	case "io.debezium.time.Date", "org.apache.kafka.connect.data.Date":
		return epoch(v, 24*time.Hour)
	case "io.debezium.time.Timestamp", "org.apache.kafka.connect.data.Timestamp":
		return epoch(v, time.Millisecond)
	case "io.debezium.time.MicroTimestamp":
		return epoch(v, time.Microsecond)
	case "io.debezium.time.NanoTimestamp":
		return epoch(v, time.Nanosecond)
	case "io.debezium.time.ZonedTimestamp":
		s, ok := v.(string)
		if !ok {
			return v, nil
		}
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("want an ISO-8601 timestamp, got %q", s)
		}
		return ts.UTC(), nil
	case "io.debezium.data.Json":
		if s, ok := v.(string); ok {
			return change.JSON(s), nil
		}
		return v, nil
	case "":
		if s, ok := v.(string); ok && t.Type == "bytes" {
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("want base64 bytes: %v", err)
			}
			return b, nil
		}
	}
	return v, nil
}

// maxScale bounds a decimal's scale (PostgreSQL allows 1000 digits after
// the point for numeric without a declared scale), so a bad record cannot
// make the decoder build an enormous string.
const maxScale = 16383

// decimal decodes Kafka Connect's Decimal: base64 of the big-endian
// two's-complement unscaled value.
func decimal(b64 string, scale int) (change.Numeric, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", fmt.Errorf("want base64 of the unscaled value: %v", err)
	}
	n := new(big.Int).SetBytes(raw)
	if len(raw) > 0 && raw[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(len(raw))*8))
	}
	if scale < 0 || scale > maxScale {
		return "", fmt.Errorf("scale %d is outside 0..%d", scale, maxScale)
	}
	s := n.String()
	if scale == 0 {
		return change.Numeric(s), nil
	}
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	if len(s) <= scale {
		s = strings.Repeat("0", scale-len(s)+1) + s
	}
	s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	if neg {
		s = "-" + s
	}
	return change.Numeric(s), nil
}

// epoch turns an integer count of unit since 1970-01-01 into a UTC time.
// Debezium's ±infinity timestamps are far out but still representable.
func epoch(v any, unit time.Duration) (any, error) {
	n, ok := v.(int64)
	if !ok {
		return nil, fmt.Errorf("want an integer, got %T", v)
	}
	switch unit {
	case 24 * time.Hour:
		return time.Unix(0, 0).UTC().AddDate(0, 0, int(n)), nil
	case time.Millisecond:
		return time.UnixMilli(n).UTC(), nil
	case time.Microsecond:
		return time.UnixMicro(n).UTC(), nil
	}
	return time.Unix(0, n).UTC(), nil
}
