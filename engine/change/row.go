package change

import (
	"maps"
	"sort"
)

// Row maps column names to values. Values are nil (SQL NULL) or one of:
// bool, int64, float64, string, []byte, time.Time, Numeric, JSON,
// []any (arrays), map[string]any (decoded JSON objects in native events).
// Sources keep the column's database type in Relation so that sinks can
// write it faithfully.
type Row map[string]any

// Clone returns a shallow copy; values are immutable by convention.
func (r Row) Clone() Row {
	if r == nil {
		return nil
	}
	return maps.Clone(r)
}

// Names returns the row's column names, sorted.
func (r Row) Names() []string {
	names := make([]string, 0, len(r))
	for k := range r {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Numeric is an exact decimal number in its canonical text form
// ("12.50", "-3", "NaN"). It never passes through float64.
type Numeric string

// JSON is a JSON document as the source sent it (json/jsonb columns).
type JSON string

// Column describes one column of a source table.
type Column struct {
	Name string
	// Type is the source's type name as the source spells it, e.g.
	// "integer", "numeric(12,2)", "timestamp with time zone", "text[]".
	Type string
	// Key reports that the column is part of the primary key (or of the
	// replica identity when the table has none).
	Key bool
	// NotNull reports a NOT NULL constraint.
	NotNull bool
	// Default is the column's DEFAULT expression as the source renders it
	// (PostgreSQL: pg_get_expr of pg_attrdef, e.g. "'x'::text", "0",
	// "nextval('t_id_seq'::regclass)", "now()"), "" when it has none. For
	// a Generated column it is the generation expression instead.
	Default string
	// Generated reports a stored generated column (GENERATED ALWAYS AS
	// (expr) STORED; Default holds expr). Events never carry its value:
	// PostgreSQL's logical replication does not send it, and the
	// snapshot leaves it out too, so that a row reads the same either
	// way. A target computes it (from Default) or does without.
	Generated bool
}

// Relation is a source table's shape. A changed relation (a new column)
// arrives as a new *Relation with a higher Version.
type Relation struct {
	Schema  string
	Table   string
	Columns []Column
	Version uint32
}

// KeyNames returns the names of the key columns in table order.
func (r *Relation) KeyNames() []string {
	var names []string
	for _, c := range r.Columns {
		if c.Key {
			names = append(names, c.Name)
		}
	}
	return names
}

// Column returns the named column and whether it exists.
func (r *Relation) Column(name string) (Column, bool) {
	for _, c := range r.Columns {
		if c.Name == name {
			return c, true
		}
	}
	return Column{}, false
}
