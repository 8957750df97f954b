package postgres

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// keyRange bounds a read of one table in primary-key order. Every copy
// reads tables through it: the initial snapshot (a whole table, resumed
// after a key), and the incremental snapshot's chunks (the keys after
// the last chunk, at most a chunk's rows, within a requested range).
// Keys are the text forms of the key columns, in key order, compared as
// PostgreSQL compares the key (a row comparison over the columns cast to
// their types), so the order is the index's.
type keyRange struct {
	After []string // exclusive lower bound; nil: none
	From  []string // inclusive lower bound, used when After is nil; nil: none
	To    []string // inclusive upper bound; nil: none
}

// rangeSelect returns the SELECT of t's published columns in key order
// within r, restricted by where (an SQL predicate over the table's
// columns, "" for none) to at most limit rows (0: all), and its text
// parameters. A table without a primary key (REPLICA IDENTITY FULL) is
// read in physical order, its "key" the ctid selected last (only After
// applies: a ctid is no stable key).
func (t *table) rangeSelect(r keyRange, where string, limit int) (string, [][]byte) {
	cols := make([]string, 0, len(t.Columns)+1)
	for _, c := range t.Columns {
		cols = append(cols, pgx.Identifier{c.Name}.Sanitize())
	}
	var params [][]byte
	var conds []string
	order := "ctid"
	if len(t.PK) > 0 {
		order = t.keyList()
		conds = t.rangeConds(r, t.keyList(), &params)
	} else {
		// Named apart, or ORDER BY ctid would sort the text.
		cols = append(cols, "ctid::text AS __sluice_ctid")
		if r.After != nil {
			params = append(params, []byte(r.After[0]))
			conds = append(conds, "ctid > $1::text::tid")
		}
	}
	if where != "" {
		conds = append(conds, "("+where+")")
	}
	sql := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.ident()
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY " + order
	if limit > 0 {
		sql += " LIMIT " + strconv.Itoa(limit)
	}
	return sql, params
}

// rangeConds returns the conditions on the key columns keys (a column
// list: "id", or "c.a, c.b") that keep them within r, appending their
// parameters to params.
func (t *table) rangeConds(r keyRange, keys string, params *[][]byte) []string {
	var conds []string
	bound := func(op string, key []string) {
		conds = append(conds, "("+keys+") "+op+" ("+t.keyParams(key, params)+")")
	}
	switch {
	case r.After != nil:
		bound(">", r.After)
	case r.From != nil:
		bound(">=", r.From)
	}
	if r.To != nil {
		bound("<=", r.To)
	}
	return conds
}

// keyParams returns the placeholders of one key in text form, each cast
// to its column's type, appending the values to params.
func (t *table) keyParams(key []string, params *[][]byte) string {
	ph := make([]string, len(t.PK))
	for i, k := range t.PK {
		*params = append(*params, []byte(key[i]))
		ph[i] = "$" + strconv.Itoa(len(*params)) + "::text::" + t.column(k).TypeName
	}
	return strings.Join(ph, ", ")
}

// keyList is the key columns, quoted, in key order.
func (t *table) keyList() string { return prefixed("", t.PK) }

// prefixed quotes the columns, each after "alias." unless alias is "".
func prefixed(alias string, cols []string) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = pgx.Identifier{c}.Sanitize()
		if alias != "" {
			out[i] = alias + "." + out[i]
		}
	}
	return strings.Join(out, ", ")
}
