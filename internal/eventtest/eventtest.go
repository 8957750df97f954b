// Package eventtest compares events and rows in tests by what they hold.
// Rows are columnar (change.Row): two rows with the same columns in a
// different order, or with different Columns values, are the same row,
// which reflect.DeepEqual cannot tell. Tests compare the plain forms
// here instead, and print them on a mismatch.
package eventtest

import (
	"github.com/sluice-cdc/sluice/engine/change"
)

// Event is a change.Event with its rows as maps: comparable with
// reflect.DeepEqual and printable with %+v.
type Event struct {
	Op                 change.Op
	Schema, Table      string
	Key, Before, After map[string]any
	Changed            []string
	Tx                 change.Tx
	Position           change.Position
	Boundary           bool
	Relation           *change.Relation
	SnapshotLast       bool
	Sink               string
}

// Plain returns e with its rows as maps (nil for a zero Row).
func Plain(e change.Event) Event {
	return Event{Op: e.Op, Schema: e.Schema, Table: e.Table,
		Key: e.Key.Map(), Before: e.Before.Map(), After: e.After.Map(),
		Changed: e.Changed, Tx: e.Tx, Position: e.Position, Boundary: e.Boundary,
		Relation: e.Relation, SnapshotLast: e.SnapshotLast, Sink: e.Sink}
}

// PlainAll returns Plain of each event; nil for nil.
func PlainAll(events []change.Event) []Event {
	if events == nil {
		return nil
	}
	out := make([]Event, len(events))
	for i, e := range events {
		out[i] = Plain(e)
	}
	return out
}

// Maps returns each row as a map; nil for nil.
func Maps(rows []change.Row) []map[string]any {
	if rows == nil {
		return nil
	}
	out := make([]map[string]any, len(rows))
	for i, r := range rows {
		out[i] = r.Map()
	}
	return out
}
