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

// row applies the plan to r and returns the result. It copies r once,
// on the first change, unless owned says r is already a private copy;
// a row nothing applies to is returned as is.
func (c *columns) row(w *worker, r change.Row, owned bool) change.Row {
	if r == nil {
		return nil
	}
	cw := cow{r: r, owned: owned}
	// Dropping before masking gives the same result (a masked column that
	// is then dropped is gone either way), hashes nothing in vain, and
	// writes the masks into a row that has room: a write into a full
	// small map makes Go grow it even when the key exists.
	if c.keep != nil {
		for name := range r {
			if !c.keep[name] {
				delete(cw.own(), name)
			}
		}
	}
	for _, name := range c.drop {
		if _, ok := cw.r[name]; ok {
			delete(cw.own(), name)
		}
	}
	for _, m := range c.masks {
		v, ok := cw.r[m.column]
		if !ok || v == nil { // NULL stays NULL under every mask
			continue
		}
		cw.own()[m.column] = m.kind.apply(&w.hash, v)
	}
	if c.renames != nil {
		c.rename(w, &cw)
	}
	return cw.r
}

// cow is a row copied on first write.
type cow struct {
	r     change.Row
	owned bool
}

// own returns the row, copied first unless it is already private.
func (c *cow) own() change.Row {
	if !c.owned {
		c.r = c.r.Clone()
		c.owned = true
	}
	return c.r
}

// rename moves every renamed column at once, so that {a = "b", b = "a"}
// swaps two columns instead of chaining. A renamed column replaces a
// column of the target name.
func (c *columns) rename(w *worker, cw *cow) {
	moved := w.moved[:0]
	for _, rn := range c.renames {
		v, ok := cw.r[rn.From]
		moved = append(moved, movedValue{v, ok})
		if ok {
			delete(cw.own(), rn.From)
		}
	}
	for i, rn := range c.renames {
		if moved[i].ok {
			cw.r[rn.To] = moved[i].v
		}
	}
	clear(moved)
	w.moved = moved
}

// movedValue is a renamed column's value and whether the row had it.
type movedValue struct {
	v  any
	ok bool
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
		gone := (c.keep != nil && !c.keep[n]) || slices.Contains(c.drop, n)
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
