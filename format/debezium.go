package format

import (
	"strconv"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Version is what the Debezium envelope's source.version says.
const Version = "sluice-1"

// Debezium is the envelope of Debezium's PostgreSQL connector, as Kafka
// Connect's JSON converter writes it with schemas disabled:
//
//	{"before":{...},"after":{...},
//	 "source":{"version":"sluice-1","connector":"postgresql","name":"app",
//	           "ts_ms":1767323045123,"snapshot":"false","db":"shop",
//	           "schema":"public","table":"users","txId":123,"lsn":23803720},
//	 "op":"u","ts_ms":1767323045200,"transaction":null}
//
// op is "c" (insert), "u" (update), "d" (delete), "r" (snapshot read) or
// "t" (truncate). source.ts_ms is the commit time and the top-level ts_ms
// the time sluice encoded the event, both in Unix milliseconds. txId and
// lsn are null when unknown; lsn is the position's Offset (for PostgreSQL
// the commit LSN as a number, as Debezium writes it). Column values are
// written as in the native format (timestamps as RFC 3339 strings, like
// Debezium's ZonedTimestamp, and numerics as exact JSON numbers), except
// that JSON values (json/jsonb columns, objects) are JSON strings, as
// Debezium writes them.
//
// With Schemas set, the envelope is wrapped as Kafka Connect's JSON
// converter does with schemas.enable=true: {"schema":{...},"payload":{...}},
// the schema describing each column (see connect.go for the types).
//
// The zero value is ready to use.
type Debezium struct {
	// Server is source.name, Debezium's logical server name (its
	// topic.prefix); default: the event's source block name.
	Server string
	// DB is source.db, the source database's name; default "".
	DB string
	// Now gives the top-level ts_ms; default time.Now. Tests fix it.
	Now func() time.Time
	// Schemas wraps each envelope with its Kafka Connect schema.
	Schemas bool
}

// Name returns "debezium".
func (Debezium) Name() string { return "debezium" }

var debeziumOps = [...]string{change.Insert: "c", change.Update: "u", change.Delete: "d", change.Snapshot: "r", change.Truncate: "t"}

// Append appends e in Debezium's envelope. A Mark appends nothing.
func (d Debezium) Append(dst []byte, e *change.Event) []byte {
	return d.appendEvent(dst, e, nil)
}

// AppendInTx is Append with the envelope's transaction block filled in
// instead of null: {"id":"123:23803720","total_order":2,
// "data_collection_order":1}, as Debezium writes it with
// provide.transaction.metadata. A nil o is Append.
func (d Debezium) AppendInTx(dst []byte, e *change.Event, o *TxOrder) []byte {
	return d.appendEvent(dst, e, o)
}

func (d Debezium) appendEvent(dst []byte, e *change.Event, o *TxOrder) []byte {
	if e.Op == change.Mark || int(e.Op) >= len(debeziumOps) || debeziumOps[e.Op] == "" {
		return dst
	}
	before := e.Before
	if before.IsZero() && e.Op == change.Delete {
		// Without REPLICA IDENTITY FULL Debezium sends the key as before.
		before = e.Key
	}
	name := d.Server
	if name == "" {
		name = e.Position.Source
	}
	if d.Schemas {
		dst = append(dst, `{"schema":`...)
		dst = appendConnectSchema(dst, name, e, before)
		dst = append(dst, `,"payload":`...)
	}
	dst = append(dst, `{"before":`...)
	dst = appendDebeziumRow(dst, before)
	dst = append(dst, `,"after":`...)
	dst = appendDebeziumRow(dst, e.After)
	dst = append(dst, `,"source":{"version":"`+Version+`","connector":"postgresql","name":`...)
	dst = appendString(dst, name)
	dst = append(dst, `,"ts_ms":`...)
	if e.Tx.CommitTime.IsZero() {
		dst = append(dst, '0')
	} else {
		dst = strconv.AppendInt(dst, e.Tx.CommitTime.UnixMilli(), 10)
	}
	if e.Op == change.Snapshot {
		if e.SnapshotLast {
			dst = append(dst, `,"snapshot":"last"`...)
		} else {
			dst = append(dst, `,"snapshot":"true"`...)
		}
	} else {
		dst = append(dst, `,"snapshot":"false"`...)
	}
	dst = append(dst, `,"db":`...)
	dst = appendString(dst, d.DB)
	dst = append(dst, `,"schema":`...)
	dst = appendString(dst, e.Schema)
	dst = append(dst, `,"table":`...)
	dst = appendString(dst, e.Table)
	dst = append(dst, `,"txId":`...)
	if e.Tx.ID == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendUint(dst, e.Tx.ID, 10)
	}
	dst = append(dst, `,"lsn":`...)
	if e.Position.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendUint(dst, e.Position.Offset, 10)
	}
	dst = append(dst, `},"op":"`...)
	dst = append(dst, debeziumOps[e.Op]...)
	dst = append(dst, `","ts_ms":`...)
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	dst = strconv.AppendInt(dst, now().UnixMilli(), 10)
	dst = append(dst, `,"transaction":`...)
	if o == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendTxOrder(dst, o)
	}
	dst = append(dst, '}')
	if d.Schemas {
		dst = append(dst, '}')
	}
	return dst
}

// appendDebeziumRow is appendRow with JSON values (change.JSON, decoded
// objects) as JSON strings of their text.
func appendDebeziumRow(dst []byte, r change.Row) []byte {
	return appendColumns(dst, r, appendDebeziumValue)
}

// appendDebeziumValue is appendValue with JSON values as JSON strings.
func appendDebeziumValue(dst []byte, v any) []byte {
	switch v := v.(type) {
	case change.JSON:
		return appendString(dst, string(v))
	case map[string]any:
		return appendString(dst, string(appendObject(nil, v)))
	}
	return appendValue(dst, v)
}
