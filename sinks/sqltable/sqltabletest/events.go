package sqltabletest

import (
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// relation builds a source table shape from "name type" columns; a
// trailing " key" marks key columns.
func relation(table string, cols ...string) *change.Relation {
	r := &change.Relation{Schema: "public", Table: table, Version: 1}
	for _, c := range cols {
		name, typ, _ := strings.Cut(c, " ")
		key := strings.HasSuffix(typ, " key")
		r.Columns = append(r.Columns, change.Column{Name: name, Type: strings.TrimSuffix(typ, " key"), Key: key})
	}
	return r
}

// gen numbers events as a source would: increasing positions, each event
// its own transaction unless the caller says otherwise.
type gen struct{ off uint64 }

func (g *gen) ev(op change.Op, rel *change.Relation, before, after change.Row) change.Event {
	g.off++
	e := change.Event{
		Op: op, Schema: rel.Schema, Table: rel.Table, Before: before, After: after, Relation: rel,
		Position: change.Position{Source: "src", Offset: g.off},
		Tx:       change.Tx{ID: g.off, CommitTime: time.Date(2026, 1, 2, 3, 4, 5, int(g.off)*1000, time.UTC)},
		Boundary: true,
	}
	// The key columns, NULL where the row lacks one (or there is none).
	row := e.Row()
	keys := rel.KeyNames()
	vals := make([]any, len(keys))
	for i, k := range keys {
		vals[i] = row.Get(k)
	}
	e.Key = change.MakeRow(change.NewColumns(keys...), vals)
	return e
}

func (g *gen) ins(rel *change.Relation, after change.Row) change.Event {
	return g.ev(change.Insert, rel, change.Row{}, after)
}

func (g *gen) upd(rel *change.Relation, before, after change.Row) change.Event {
	return g.ev(change.Update, rel, before, after)
}

func (g *gen) del(rel *change.Relation, before change.Row) change.Event {
	return g.ev(change.Delete, rel, before, change.Row{})
}

func (g *gen) mark() change.Event {
	g.off++
	return change.Event{Op: change.Mark, Position: change.Position{Source: "src", Offset: g.off}, Boundary: true}
}
