package verify

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Range is a key range of a pair's source table whose chunks' checksums
// differ: what `sluice verify --repair` asks the pipeline to copy again
// (state.KeyRange), and the keys in it that only the target holds, which
// the copy deletes (state.TableKey).
//
// Keys are the text forms PostgreSQL gives the source table's
// primary-key columns (Pair.SourceKey, in key order: `id::text`). From
// and To are the least and greatest keys either side holds in the range's
// chunks, both included, in the order the postgres source reads a key
// range (its columns' own collations): where a text key column's
// collation does not sort by bytes, verify's chunks (byte order) are
// scattered in that order, and the range spans all of its chunk's keys
// there, so it may hold rows of other chunks too. Consecutive differing
// chunks make one range.
type Range struct {
	From   []string `json:"from"`
	To     []string `json:"to"`
	Chunks int      `json:"chunks"` // differing chunks the range covers
	// Rows is how many of the source's rows in those chunks reach the
	// sink (a copy of the range reads about as many).
	Rows int64 `json:"rows"`
	// Extra lists the range's keys that only the target holds (none
	// when delete = "skip" or mode = "update": they are not differences
	// then). All of them are kept, whatever Options.MaxDiffs.
	Extra [][]string `json:"extra,omitempty"`
}

// repairable says why a pair's differing ranges cannot be given as
// ranges of the source table's primary key ("" when they can): a copy
// selects rows by primary key, so the key verify compares by must be
// that key, column for column, in its order.
func repairable(table string, srcKey, pk []string) string {
	switch {
	case len(pk) == 0:
		return fmt.Sprintf("source table %s has no primary key: a re-copy reads a table in primary-key ranges", table)
	case !slices.Equal(srcKey, pk):
		return fmt.Sprintf("the sink's key is read from source columns (%s), not the primary key (%s) of %s: a re-copy selects rows by primary key, so the differing ranges of this key are no ranges of it",
			strings.Join(srcKey, ", "), strings.Join(pk, ", "), table)
	}
	return ""
}

// recordRange adds a differing chunk's range to the pair, merging it into
// the previous chunk's when that one differed too: from the keys either
// side holds in the chunk (s, t) and the keys only the target has. It is
// called once per differing chunk, in chunk order.
func (c *comparison) recordRange(ctx context.Context, s, t *side, extra []rowSum, adjacent bool) error {
	keys := make([][]string, 0, len(s.rows)+len(t.rows)+2)
	for _, rows := range [][]rowSum{s.rows, t.rows} {
		for _, r := range rows {
			keys = append(keys, c.keyText(r.keyVals))
		}
	}
	var prev *Range
	if adjacent && len(c.pair.Ranges) > 0 {
		prev = &c.pair.Ranges[len(c.pair.Ranges)-1]
		keys = append(keys, prev.From, prev.To)
	}
	if len(keys) == 0 {
		return nil
	}
	from, to, err := c.bounds(ctx, keys)
	if err != nil {
		return fmt.Errorf("source %q, table %s: the differing range: %w", c.src.Name, c.pair.Table, err)
	}
	var gone [][]string
	for _, r := range extra {
		gone = append(gone, c.keyText(r.keyVals))
	}
	if prev == nil {
		c.pair.Ranges = append(c.pair.Ranges, Range{From: from, To: to, Chunks: 1, Rows: int64(len(s.rows)), Extra: gone})
		return nil
	}
	prev.From, prev.To = from, to
	prev.Chunks++
	prev.Rows += int64(len(s.rows))
	prev.Extra = append(prev.Extra, gone...)
	return nil
}

// keyText is a key's values as text that the source's key columns'
// types read back (pgText, which verify bounds its own source reads by).
func (c *comparison) keyText(keyVals []any) []string {
	out := make([]string, len(keyVals))
	for i, v := range keyVals {
		out[i] = pgText(v)
	}
	return out
}

// bounds returns the least and greatest of keys (text forms of the
// source key columns) as the source orders its primary key, each as
// PostgreSQL prints it: the database compares them, by the columns'
// types and collations, so that the range means to the postgres source
// what it means here.
func (c *comparison) bounds(ctx context.Context, keys [][]string) (lo, hi []string, err error) {
	n := len(c.srcKey)
	cols := make([][]string, n)
	for _, k := range keys {
		for i := range n {
			cols[i] = append(cols[i], k[i])
		}
	}
	var unnest, cast, asc, desc []string
	args := make([]any, n)
	for i, col := range c.srcKey {
		k := "k" + strconv.Itoa(i)
		unnest = append(unnest, "$"+strconv.Itoa(i+1)+"::text[]")
		cast = append(cast, "u."+k+"::"+c.source.types[col]+" AS "+k)
		o := k
		if coll := c.source.collation[col]; coll != "" {
			o += " COLLATE " + coll
		}
		asc, desc = append(asc, o), append(desc, o+" DESC")
		args[i] = cols[i]
	}
	var names, texts []string
	for i := range n {
		names = append(names, "k"+strconv.Itoa(i))
		// Named apart: ORDER BY k0 would sort this output column, text.
		texts = append(texts, "k"+strconv.Itoa(i)+"::text AS t"+strconv.Itoa(i))
	}
	keysCTE := "WITH k AS (SELECT " + strings.Join(cast, ", ") + " FROM unnest(" + strings.Join(unnest, ", ") + ") AS u(" + strings.Join(names, ", ") + "))"
	pick := func(side int, order []string) string {
		return "(SELECT " + strconv.Itoa(side) + " AS side, " + strings.Join(texts, ", ") + " FROM k ORDER BY " + strings.Join(order, ", ") + " LIMIT 1)"
	}
	sql := keysCTE + " SELECT * FROM (" + pick(0, asc) + " UNION ALL " + pick(1, desc) + ") b ORDER BY side"
	rows, err := c.source.conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var side int
		vals := make([]string, n)
		dest := []any{&side}
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, nil, err
		}
		if side == 0 {
			lo = vals
		} else {
			hi = vals
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if lo == nil || hi == nil {
		return nil, nil, fmt.Errorf("the source did not order the chunk's keys")
	}
	return lo, hi, nil
}
