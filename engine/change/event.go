package change

import (
	"fmt"
	"time"
)

// Op says what happened to a row.
type Op uint8

const (
	// Insert is a new row; After holds it.
	Insert Op = iota + 1
	// Update changed a row; After holds the new row and Before the old one
	// (the key only under PostgreSQL's REPLICA IDENTITY DEFAULT).
	Update
	// Delete removed a row; Before holds it (or its key).
	Delete
	// Snapshot is an existing row read by an initial snapshot; After holds it.
	Snapshot
	// Truncate emptied the table.
	Truncate
	// Mark carries no row, only a Position: a transaction's end, a
	// heartbeat, or the place of a row a transform dropped. Marks let
	// checkpoints advance past rows that never reach a sink.
	Mark
)

var opNames = [...]string{Insert: "insert", Update: "update", Delete: "delete", Snapshot: "snapshot", Truncate: "truncate", Mark: "mark"}

// String returns the name used by the pipeline language: "insert",
// "update", "delete", "snapshot", "truncate" or "mark".
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ParseOp is the inverse of Op.String.
func ParseOp(s string) (Op, error) {
	for i, n := range opNames {
		if n != "" && n == s {
			return Op(i), nil
		}
	}
	return 0, fmt.Errorf("unknown op %q: expected insert, update, delete, snapshot or truncate", s)
}

// IsRow reports whether the op carries a row (insert, update, delete, snapshot).
func (o Op) IsRow() bool { return o >= Insert && o <= Snapshot }

// Tx identifies the source transaction an event belongs to.
type Tx struct {
	ID         uint64    // source transaction id (PostgreSQL xid); 0 when unknown
	CommitTime time.Time // UTC; zero when unknown
}

// Event is one change of one row, shaped like OpenCDC's Record.
type Event struct {
	Op     Op
	Schema string
	Table  string
	// Key holds the primary-key columns of the row. For updates that
	// change the key it is the new key and Before holds the old one.
	Key Row
	// Before is the row before the change (the zero Row for inserts and
	// snapshots).
	Before Row
	// After is the row after the change (the zero Row for deletes). A
	// column that After lacks (as opposed to has with a nil value) was
	// not sent by the source, e.g. an unchanged TOASTed value: sinks must
	// leave the target's value alone.
	After Row
	// Changed names the columns whose value changed; all columns of the
	// row for inserts and snapshots.
	Changed []string
	Tx      Tx
	// Position is unique and totally ordered within Position.Stream().
	Position Position
	// Boundary reports that a sink may commit right after this event: it
	// is the last event of its source transaction (or a Mark at its end).
	// A sink never commits in the middle of a source transaction.
	Boundary bool
	// Relation describes the table's columns as the source last saw them;
	// shared, read-only, nil where unknown (file and Kafka sources).
	Relation *Relation
	// SnapshotLast marks the last row of a snapshot (Op Snapshot), so
	// that consumers learn the copy is over (Debezium's source.snapshot =
	// "last").
	SnapshotLast bool
	// Sink, when set, names the one sink the event is for: the rows of a
	// re-copy requested for a single sink (`sluice snapshot --sink`).
	// The engine routes it to that sink only; a Sink event is never a
	// Boundary, so leaving it out changes no other sink's commits.
	Sink string
}

// Row returns After if present, else Before.
func (e *Event) Row() Row {
	if !e.After.IsZero() {
		return e.After
	}
	return e.Before
}

// QualifiedTable returns "schema.table" (or just the table if there is no schema).
func (e *Event) QualifiedTable() string {
	if e.Schema == "" {
		return e.Table
	}
	return e.Schema + "." + e.Table
}

// AsMark returns a Mark at e's position that keeps e's boundary: what a
// stage forwards in place of an event it drops, so that checkpoints still
// advance past it.
func (e *Event) AsMark() Event {
	return Event{Op: Mark, Schema: e.Schema, Table: e.Table, Tx: e.Tx, Position: e.Position, Boundary: e.Boundary}
}
