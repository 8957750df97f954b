package format

import (
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// appendConnectSchema appends the Kafka Connect schema of a Debezium
// envelope for e: the Debezium PostgreSQL connector's envelope, source
// and transaction blocks, and a Value struct with one field per column of
// the row (in the relation's column order when the source knows it, else
// by name). A column's type comes from the source's type name where
// known, else from its Go value:
//
//	integers      int16/int32/int64     booleans  boolean
//	floats        float/double          numerics  double (exact digits)
//	text          string                bytes     bytes (base64)
//	timestamps    string io.debezium.time.ZonedTimestamp (RFC 3339)
//	json, objects string io.debezium.data.Json
//	arrays        array of the first element's type
//
// Key columns that are NOT NULL are required; every other field is
// optional.
func appendConnectSchema(dst []byte, server string, e *change.Event, before change.Row) []byte {
	prefix := server + "." + e.Schema + "." + e.Table
	value := valueSchema(prefix+".Value", e, before)
	dst = append(dst, `{"type":"struct","fields":[`...)
	dst = append(dst, value...)
	dst = append(dst, `,"field":"before"},`...)
	dst = append(dst, value...)
	dst = append(dst, `,"field":"after"},`...)
	dst = append(dst, sourceSchema...)
	dst = append(dst, `],"optional":false,"name":`...)
	dst = appendString(dst, prefix+".Envelope")
	return append(dst, `,"version":1}`...)
}

// sourceSchema is the fixed part after the row structs: source, op, ts_ms
// and transaction.
const sourceSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"version"},` +
	`{"type":"string","optional":false,"field":"connector"},` +
	`{"type":"string","optional":false,"field":"name"},` +
	`{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},` +
	`{"type":"string","optional":false,"field":"db"},` +
	`{"type":"string","optional":false,"field":"schema"},` +
	`{"type":"string","optional":false,"field":"table"},` +
	`{"type":"int64","optional":true,"field":"txId"},` +
	`{"type":"int64","optional":true,"field":"lsn"}` +
	`],"optional":false,"name":"io.debezium.connector.postgresql.Source","field":"source"},` +
	`{"type":"string","optional":false,"field":"op"},` +
	`{"type":"int64","optional":true,"field":"ts_ms"},` +
	`{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"id"},` +
	`{"type":"int64","optional":false,"field":"total_order"},` +
	`{"type":"int64","optional":false,"field":"data_collection_order"}` +
	`],"optional":true,"name":"event.block","version":1,"field":"transaction"}`

// valueSchema returns the row struct's schema, without its closing brace
// (the caller adds the field name).
func valueSchema(name string, e *change.Event, before change.Row) []byte {
	// The fields: the relation's columns, then the rows' other columns by
	// name; cols[i] is the relation's column of names[i], nil for one the
	// relation lacks.
	var names []string
	var cols []*change.Column
	seen := map[string]bool{}
	add := func(n string, c *change.Column) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
			cols = append(cols, c)
		}
	}
	if e.Relation != nil {
		for i := range e.Relation.Columns {
			add(e.Relation.Columns[i].Name, &e.Relation.Columns[i])
		}
	}
	for _, r := range []change.Row{e.After, before} {
		for n := range r.Sorted() {
			add(n, nil)
		}
	}
	dst := []byte(`{"type":"struct","fields":[`)
	for i, n := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		col := cols[i]
		v, ok := e.After.Lookup(n)
		if !ok || v == nil {
			v = before.Get(n)
		}
		dst = appendFieldType(dst, col, v)
		dst = append(dst, `,"optional":`...)
		if col != nil && col.Key && col.NotNull {
			dst = append(dst, "false"...)
		} else {
			dst = append(dst, "true"...)
		}
		dst = append(dst, `,"field":`...)
		dst = appendString(dst, n)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"optional":true,"name":`...)
	return appendString(dst, name)
}

// appendFieldType appends `{"type":...` (and name or items) of one column,
// leaving the object open.
func appendFieldType(dst []byte, col *change.Column, v any) []byte {
	if col != nil {
		if t := pgConnectType(col.Type); t != "" {
			return append(dst, t...)
		}
	}
	return append(dst, valueConnectType(v, 0)...)
}

const (
	typeZoned = `{"type":"string","name":"io.debezium.time.ZonedTimestamp","version":1`
	typeJSON  = `{"type":"string","name":"io.debezium.data.Json","version":1`
)

// pgConnectType maps a PostgreSQL type name; "" when unknown (arrays and
// user types fall back to the value).
func pgConnectType(t string) string {
	base, _, _ := strings.Cut(strings.ToLower(t), "(")
	switch strings.TrimSpace(base) {
	case "smallint", "int2", "smallserial":
		return `{"type":"int16"`
	case "integer", "int", "int4", "serial":
		return `{"type":"int32"`
	case "bigint", "int8", "bigserial", "oid":
		return `{"type":"int64"`
	case "real", "float4":
		return `{"type":"float"`
	case "double precision", "float8", "numeric", "decimal", "money":
		return `{"type":"double"`
	case "boolean", "bool":
		return `{"type":"boolean"`
	case "bytea":
		return `{"type":"bytes"`
	case "json", "jsonb":
		return typeJSON
	case "timestamp", "timestamp with time zone", "timestamp without time zone", "timestamptz", "date":
		return typeZoned
	case "text", "character varying", "varchar", "character", "char", "uuid", "citext", "name", "time", "time without time zone", "time with time zone", "interval", "inet", "cidr", "macaddr":
		return `{"type":"string"`
	}
	return ""
}

// valueConnectType derives a column's type from a value.
func valueConnectType(v any, depth int) string {
	switch v := v.(type) {
	case bool:
		return `{"type":"boolean"`
	case int16:
		return `{"type":"int16"`
	case int32:
		return `{"type":"int32"`
	case int64, int, uint32, uint64:
		return `{"type":"int64"`
	case float32:
		return `{"type":"float"`
	case float64, change.Numeric:
		return `{"type":"double"`
	case []byte:
		return `{"type":"bytes"`
	case time.Time:
		return typeZoned
	case change.JSON, map[string]any:
		return typeJSON
	case []any:
		items := `{"type":"string"`
		for _, x := range v {
			if x != nil && depth < 8 {
				items = valueConnectType(x, depth+1)
				break
			}
		}
		return `{"type":"array","items":` + items + `,"optional":true}`
	}
	return `{"type":"string"`
}
