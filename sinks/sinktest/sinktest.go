package sinktest

import (
	"testing"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Kind is how a target is read back.
type Kind int

const (
	// Table targets hold rows by key (databases): Target.Rows reads them.
	Table Kind = iota + 1
	// Log targets hold an ordered log of messages (files, topics, HTTP
	// receivers): Target.Messages reads them.
	Log
)

func (k Kind) String() string {
	switch k {
	case Table:
		return "table"
	case Log:
		return "log"
	}
	return "unknown kind"
}

// Truncation is what a sink documents a Truncate event does to its
// target.
type Truncation int

const (
	// TruncateIgnored: the target does not change (SQL truncate = "skip").
	TruncateIgnored Truncation = iota
	// TruncateEmpties: the table is emptied (Kind Table, SQL truncate =
	// "apply").
	TruncateEmpties
	// TruncateMessage: the log gets a message with op "truncate" naming
	// the table, in its place among the others (Kind Log).
	TruncateMessage
)

// Null is the text of a NULL value (SQL NULL, JSON null) in a Row. The
// cases never write the string "NULL".
const Null = "NULL"

// Row is one row, or one row of a message, as its target holds it: each
// column's value as text — the database's own text output for Table
// targets, the JSON literal (strings unquoted) for Log targets — and Null
// for NULL. A column the row lacks is absent from the map.
type Row map[string]string

// Message is one message of a Log target, decoded.
type Message struct {
	// Op is "insert", "update", "delete", "snapshot" or "truncate".
	Op    string
	Table string
	// Key is the message's key: the event's key columns; nil when it has
	// none (a truncate).
	Key Row
	// Row is the row after the change, for deletes the row before it
	// (or the key, when the message carries no before); nil for a
	// truncate.
	Row Row
}

// Factory is one sink under test: how to make its targets and what it
// can do.
type Factory struct {
	// Name is the sink type, for messages ("mysql", "kafka").
	Name string
	// Kind says how its target is read: Table (Target.Rows) or Log
	// (Target.Messages).
	Kind Kind
	// NewTarget makes a fresh, empty target of the case t: a database, a
	// file, a Kafka cluster, an HTTP receiver. It removes it when t ends
	// (t.Cleanup).
	NewTarget func(t *testing.T) *Target
	// Reject, when the sink can refuse an event, returns a copy of e (an
	// insert into "items", whose columns are id integer (the key), name
	// text, note character varying(8)) that its target refuses: a note too
	// long for SQL, a note the test receiver answers 400 to for a webhook.
	// nil when the sink never returns an *engine.RejectError: NoReject
	// then says why, and the case is skipped with it.
	Reject   func(e change.Event) change.Event
	NoReject string
	// Truncate is what a Truncate event does (TruncateIgnored by default).
	Truncate Truncation
	// Redelivers says that after a failure the sink may deliver again
	// what it delivered since its last Flush (at-least-once sinks: a
	// webhook resends the events it delivered before the one the receiver
	// refused). Only then may a Log target hold a message more than once,
	// and only in the rejected-rows case.
	Redelivers bool
	// UnflushedVisible says that a reader of the target may see events
	// written since the last Flush until the next Open removes them (a
	// file's tail beyond the saved length). Otherwise the cases also check
	// that nothing unflushed is visible before the crash.
	UnflushedVisible bool
	// Keyless says that the sink's messages carry no key of their own (a
	// NATS message has a subject and a payload: the row in the payload
	// is its key's only carrier), so Message.Key is nil and is not
	// compared.
	Keyless bool
	// Cleanup, when set, runs after the last case (for what the targets
	// share).
	Cleanup func()
}

// Target is one case's target.
type Target struct {
	// New builds a new, unopened sink writing into the target, from the
	// engine's Build: the sink node's constructor. The engine calls it
	// for each run of the pipeline (a restart, a new process); it may
	// run on any goroutine.
	New func(b engine.Build) (engine.Sink, error)
	// Rows (Kind Table) reads every row of table as a reader of the
	// target sees it (committed data only), whole: every column of the
	// table; none when the table does not exist.
	Rows func(t *testing.T, table string) []Row
	// Messages (Kind Log) reads every message the target holds, as a
	// reader of it sees them (committed ones only), in order.
	Messages func(t *testing.T) []Message
}

// Run runs every case against f, each as a subtest with a target of its
// own.
func Run(t *testing.T, f Factory) {
	t.Helper()
	switch {
	case f.NewTarget == nil:
		t.Fatalf("sinktest: %s: Factory.NewTarget is nil", f.Name)
	case f.Kind != Table && f.Kind != Log:
		t.Fatalf("sinktest: %s: Factory.Kind is %d, want Table or Log", f.Name, f.Kind)
	case f.Kind == Table && f.Truncate == TruncateMessage, f.Kind == Log && f.Truncate == TruncateEmpties:
		t.Fatalf("sinktest: %s: a %s target cannot truncate that way (%d)", f.Name, f.Kind, f.Truncate)
	case f.Reject == nil && f.NoReject == "":
		t.Fatalf("sinktest: %s: Factory.Reject is nil without NoReject saying why the sink cannot reject", f.Name)
	}
	if f.Cleanup != nil {
		t.Cleanup(f.Cleanup)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(newEnv(t, f))
		})
	}
}
