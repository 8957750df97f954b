package transforms

import (
	"slices"
	"sync"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// relations derives, once per source Relation, the Relation of the rows
// a transform passes on, so that sinks that create or alter tables from
// Relation (auto_create, schema changes) see the transformed columns: no
// excluded column, renamed names, computed columns, and text where a mask
// turned a value into text.
type relations struct {
	derived sync.Map // *change.Relation (source) → *change.Relation
}

// of returns the derived relation of e's Relation; e is the transformed
// event, whose After gives computed columns a type from their value.
func (rs *relations) of(t *Transform, src *change.Relation, e *change.Event) *change.Relation {
	if src == nil {
		return nil
	}
	if d, ok := rs.derived.Load(src); ok {
		return d.(*change.Relation)
	}
	d, _ := rs.derived.LoadOrStore(src, t.derive(src, e.After))
	return d.(*change.Relation)
}

func (t *Transform) derive(src *change.Relation, after change.Row) *change.Relation {
	out := &change.Relation{Schema: src.Schema, Table: src.Table, Version: src.Version}
	for _, c := range src.Columns {
		if i := slices.IndexFunc(t.set, func(s dsl.SetColumn) bool { return s.Column == c.Name }); i >= 0 {
			continue // replaced by the computed column, added below
		}
		out.Columns = append(out.Columns, c)
	}
	for _, s := range t.set {
		out.Columns = append(out.Columns, change.Column{Name: s.Column, Type: typeOf(after.Get(s.Column))})
	}
	cols := out.Columns[:0]
	for _, c := range out.Columns {
		if (t.cols.keep != nil && !t.cols.keep[c.Name]) || slices.Contains(t.cols.drop, c.Name) {
			continue
		}
		for _, m := range t.cols.masks {
			if m.column != c.Name {
				continue
			}
			c.NotNull = false // a NULL mask writes NULL
			if m.kind != maskNull {
				c.Type = "text"
			}
		}
		if to, ok := t.cols.renameOf(c.Name); ok {
			c.Name = to
		}
		cols = append(cols, c)
	}
	out.Columns = cols
	return out
}

// typeOf names, in PostgreSQL's spelling (what the sinks' type mappings
// read), the type of a computed column from its first value.
func typeOf(v any) string {
	switch v.(type) {
	case int64:
		return "bigint"
	case float64:
		return "double precision"
	case bool:
		return "boolean"
	case change.Numeric:
		return "numeric"
	case time.Time:
		return "timestamp with time zone"
	case []byte:
		return "bytea"
	case []any, map[string]any, change.JSON:
		return "jsonb"
	}
	return "text"
}
