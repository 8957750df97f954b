package transforms

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// columns is the precomputed plan of the column steps that follow set:
// mask → select/exclude → rename. The same plan is applied to Before,
// After and Key so that no part of an event disagrees with another.
type columns struct {
	masks   []mask
	keep    map[string]bool // select; nil when not given
	drop    []string        // exclude
	renames []dsl.RenameColumn
}

// planColumns checks and precomputes the column steps of t. hashes names
// the columns masked with "hash" ("" when none), for the missing-key error.
func planColumns(t *dsl.Transform) (c columns, hashes string, err error) {
	var hashed []string
	for _, m := range t.Mask {
		k, ok := maskKinds[m.Kind]
		if !ok {
			return c, "", fmt.Errorf("mask %s: unknown kind %q: use hash, redact, partial or null", m.Column, m.Kind)
		}
		if k == maskHash {
			hashed = append(hashed, m.Column)
		}
		c.masks = append(c.masks, mask{column: m.Column, kind: k})
	}
	if len(t.Select) > 0 {
		c.keep = make(map[string]bool, len(t.Select))
		for _, s := range t.Select {
			c.keep[s] = true
		}
	}
	if len(t.Exclude) > 0 {
		c.drop = t.Exclude
	}
	if len(t.Rename) > 0 {
		c.renames = t.Rename
		for i, r := range t.Rename {
			if slices.ContainsFunc(t.Rename[:i], func(p dsl.RenameColumn) bool { return p.From == r.From }) {
				return c, "", fmt.Errorf("rename %s is given twice: rename a column once", r.From)
			}
		}
	}
	return c, strings.Join(hashed, ", "), nil
}

func (c *columns) empty() bool {
	return len(c.masks) == 0 && c.keep == nil && c.drop == nil && c.renames == nil
}

func (c *columns) dropped(name string) bool {
	return (c.keep != nil && !c.keep[name]) || slices.Contains(c.drop, name)
}

// shape is the plan of every step that changes columns (set, mask,
// select/exclude, rename) for the rows of one Columns: for each output
// column, where its value comes from. A source shares one Columns
// between every row of a table's shape, so a shape is computed once per
// table version and each row then costs one slice of values, with no
// name looked up.
type shape struct {
	out *change.Columns
	// cols holds the sources of each output column, in order of
	// preference: the first whose value the row has gives it. More than
	// one only where a rename lands on a column's name: the renamed
	// value when the row has it, else the column's own (a row without
	// the renamed column keeps the other, as a map would).
	cols [][]valueSource
	// same reports that the output is the input: the row passes as is.
	same bool
}

// valueSource is one way to obtain an output column's value.
type valueSource struct {
	in    int        // position in the input Columns; -1 for a computed value
	set   int        // index into Transform.set when in is -1
	masks []maskKind // applied in order to a non-NULL value
}

// shapeKey identifies a shape: the input Columns and whether set's
// computed columns are added (to After; never to Before or Key).
type shapeKey struct {
	cols    *change.Columns
	withSet bool
}

// maxShapes bounds a worker's cache of shapes: rows decoded from JSON
// (file and Kafka sources) each have Columns of their own.
const maxShapes = 256

// shapeOf returns the shape of rows of cols, cached in w. The shapes of
// the last event's rows (its key, before and after) are checked first:
// consecutive events mostly share them, and comparing beats hashing.
func (t *Transform) shapeOf(w *worker, cols *change.Columns, withSet bool) *shape {
	k := shapeKey{cols, withSet}
	for _, r := range w.recent {
		if r.key == k {
			return r.shape
		}
	}
	s, ok := w.shapes[k]
	if !ok {
		s = t.newShape(w, k)
	}
	w.recent[w.next] = recentShape{k, s}
	w.next = (w.next + 1) % len(w.recent)
	return s
}

// recentShape is an entry of worker.recent.
type recentShape struct {
	key   shapeKey
	shape *shape
}

// newShape plans and caches the shape of k.
func (t *Transform) newShape(w *worker, k shapeKey) *shape {
	if w.shapes == nil || len(w.shapes) >= maxShapes {
		w.shapes = make(map[shapeKey]*shape)
	}
	s := t.plan(k.cols, k.withSet)
	w.shapes[k] = s
	return s
}

// plan computes the shape of rows of in.
func (t *Transform) plan(in *change.Columns, withSet bool) *shape {
	type entry struct {
		name    string
		srcs    []valueSource
		renamed int // index of the rename that named it, -1 if none
	}
	es := make([]entry, 0, in.Len()+len(t.set))
	for i, n := range in.Names() {
		es = append(es, entry{name: n, srcs: []valueSource{{in: i, set: -1}}, renamed: -1})
	}
	find := func(name string) int {
		return slices.IndexFunc(es, func(e entry) bool { return e.name == name })
	}
	if withSet {
		for k, s := range t.set {
			src := []valueSource{{in: -1, set: k}}
			if i := find(s.Column); i >= 0 {
				es[i].srcs = src
			} else {
				es = append(es, entry{name: s.Column, srcs: src, renamed: -1})
			}
		}
	}
	for _, m := range t.cols.masks {
		if i := find(m.column); i >= 0 {
			es[i].srcs[0].masks = append(es[i].srcs[0].masks, m.kind)
		}
	}
	es = slices.DeleteFunc(es, func(e entry) bool { return t.cols.dropped(e.name) })
	// Every rename moves at once, so that {a = "b", b = "a"} swaps.
	for i := range es {
		if r := slices.IndexFunc(t.cols.renames, func(r dsl.RenameColumn) bool { return r.From == es[i].name }); r >= 0 {
			es[i].name, es[i].renamed = t.cols.renames[r].To, r
		}
	}
	// A renamed column replaces one of its new name; of two renamed onto
	// one name, the later rename wins.
	for i := 0; i < len(es); i++ {
		for j := i + 1; j < len(es); j++ {
			if es[j].name != es[i].name {
				continue
			}
			first, second := es[i], es[j]
			if second.renamed > first.renamed {
				first, second = second, first
			}
			es[i].srcs = append(slices.Clip(first.srcs), second.srcs...)
			es[i].renamed = max(first.renamed, second.renamed)
			es = slices.Delete(es, j, j+1)
			j--
		}
	}
	s := &shape{cols: make([][]valueSource, len(es)), same: len(es) == in.Len()}
	names := make([]string, len(es))
	for i, e := range es {
		names[i], s.cols[i] = e.name, e.srcs
		src := e.srcs[0]
		if len(e.srcs) > 1 || src.in != i || len(src.masks) > 0 || e.name != in.Name(i) {
			s.same = false
		}
	}
	if s.same {
		s.out = in
	} else {
		s.out = change.NewColumns(names...)
	}
	return s
}

// apply returns r in shape s, which is not same; set holds the computed
// values. Each value is written once: a write into the slab costs a write
// barrier while the GC marks.
func (s *shape) apply(w *worker, r change.Row, set []any) change.Row {
	vals := w.values(len(s.cols))
	for i, srcs := range s.cols {
		v := change.Unsent
		for _, src := range srcs {
			var x any
			if src.in < 0 {
				x = set[src.set]
			} else if sent, ok := r.Value(src.in); ok {
				x = sent
			} else {
				continue
			}
			for _, m := range src.masks {
				if x != nil { // NULL stays NULL under every mask
					x = m.apply(&w.hash, x)
				}
			}
			v = x
			break
		}
		vals[i] = v
	}
	return change.MakeRow(s.out, vals)
}

// slabValues is how many values a worker allocates at once for the rows
// it makes: one allocation for many rows instead of one per row. A row
// keeps its slab alive, which a batch's rows share anyway.
const slabValues = 4096

// values returns room for n values of a new row.
func (w *worker) values(n int) []any {
	if len(w.slab) < n {
		w.slab = make([]any, max(slabValues, n))
	}
	vals := w.slab[:n:n]
	w.slab = w.slab[n:]
	return vals
}

// names applies select/exclude and rename to a list of column names
// (Changed), copying it only when something changes. exclude and rename
// lists are short, so scanning them beats hashing each name.
func (c *columns) names(list []string) []string {
	if list == nil || (c.keep == nil && c.drop == nil && c.renames == nil) {
		return list
	}
	var out []string
	for i, n := range list {
		to, renamed := c.renameOf(n)
		gone := c.dropped(n)
		if out == nil && (gone || renamed) {
			out = make([]string, i, len(list))
			copy(out, list[:i])
		}
		switch {
		case out == nil:
		case gone:
		case renamed:
			out = append(out, to)
		default:
			out = append(out, n)
		}
	}
	if out == nil {
		return list
	}
	return out
}

func (c *columns) renameOf(name string) (string, bool) {
	for _, r := range c.renames {
		if r.From == name {
			return r.To, true
		}
	}
	return "", false
}
