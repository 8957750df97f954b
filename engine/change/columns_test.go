package change

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

func TestRowReads(t *testing.T) {
	cols := NewColumns("id", "name", "doc", "note")
	r := MakeRow(cols, []any{int64(1), "ada", Unsent, nil})
	for _, c := range []struct {
		name string
		v    any
		ok   bool
	}{{"id", int64(1), true}, {"name", "ada", true}, {"doc", nil, false}, {"note", nil, true}, {"other", nil, false}} {
		v, ok := r.Lookup(c.name)
		if v != c.v || ok != c.ok || r.Has(c.name) != c.ok || r.Get(c.name) != c.v {
			t.Errorf("%s: Lookup = %v, %v; want %v, %v", c.name, v, ok, c.v, c.ok)
		}
	}
	if r.Len() != 3 {
		t.Errorf("Len = %d, want 3: an unsent column is not the row's", r.Len())
	}
	var order []string
	for k := range r.All() {
		order = append(order, k)
	}
	if !slices.Equal(order, []string{"id", "name", "note"}) {
		t.Errorf("All yields %v, want the column order without the unsent column", order)
	}
	order = nil
	for k := range r.Sorted() {
		order = append(order, k)
	}
	if want := []string{"id", "name", "note"}; !slices.Equal(order, want) || !slices.Equal(r.Names(), want) {
		t.Errorf("Sorted yields %v, Names %v, want %v", order, r.Names(), want)
	}
	if !reflect.DeepEqual(r.Map(), map[string]any{"id": int64(1), "name": "ada", "note": nil}) {
		t.Errorf("Map = %v", r.Map())
	}
	if s := r.String(); s != "map[id:1 name:ada note:<nil>]" {
		t.Errorf("String = %s", s)
	}
}

func TestZeroAndEmptyRows(t *testing.T) {
	var zero Row
	if !zero.IsZero() || zero.Len() != 0 || zero.Has("x") || zero.Map() != nil || zero.Columns().Len() != 0 {
		t.Error("the zero Row is not an absent row")
	}
	if b, _ := json.Marshal(zero); string(b) != "null" {
		t.Errorf("zero Row marshals as %s, want null", b)
	}
	empty := NewRow()
	if empty.IsZero() || empty.Len() != 0 {
		t.Error("NewRow is not a present row without columns")
	}
	if RowOf(nil).IsZero() != true || RowOf(map[string]any{}).IsZero() {
		t.Error("RowOf: nil map must give the zero Row, an empty map an empty row")
	}
	if !zero.Equal(Row{}) || zero.Equal(empty) || empty.Equal(zero) || !empty.Equal(NewRow()) {
		t.Error("Equal does not tell an absent row from an empty one")
	}
}

func TestRowWrites(t *testing.T) {
	cols := NewColumns("b", "a")
	shared := MakeRow(cols, []any{"x", "y"})
	own := shared.Clone()
	own.Set("a", "changed")
	own.Set("c", int64(3))
	own.Delete("b")
	if shared.Get("a") != "y" || shared.Get("b") != "x" || shared.Has("c") {
		t.Errorf("writes to a clone reached the original: %v", shared)
	}
	if !reflect.DeepEqual(own.Map(), map[string]any{"a": "changed", "c": int64(3)}) {
		t.Errorf("clone after writes = %v", own)
	}
	if own.Columns().Len() != 3 || shared.Columns() != cols {
		t.Error("Set of a new column must make new Columns and leave the shared ones alone")
	}
	// Two rows made from one row by adding different columns do not
	// write into each other (append's aliasing).
	base := NewRow()
	base.Set("id", int64(1))
	x, y := base.Clone(), base.Clone()
	x.Set("x", 1)
	y.Set("y", 2)
	if x.Has("y") || y.Has("x") || x.Get("x") != 1 || y.Get("y") != 2 {
		t.Errorf("rows grown from one row alias: %v %v", x, y)
	}
}

func TestRowEqualAndJSON(t *testing.T) {
	a := MakeRow(NewColumns("id", "tags", "raw", "n"), []any{int64(1), []any{"a", int64(2)}, []byte("\x00\x01"), Numeric("1.50")})
	b := RowOf(map[string]any{"raw": []byte("\x00\x01"), "n": Numeric("1.50"), "tags": []any{"a", int64(2)}, "id": int64(1)})
	if !a.Equal(b) || !b.Equal(a) {
		t.Errorf("rows of the same content in another column order are not Equal: %v %v", a, b)
	}
	c := b.Clone()
	c.Set("n", Numeric("1.5"))
	if a.Equal(c) {
		t.Error("Equal ignores a changed value")
	}
	d := a.Clone()
	d.Delete("n")
	if a.Equal(d) || d.Equal(a) {
		t.Error("Equal ignores a missing column")
	}
	odd := func() Row { return MakeRow(NewColumns("id"), []any{[]string{"a"}}) } // not a documented value type
	if odd().Equal(odd()) {
		t.Error("Equal of incomparable values must be false, not panic")
	}
	j, err := json.Marshal(MakeRow(NewColumns("b", "a", "c"), []any{int64(2), "x", Unsent}))
	if err != nil || string(j) != `{"a":"x","b":2}` {
		t.Errorf("MarshalJSON = %s, %v; want the sent columns sorted", j, err)
	}
	var back Row
	if err := json.Unmarshal(j, &back); err != nil || !back.Equal(RowOf(map[string]any{"a": "x", "b": float64(2)})) {
		t.Errorf("UnmarshalJSON = %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte("null"), &back); err != nil || !back.IsZero() {
		t.Errorf("null decodes to %v, %v; want the zero Row", back, err)
	}
}

func TestColumns(t *testing.T) {
	for _, n := range []int{3, indexFrom, 40} { // narrow lists are scanned, wide ones hashed
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("c%02d", n-i) // reverse order: not sorted
		}
		c := NewColumns(names...)
		for i, name := range names {
			if c.Index(name) != i || c.Name(i) != name {
				t.Errorf("width %d: Index(%s) = %d, want %d", n, name, c.Index(name), i)
			}
		}
		if c.Index("missing") != -1 || c.Len() != n {
			t.Errorf("width %d: Index of a missing name = %d, Len = %d", n, c.Index("missing"), c.Len())
		}
		vals := make([]any, n)
		for i := range vals {
			vals[i] = i
		}
		var sorted []string
		for k := range MakeRow(c, vals).Sorted() {
			sorted = append(sorted, k)
		}
		if !slices.IsSorted(sorted) || len(sorted) != n {
			t.Errorf("width %d: Sorted yields %v", n, sorted)
		}
	}
	for _, names := range [][]string{{"a", "b", "a"}, append(make([]string, indexFrom), "x")} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewColumns(%q) accepted a duplicate name", names)
				}
			}()
			NewColumns(names...)
		}()
	}
	defer func() {
		if recover() == nil {
			t.Error("MakeRow accepted a value count that is not the column count")
		}
	}()
	MakeRow(NewColumns("a", "b"), []any{1})
}
