package change

import (
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"strings"
)

// Columns is the ordered list of column names the values of a Row are
// indexed by. A source makes one per table shape (per Relation version)
// and every row of that shape shares it, so that a row costs one slice of
// values and no per-row hashing of names. Columns is immutable and safe
// to share between goroutines.
type Columns struct {
	names []string
	// index maps a name to its position for wide lists; nil for narrow
	// ones, where comparing a few strings beats hashing one.
	index map[string]int
	// byName lists the positions in name order, nil when names is
	// already sorted: formats write a row's columns sorted, so that the
	// same row always has the same bytes.
	byName []int
}

// indexFrom is the width from which Columns keeps a map of names.
const indexFrom = 12

// NewColumns returns the Columns of names, in that order. Names must be
// distinct; NewColumns panics otherwise, a programming error of the
// caller (sources read names from a catalog, which has no duplicates).
func NewColumns(names ...string) *Columns {
	c := &Columns{names: names}
	if len(names) >= indexFrom {
		c.index = make(map[string]int, len(names))
		for i, n := range names {
			c.index[n] = i
		}
		if len(c.index) != len(names) {
			panic(fmt.Sprintf("change.NewColumns: duplicate column name in %q", names))
		}
	} else {
		for i, n := range names {
			if slices.Contains(names[:i], n) {
				panic(fmt.Sprintf("change.NewColumns: duplicate column name %q in %q", n, names))
			}
		}
	}
	if !slices.IsSorted(names) {
		c.byName = make([]int, len(names))
		for i := range c.byName {
			c.byName[i] = i
		}
		slices.SortFunc(c.byName, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	}
	return c
}

// Len returns the number of columns (0 for nil, the Columns of a zero Row).
func (c *Columns) Len() int {
	if c == nil {
		return 0
	}
	return len(c.names)
}

// Name returns the name of column i.
func (c *Columns) Name(i int) string { return c.names[i] }

// Names returns the names in order. The slice is shared: do not modify it.
func (c *Columns) Names() []string { return c.names }

// Index returns the position of name, or -1.
func (c *Columns) Index(name string) int {
	if c.index != nil {
		if i, ok := c.index[name]; ok {
			return i
		}
		return -1
	}
	for i, n := range c.names {
		if n == name {
			return i
		}
	}
	return -1
}

// sortedAt returns the position of the i-th name in name order.
func (c *Columns) sortedAt(i int) int {
	if c.byName == nil {
		return i
	}
	return c.byName[i]
}

// Row is one row's values, indexed by its Columns. A column of the
// Columns may be unsent (see Unsent): the source did not send it, e.g.
// an unchanged TOASTed value, and sinks must leave the target's value
// alone. Values are nil (SQL NULL) or one of: bool, int64, float64,
// string, []byte, time.Time, Numeric, JSON, []any (arrays),
// map[string]any (decoded JSON objects in native events). Sources keep
// the column's database type in Relation so that sinks can write it
// faithfully.
//
// The zero Row is no row at all (an insert's Before), as IsZero tells. A
// Row is a small value sharing its storage: rows are read-only once an
// event carries them, and a stage that changes one works on Clone.
type Row struct {
	cols *Columns
	vals []any
}

// unsent is the type of Unsent.
type unsent struct{}

// Unsent is the value of a column the source did not send: a row reads
// as if it lacked the column. Sources put it where a column of the shared
// Columns has no value (an unchanged TOASTed value).
var Unsent any = unsent{}

func isUnsent(v any) bool {
	_, ok := v.(unsent)
	return ok
}

// MakeRow returns the row of cols whose values are vals, which it keeps:
// the caller must not change vals afterwards. len(vals) must be
// cols.Len().
func MakeRow(cols *Columns, vals []any) Row {
	if len(vals) != cols.Len() {
		panic(fmt.Sprintf("change.MakeRow: %d values for %d columns", len(vals), cols.Len()))
	}
	return Row{cols: cols, vals: vals}
}

// RowOf returns a row holding the entries of m, its columns in name
// order; a nil map gives the zero Row. It is for rows whose shape is not
// known ahead: decoded JSON, tests. The row keeps no reference to m.
func RowOf(m map[string]any) Row {
	if m == nil {
		return Row{}
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	vals := make([]any, len(names))
	for i, n := range names {
		vals[i] = m[n]
	}
	return Row{cols: NewColumns(names...), vals: vals}
}

// NewRow returns a row without columns, to which Set adds them: for
// code off the hot path that builds a row by name.
func NewRow() Row { return Row{cols: NewColumns()} }

// IsZero reports whether r is no row at all (not a row without columns).
func (r Row) IsZero() bool { return r.cols == nil }

// Columns returns the columns r's values are indexed by, nil for the
// zero Row. They may include unsent columns.
func (r Row) Columns() *Columns { return r.cols }

// Value returns the value of column i of r.Columns() and whether it was
// sent.
func (r Row) Value(i int) (any, bool) {
	v := r.vals[i]
	if isUnsent(v) {
		return nil, false
	}
	return v, true
}

// Lookup returns the value of the named column and whether the row has it.
func (r Row) Lookup(name string) (any, bool) {
	if r.cols == nil {
		return nil, false
	}
	i := r.cols.Index(name)
	if i < 0 {
		return nil, false
	}
	return r.Value(i)
}

// Get returns the value of the named column, nil when the row lacks it.
func (r Row) Get(name string) any {
	v, _ := r.Lookup(name)
	return v
}

// Has reports whether the row has the named column.
func (r Row) Has(name string) bool {
	_, ok := r.Lookup(name)
	return ok
}

// Len returns the number of columns the row has.
func (r Row) Len() int {
	n := 0
	for _, v := range r.vals {
		if !isUnsent(v) {
			n++
		}
	}
	return n
}

// All yields the row's columns and values in column order.
func (r Row) All() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for i, v := range r.vals {
			if !isUnsent(v) && !yield(r.cols.names[i], v) {
				return
			}
		}
	}
}

// Sorted yields the row's columns and values in name order, without
// sorting: the order is computed once per Columns.
func (r Row) Sorted() iter.Seq2[string, any] {
	return func(yield func(string, any) bool) {
		for i := range r.vals {
			j := r.cols.sortedAt(i)
			if v := r.vals[j]; !isUnsent(v) && !yield(r.cols.names[j], v) {
				return
			}
		}
	}
}

// Names returns the names of the row's columns, sorted, as a new slice.
func (r Row) Names() []string {
	names := make([]string, 0, len(r.vals))
	for n := range r.Sorted() {
		names = append(names, n)
	}
	return names
}

// Map returns the row as a new map, nil for the zero Row: for APIs that
// need names (expressions that use a whole row, tests).
func (r Row) Map() map[string]any {
	if r.cols == nil {
		return nil
	}
	m := make(map[string]any, len(r.vals))
	for k, v := range r.All() {
		m[k] = v
	}
	return m
}

// Clone returns a copy whose values the caller may change with Set and
// Delete; values themselves are immutable by convention.
func (r Row) Clone() Row {
	if r.cols == nil {
		return r
	}
	return Row{cols: r.cols, vals: slices.Clone(r.vals)}
}

// Set sets the named column, adding it (after the others) when the row
// lacks it. r must be the caller's own (a Clone, or a row it made): rows
// that events carry are shared. Adding a column makes new Columns; code
// on a hot path builds rows with MakeRow from Columns it keeps instead.
func (r *Row) Set(name string, v any) {
	if r.cols != nil {
		if i := r.cols.Index(name); i >= 0 {
			r.vals[i] = v
			return
		}
	}
	var names []string
	if r.cols != nil {
		names = slices.Clip(r.cols.names)
	}
	r.cols = NewColumns(append(names, name)...)
	r.vals = append(slices.Clip(r.vals), v)
}

// Delete removes the named column from r, which must be the caller's own
// (see Set). The Columns stay shared: the column becomes unsent.
func (r *Row) Delete(name string) {
	if r.cols == nil {
		return
	}
	if i := r.cols.Index(name); i >= 0 {
		r.vals[i] = Unsent
	}
}

// Equal reports whether a and b hold the same columns with equal values
// (by ==, or byte-wise and element-wise for []byte, []any and
// map[string]any), whatever their column order.
func (r Row) Equal(o Row) bool {
	if r.IsZero() || o.IsZero() {
		return r.IsZero() == o.IsZero()
	}
	if r.Len() != o.Len() {
		return false
	}
	for k, v := range r.All() {
		w, ok := o.Lookup(k)
		if !ok || !equalValue(v, w) {
			return false
		}
	}
	return true
}

func equalValue(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && string(x) == string(y)
	case []any:
		y, ok := b.([]any)
		return ok && slices.EqualFunc(x, y, equalValue)
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || !equalValue(v, w) {
				return false
			}
		}
		return true
	}
	defer func() { _ = recover() }() // incomparable values are unequal
	return a == b
}

// String formats the row like a map, its columns sorted: map[a:1 b:x].
func (r Row) String() string {
	if r.IsZero() {
		return "map[]"
	}
	var b strings.Builder
	b.WriteString("map[")
	first := true
	for k, v := range r.Sorted() {
		if !first {
			b.WriteByte(' ')
		}
		first = false
		fmt.Fprintf(&b, "%s:%v", k, v)
	}
	b.WriteByte(']')
	return b.String()
}

// MarshalJSON encodes the row as a JSON object, its columns sorted by
// name, null for the zero Row.
func (r Row) MarshalJSON() ([]byte, error) {
	if r.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(r.Map())
}

// UnmarshalJSON decodes a JSON object (null: the zero Row), with
// encoding/json's types (float64 numbers).
func (r *Row) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = RowOf(m)
	return nil
}
