package sinktest

import (
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// The table every case writes, "public.items", as a source describes it:
// one Relation and one change.Columns per version, shared by every row of
// that version. Version 2 adds the column age.
var (
	itemsV1 = &change.Relation{Schema: "public", Table: "items", Version: 1, Columns: []change.Column{
		{Name: "id", Type: "integer", Key: true, NotNull: true},
		{Name: "name", Type: "text"},
		{Name: "note", Type: "character varying(8)"},
	}}
	itemsV2 = &change.Relation{Schema: "public", Table: "items", Version: 2, Columns: []change.Column{
		{Name: "id", Type: "integer", Key: true, NotNull: true},
		{Name: "name", Type: "text"},
		{Name: "note", Type: "character varying(8)"},
		{Name: "age", Type: "integer"},
	}}
	colsV1  = change.NewColumns("id", "name", "note")
	colsV2  = change.NewColumns("id", "name", "note", "age")
	keyCols = change.NewColumns("id")
)

// table is the name of the cases' table.
const table = "items"

// defaultStream is the stream of the cases that read one source.
var defaultStream = change.Stream{Source: sourceName}

// gen makes the events of one stream as a source does: each transaction
// at the next offset (its commit position), its events numbered by Index,
// the last one its Boundary.
type gen struct {
	stream change.Stream
	off    uint64
}

// tx makes one source transaction of changes (built by ins, upd, del,
// truncate, mark), positioned and bounded.
func (g *gen) tx(changes ...change.Event) []change.Event {
	g.off++
	commit := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(g.off) * time.Millisecond)
	out := make([]change.Event, len(changes))
	for i, e := range changes {
		e.Position = change.Position{Source: g.stream.Source, Partition: g.stream.Partition, Offset: g.off * 100, Index: uint32(i)}
		e.Tx = change.Tx{ID: 1000 + g.off, CommitTime: commit}
		e.Boundary = i == len(changes)-1
		out[i] = e
	}
	return out
}

// marks makes n source transactions with no rows for the sink: one Mark
// each (a heartbeat, a transaction a transform dropped).
func (g *gen) marks(n int) []change.Event {
	var out []change.Event
	for range n {
		out = append(out, g.tx(mark())...)
	}
	return out
}

func key(id int64) change.Row { return change.MakeRow(keyCols, []any{id}) }

// v1 is a row of version 1: values for id, name, note (change.Unsent
// where the source did not send one).
func v1(id int64, name, note any) change.Row { return change.MakeRow(colsV1, []any{id, name, note}) }

// v2 is a row of version 2: id, name, note, age.
func v2(id int64, name, note, age any) change.Row {
	return change.MakeRow(colsV2, []any{id, name, note, age})
}

func relationOf(r change.Row) *change.Relation {
	if r.Columns() == colsV2 {
		return itemsV2
	}
	return itemsV1
}

func ins(after change.Row) change.Event {
	return change.Event{Op: change.Insert, Schema: "public", Table: table, Relation: relationOf(after),
		Key: key(after.Get("id").(int64)), After: after, Changed: after.Names()}
}

// upd changes a row, its key unchanged, so that there is no Before (the
// default replica identity); the columns sent (not change.Unsent) are the
// changed ones.
func upd(after change.Row) change.Event {
	return change.Event{Op: change.Update, Schema: "public", Table: table, Relation: relationOf(after),
		Key: key(after.Get("id").(int64)), After: after, Changed: after.Names()}
}

// del deletes a row; Before holds its key (the default replica identity).
func del(id int64) change.Event {
	return change.Event{Op: change.Delete, Schema: "public", Table: table, Relation: itemsV1, Key: key(id), Before: key(id)}
}

func truncate() change.Event {
	return change.Event{Op: change.Truncate, Schema: "public", Table: table, Relation: itemsV1}
}

func mark() change.Event { return change.Event{Op: change.Mark} }

// concat joins transactions into one batch.
func concat(txs ...[]change.Event) []change.Event {
	var out []change.Event
	for _, tx := range txs {
		out = append(out, tx...)
	}
	return out
}
