package transforms

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Transform applies one `transform` block. Build it with New; it is
// immutable afterwards and safe for concurrent use.
type Transform struct {
	name string
	// tables and schemas scope the transform; both nil means every table.
	tables  map[string]bool // "schema.table"
	schemas map[string]bool // from "schema.*"
	where   *eventexpr.Program
	set     []dsl.SetColumn
	setCols []string // the columns set writes, for Changed
	cols    columns
	hashKey []byte // nil unless a column is masked with "hash"
	rels    relations
	workers sync.Pool
}

var _ engine.Transform = (*Transform)(nil)

// worker is the per-goroutine state of Apply: an expression evaluator
// and the hashing buffers, reused across events to avoid allocations.
type worker struct {
	ev   eventexpr.Evaluator
	hash hasher
	vals []any // set results, computed before any is stored
	// shapes caches the plan of the column steps per input Columns
	shapes map[shapeKey]*shape
	slab   []any          // room for the values of rows to come (see values)
	recent [3]recentShape // the last shapes used, checked before shapes
	next   int            // the entry of recent to replace next
	// the last Changed lists set and the column steps rewrote
	setNames, colNames namesCache
}

// namesCache remembers the last list of column names a step rewrote and
// the result. Consecutive events of a table mostly carry the same list
// (every insert names every column), so sharing the result saves a copy
// per event; lists are immutable by convention, so sharing is safe.
type namesCache struct{ in, out []string }

func (c *namesCache) hit(in []string) bool {
	return in != nil && (sameSlice(in, c.in) || slices.Equal(in, c.in))
}

// sameSlice reports whether a and b are the same slice (array, length
// and capacity): the events of a batch mostly share one list of names,
// and comparing its address saves comparing the names.
func sameSlice(a, b []string) bool {
	return unsafe.SliceData(a) == unsafe.SliceData(b) && len(a) == len(b) && cap(a) == cap(b)
}

// store remembers out for in, clipped so that an append to one event's
// list can never write into another's.
func (c *namesCache) store(in, out []string) { c.in, c.out = in, slices.Clip(out) }

// New builds the transform block t. It matches components.Kinds.Transform.
// It fails when a column is masked with "hash" and the pipeline has no
// mask_key, on an unknown mask kind, and when select and exclude are both
// given (dsl rejects those too; New does not trust its input).
func New(b engine.Build, t *dsl.Transform) (engine.Transform, error) {
	return build(b.Pipeline.MaskKey, t)
}

// build builds t; maskKey keys the "hash" mask.
func build(maskKey string, t *dsl.Transform) (*Transform, error) {
	tr := &Transform{name: t.Name, where: t.Where, set: t.Set}
	for _, name := range t.Tables {
		if schema, ok := strings.CutSuffix(name, ".*"); ok {
			if tr.schemas == nil {
				tr.schemas = map[string]bool{}
			}
			tr.schemas[schema] = true
			continue
		}
		if tr.tables == nil {
			tr.tables = map[string]bool{}
		}
		tr.tables[name] = true
	}
	for _, s := range t.Set {
		if s.Expr == nil {
			return nil, fmt.Errorf("set %s has no expression", s.Column)
		}
		tr.setCols = appendMissing(tr.setCols, s.Column)
	}
	if len(t.Select) > 0 && len(t.Exclude) > 0 {
		return nil, fmt.Errorf("select and exclude are both set: keep one (select lists the columns to keep, exclude the ones to drop)")
	}
	cols, hashes, err := planColumns(t)
	if err != nil {
		return nil, err
	}
	tr.cols = cols
	if hashes != "" {
		key := maskKey
		if key == "" {
			return nil, fmt.Errorf("mask %s = \"hash\" needs a key: set mask_key in the pipeline block or the SLUICE_MASK_KEY environment variable", hashes)
		}
		tr.hashKey = []byte(key)
	}
	tr.workers.New = func() any {
		w := &worker{}
		if tr.hashKey != nil {
			w.hash.mac = hmac.New(sha256.New, tr.hashKey)
		}
		return w
	}
	return tr, nil
}

// Apply runs the transform over a batch. Events it drops for `where` are
// replaced by their Mark when they end a transaction. An event whose
// expression fails at run time is returned in failed (with an *Error) and
// not passed on, not even as a Mark: the engine decides, by the on_error
// policy, whether its position may be passed.
func (t *Transform) Apply(in []change.Event) (out []change.Event, failed []engine.Failure) {
	w := t.workers.Get().(*worker)
	defer t.workers.Put(w)
	// out starts as a copy of in, made in one go, and each event is
	// changed in its place: most events are kept, and copying a batch at
	// once costs less than copying its events one by one.
	out = slices.Clone(in)
	n := 0
	for i := range in {
		e, res := &in[i], &out[n]
		if n != i {
			*res = *e
		}
		if !e.Op.IsRow() || !t.applies(e) {
			n++
			continue
		}
		keep, err := t.apply(w, e, res)
		switch {
		case err != nil:
			failed = append(failed, engine.Failure{Event: *e, Err: err})
		case keep:
			n++
		case e.Boundary:
			*res = e.AsMark()
			n++
		}
	}
	clear(out[n:]) // no dropped event kept alive by the tail
	return out[:n], failed
}

func (t *Transform) applies(e *change.Event) bool {
	if t.tables == nil && t.schemas == nil {
		return true
	}
	return t.tables[e.QualifiedTable()] || t.schemas[e.Schema]
}

// apply runs every step on one row event e, into res, which holds a copy
// of e. keep is false when `where` dropped it.
func (t *Transform) apply(w *worker, e, res *change.Event) (keep bool, err error) {
	if t.where != nil || len(t.set) > 0 {
		w.ev.Bind(e)
	}
	if t.where != nil {
		ok, err := w.ev.Bool(t.where)
		if err != nil {
			return false, t.fail(e, "where", t.where.Source, err)
		}
		if !ok {
			return false, nil
		}
	}
	var set []any
	// set writes computed columns into the new row; a delete has none.
	if len(t.set) > 0 && !e.After.IsZero() {
		w.vals = w.vals[:0]
		for _, s := range t.set {
			v, err := w.ev.Value(s.Expr)
			if err == nil {
				v, err = normalize(v)
			}
			if err != nil {
				return false, t.fail(e, "set "+s.Column, s.Expr.Source, err)
			}
			w.vals = append(w.vals, v)
		}
		set = w.vals
		if !w.setNames.hit(e.Changed) {
			w.setNames.store(e.Changed, withNames(e.Changed, t.setCols))
		}
		res.Changed = w.setNames.out
	}
	if len(t.set) > 0 || !t.cols.empty() {
		// Only the rows that change are written: a write into out costs
		// a write barrier while the GC marks.
		if r, ok := t.reshape(w, e.Before, nil); ok {
			res.Before = r
		}
		if r, ok := t.reshape(w, e.After, set); ok {
			res.After = r
		}
		if r, ok := t.reshape(w, e.Key, nil); ok {
			res.Key = r
		}
		if rel := t.rels.of(t, e.Relation, res); rel != e.Relation {
			res.Relation = rel
		}
	}
	if !t.cols.empty() {
		if !w.colNames.hit(res.Changed) {
			w.colNames.store(res.Changed, t.cols.names(res.Changed))
		}
		if !sameSlice(res.Changed, w.colNames.out) {
			res.Changed = w.colNames.out
		}
	}
	return true, nil
}

// reshape applies set (with the computed values set, nil for none) and
// the column steps to r.
// ok is false when the row passes as is.
func (t *Transform) reshape(w *worker, r change.Row, set []any) (_ change.Row, ok bool) {
	if r.IsZero() {
		return r, false
	}
	s := t.shapeOf(w, r.Columns(), set != nil)
	if s.same {
		return r, false
	}
	return s.apply(w, r, set), true
}

// withNames returns names plus those of extra it lacks, as a new slice.
// A computed column counts as changed: its value is derived anew.
func withNames(names, extra []string) []string {
	out := make([]string, len(names), len(names)+len(extra))
	copy(out, names)
	for _, n := range extra {
		out = appendMissing(out, n)
	}
	return out
}

func appendMissing(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// Error is a runtime failure of one step of a transform on one event,
// e.g. split() of a NULL column.
type Error struct {
	Transform string
	Table     string // "schema.table"
	Position  change.Position
	Step      string // "where" or "set COLUMN"
	Expr      string // the expression's text
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("transform %q: %s at %s position %s: %s %q: %v",
		e.Transform, e.Table, e.Position.Stream(), e.Position, e.Step, e.Expr, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

func (t *Transform) fail(e *change.Event, step, expr string, err error) error {
	return &Error{Transform: t.name, Table: e.QualifiedTable(), Position: e.Position, Step: step, Expr: expr, Err: err}
}
