package format

import (
	"strconv"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Besides row changes, a sink can write two kinds of messages that tell
// consumers when they have everything (docs/operations.md (Resolved timestamps and transaction metadata)): resolved
// timestamps and transaction metadata (BEGIN and END per source
// transaction, and each data event's place in its transaction). Both
// formats encode them; Meta is how a sink asks for them.

// Meta is a Format that also encodes resolved timestamps and transaction
// metadata. Native and Debezium implement it.
type Meta interface {
	Format
	// AppendInTx appends e as Append does, with its place in its source
	// transaction (nil: as Append).
	AppendInTx(dst []byte, e *change.Event, o *TxOrder) []byte
	// AppendTransaction appends a BEGIN or END event.
	AppendTransaction(dst []byte, t *Transaction) []byte
	// AppendResolved appends a resolved message.
	AppendResolved(dst []byte, r *Resolved) []byte
}

var (
	_ Meta = Native{}
	_ Meta = Debezium{}
)

// Resolved is a resolved timestamp: every change whose source commit time
// is at or before Time has been written before the message, and none
// after it.
type Resolved struct {
	Time time.Time // UTC, to the microsecond
	// Position is the position of the source stream that Time comes from
	// (the one least far along): every change of that stream at or
	// before it has been written. Zero when unknown.
	Position change.Position
}

// TxOrder is a data event's place in its source transaction (Debezium's
// transaction block).
type TxOrder struct {
	ID    string // the transaction's id, "<txid>:<offset>" (see TxID)
	Total uint64 // total_order: 1 for the transaction's first event
	Table uint64 // data_collection_order: 1 for its first event of the event's table
}

// Transaction is a transaction metadata event: BEGIN before the first
// data event of a source transaction, END after its last one.
type Transaction struct {
	End bool
	ID  string    // as TxOrder.ID
	Tx  change.Tx // the source transaction (its commit time may be zero)
	// Position is the END's position: the source position that ends the
	// transaction. Zero for BEGIN.
	Position change.Position
	// Events and Tables are the END's counts: the transaction's data
	// events, and per table ("schema.table", sorted by name) how many.
	Events uint64
	Tables []TableCount
}

// TableCount is one table's events in a transaction's END.
type TableCount struct {
	Table  string // "schema.table"
	Events uint64
}

// TxID is the id transaction metadata gives a source transaction: its
// transaction id and the offset of its position, "<txid>:<offset>" (for
// PostgreSQL the xid and the commit LSN as a number, as Debezium's
// PostgreSQL connector writes it; unique even when xids wrap around).
func TxID(tx change.Tx, p change.Position) string {
	return strconv.FormatUint(tx.ID, 10) + ":" + strconv.FormatUint(p.Offset, 10)
}

// appendTxOrder appends {"id":...,"total_order":N,"data_collection_order":M}.
func appendTxOrder(dst []byte, o *TxOrder) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, o.ID)
	dst = append(dst, `,"total_order":`...)
	dst = strconv.AppendUint(dst, o.Total, 10)
	dst = append(dst, `,"data_collection_order":`...)
	dst = strconv.AppendUint(dst, o.Table, 10)
	return append(dst, '}')
}

// appendCounts appends "event_count" and "data_collections" as
// Debezium's END has them (null for BEGIN).
func appendCounts(dst []byte, t *Transaction) []byte {
	if !t.End {
		return append(dst, `,"event_count":null,"data_collections":null`...)
	}
	dst = append(dst, `,"event_count":`...)
	dst = strconv.AppendUint(dst, t.Events, 10)
	dst = append(dst, `,"data_collections":[`...)
	for i, c := range t.Tables {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"data_collection":`...)
		dst = appendString(dst, c.Table)
		dst = append(dst, `,"event_count":`...)
		dst = strconv.AppendUint(dst, c.Events, 10)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// AppendTransaction appends a BEGIN or END in the native format:
//
//	{"status":"begin","id":"123:23803720","tx":{"id":123,"commit_time":"2026-01-02T03:04:05.123456Z"}}
//	{"status":"end","id":"123:23803720","tx":{...},"event_count":3,
//	 "data_collections":[{"data_collection":"public.orders","event_count":1},
//	                     {"data_collection":"public.users","event_count":2}],
//	 "position":"23803720.4294967295"}
//
// tx is omitted when unknown, as in events; BEGIN has no counts and no
// position.
func (Native) AppendTransaction(dst []byte, t *Transaction) []byte {
	dst = append(dst, `{"status":`...)
	if t.End {
		dst = append(dst, `"end"`...)
	} else {
		dst = append(dst, `"begin"`...)
	}
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, t.ID)
	dst = appendNativeTx(dst, t.Tx)
	if t.End {
		dst = appendCounts(dst, t)
		if !t.Position.IsZero() {
			dst = append(dst, `,"position":`...)
			dst = appendString(dst, t.Position.String())
		}
	}
	return append(dst, '}')
}

// appendNativeTx appends `,"tx":{...}` unless tx is unknown.
func appendNativeTx(dst []byte, tx change.Tx) []byte {
	if tx.ID == 0 && tx.CommitTime.IsZero() {
		return dst
	}
	dst = append(dst, `,"tx":{`...)
	comma := false
	if tx.ID != 0 {
		dst = append(dst, `"id":`...)
		dst = strconv.AppendUint(dst, tx.ID, 10)
		comma = true
	}
	if !tx.CommitTime.IsZero() {
		if comma {
			dst = append(dst, ',')
		}
		dst = append(dst, `"commit_time":`...)
		dst = appendValue(dst, tx.CommitTime)
	}
	return append(dst, '}')
}

// AppendResolved appends a resolved message in the native format:
//
//	{"resolved":"2026-01-02T03:04:05.123456Z","position":"23803720.4294967295"}
//
// Every change whose tx.commit_time is at or before "resolved" has been
// written before it. position is omitted when zero.
func (Native) AppendResolved(dst []byte, r *Resolved) []byte {
	dst = append(dst, `{"resolved":`...)
	dst = appendValue(dst, r.Time)
	if !r.Position.IsZero() {
		dst = append(dst, `,"position":`...)
		dst = appendString(dst, r.Position.String())
	}
	return append(dst, '}')
}

// AppendTransaction appends a BEGIN or END as Debezium's transaction
// topic has them:
//
//	{"status":"BEGIN","id":"123:23803720","ts_ms":1767323045123,"event_count":null,"data_collections":null}
//	{"status":"END","id":"123:23803720","ts_ms":1767323045123,"event_count":3,
//	 "data_collections":[{"data_collection":"public.orders","event_count":1},
//	                     {"data_collection":"public.users","event_count":2}]}
//
// ts_ms is the transaction's commit time (0 when unknown). With Schemas
// the event is wrapped with its Kafka Connect schema
// (io.debezium.connector.common.TransactionMetadataValue).
func (d Debezium) AppendTransaction(dst []byte, t *Transaction) []byte {
	if d.Schemas {
		dst = append(dst, `{"schema":`+transactionSchema+`,"payload":`...)
	}
	dst = append(dst, `{"status":`...)
	if t.End {
		dst = append(dst, `"END"`...)
	} else {
		dst = append(dst, `"BEGIN"`...)
	}
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, t.ID)
	dst = append(dst, `,"ts_ms":`...)
	if t.Tx.CommitTime.IsZero() {
		dst = append(dst, '0')
	} else {
		dst = strconv.AppendInt(dst, t.Tx.CommitTime.UnixMilli(), 10)
	}
	dst = appendCounts(dst, t)
	dst = append(dst, '}')
	if d.Schemas {
		dst = append(dst, '}')
	}
	return dst
}

// AppendResolved appends a resolved message in the shape sluice gives it
// next to Debezium's envelopes (Debezium itself has none):
//
//	{"status":"RESOLVED","ts_ms":1767323045122,"ts_us":1767323045123456,"lsn":23803720}
//
// "status" tells it apart from row changes (which have "op") as it does
// transaction events. ts_us is the resolved time in Unix microseconds:
// every change committed at or before it has been written before this
// message. ts_ms is the last whole millisecond it covers, so that every
// change whose source.ts_ms is at or before ts_ms has been written (a
// millisecond is covered only when all of it is). lsn is the position's
// offset, as source.lsn (null when unknown). With Schemas the message is
// wrapped with its Kafka Connect schema (io.sluice.Resolved).
func (d Debezium) AppendResolved(dst []byte, r *Resolved) []byte {
	if d.Schemas {
		dst = append(dst, `{"schema":`+resolvedSchema+`,"payload":`...)
	}
	us := r.Time.UnixMicro()
	dst = append(dst, `{"status":"RESOLVED","ts_ms":`...)
	dst = strconv.AppendInt(dst, floorDiv(us+1, 1000)-1, 10)
	dst = append(dst, `,"ts_us":`...)
	dst = strconv.AppendInt(dst, us, 10)
	dst = append(dst, `,"lsn":`...)
	if r.Position.IsZero() {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendUint(dst, r.Position.Offset, 10)
	}
	dst = append(dst, '}')
	if d.Schemas {
		dst = append(dst, '}')
	}
	return dst
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// transactionSchema is the Kafka Connect schema of a transaction event.
const transactionSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"status"},` +
	`{"type":"string","optional":false,"field":"id"},` +
	`{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"int64","optional":true,"field":"event_count"},` +
	`{"type":"array","items":{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"data_collection"},` +
	`{"type":"int64","optional":false,"field":"event_count"}` +
	`],"optional":false},"optional":true,"field":"data_collections"}` +
	`],"optional":false,"name":"io.debezium.connector.common.TransactionMetadataValue","version":1}`

// resolvedSchema is the Kafka Connect schema of a resolved message.
const resolvedSchema = `{"type":"struct","fields":[` +
	`{"type":"string","optional":false,"field":"status"},` +
	`{"type":"int64","optional":false,"field":"ts_ms"},` +
	`{"type":"int64","optional":false,"field":"ts_us"},` +
	`{"type":"int64","optional":true,"field":"lsn"}` +
	`],"optional":false,"name":"io.sluice.Resolved","version":1}`
