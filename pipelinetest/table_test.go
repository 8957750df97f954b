package pipelinetest

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/eventtest"
)

type row = map[string]any

func rowOf(m row) change.Row { return change.RowOf(m) }

func rowsOf(ms []row) []change.Row {
	out := make([]change.Row, len(ms))
	for i, m := range ms {
		out[i] = rowOf(m)
	}
	return out
}

func ev(op change.Op, n uint64, before, after row) change.Event {
	e := change.Event{Op: op, Schema: "public", Table: "t", Before: rowOf(before), After: rowOf(after),
		Position: change.Position{Source: "app", Offset: n}, Boundary: true}
	if r := e.Row(); !r.IsZero() {
		if id, ok := r.Lookup("id"); ok {
			e.Key = rowOf(row{"id": id})
		}
	}
	return e
}

func TestTable(t *testing.T) {
	ins := func(n uint64, after row) change.Event { return ev(change.Insert, n, nil, after) }
	upd := func(n uint64, before, after row) change.Event { return ev(change.Update, n, before, after) }
	del := func(n uint64, before row) change.Event { return ev(change.Delete, n, before, nil) }
	commit := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name   string
		sink   *dsl.TableSink
		events []change.Event
		want   []row
	}{
		{"upsert merges; columns absent from after keep their value", &dsl.TableSink{},
			[]change.Event{ins(1, row{"id": int64(1), "a": "x", "big": "toast"}), upd(2, row{"id": int64(1)}, row{"id": int64(1), "a": "y"})},
			[]row{{"id": int64(1), "a": "y", "big": "toast"}}},
		{"a primary-key update deletes the old key and writes the new", &dsl.TableSink{},
			[]change.Event{ins(1, row{"id": int64(1), "a": "x"}), upd(2, row{"id": int64(1), "a": "x"}, row{"id": int64(2), "a": "x"})},
			[]row{{"id": int64(2), "a": "x"}}},
		{"hard delete", &dsl.TableSink{Delete: "hard"},
			[]change.Event{ins(1, row{"id": int64(1)}), ins(2, row{"id": int64(2)}), del(3, row{"id": int64(1)})},
			[]row{{"id": int64(2)}}},
		{"soft delete marks, upserts unmark, an unknown key is written deleted", &dsl.TableSink{Delete: "soft"},
			[]change.Event{ins(1, row{"id": int64(1), "a": "x"}), del(2, row{"id": int64(1)}), ins(3, row{"id": int64(2)}), del(4, row{"id": int64(9), "a": "z"})},
			[]row{{"id": int64(1), "a": "x", DeletedColumn: true}, {"id": int64(2), DeletedColumn: false}, {"id": int64(9), "a": "z", DeletedColumn: true}}},
		{"skip ignores deletes", &dsl.TableSink{Delete: "skip"},
			[]change.Event{ins(1, row{"id": int64(1)}), del(2, row{"id": int64(1)})},
			[]row{{"id": int64(1)}}},
		{"the sink's key", &dsl.TableSink{Key: []string{"name"}},
			[]change.Event{ins(1, row{"id": int64(1), "name": "a"}), ins(2, row{"id": int64(2), "name": "a"})},
			[]row{{"id": int64(2), "name": "a"}}},
		{"keys compare by value: 1, 1.0 and Numeric 1 are one row", &dsl.TableSink{},
			[]change.Event{ins(1, row{"id": int64(1), "a": "x"}), ins(2, row{"id": 1.0, "a": "y"}), ins(3, row{"id": change.Numeric("1.00"), "b": "z"})},
			[]row{{"id": change.Numeric("1.00"), "a": "y", "b": "z"}}},
		{"append: every change a row with op, position and commit time", &dsl.TableSink{Mode: "append"},
			[]change.Event{ins(1, row{"id": int64(1)}), func() change.Event {
				e := del(2, row{"id": int64(1)})
				e.Tx.CommitTime = commit
				return e
			}()},
			[]row{{"id": int64(1), OpColumn: "insert", PositionColumn: "1.0", CommitTimeColumn: nil}, {"id": int64(1), OpColumn: "delete", PositionColumn: "2.0", CommitTimeColumn: commit}}},
		{"append with delete skip leaves deletes out", &dsl.TableSink{Mode: "append", Delete: "skip"},
			[]change.Event{ins(1, row{"id": int64(1)}), del(2, row{"id": int64(1)})},
			[]row{{"id": int64(1), OpColumn: "insert", PositionColumn: "1.0", CommitTimeColumn: nil}}},
		{"update: listed columns of existing rows only; no inserts, no deletes", &dsl.TableSink{Mode: "update", Columns: []string{"first"}},
			[]change.Event{ins(1, row{"id": int64(1), "first": "a", "other": "o"})},
			[]row{}},
		{"events-only sinks (nil) append", nil,
			[]change.Event{ins(1, row{"id": int64(1)})},
			[]row{{"id": int64(1), OpColumn: "insert", PositionColumn: "1.0", CommitTimeColumn: nil}}},
		{"marks change nothing", &dsl.TableSink{},
			[]change.Event{{Op: change.Mark, Position: change.Position{Source: "app", Offset: 1}}},
			[]row{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tb := NewTable("t", c.sink)
			for i := range c.events {
				if err := tb.Apply(&c.events[i]); err != nil {
					t.Fatal(err)
				}
			}
			got := eventtest.Maps(tb.Rows())
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("rows = %v, want %v", got, c.want)
			}
			if d := tb.Diff(rowsOf(c.want)); len(d) > 0 {
				t.Errorf("Diff with its own rows: %v", d)
			}
		})
	}
}

// TestTableUpdateMode seeds rows as the source database wrote them
// (ApplySource): update mode then changes only the listed columns of
// those rows, and neither inserts nor deletes.
func TestTableUpdateMode(t *testing.T) {
	tb := NewTable("users", &dsl.TableSink{Mode: "update", Columns: []string{"first"}})
	seed := []change.Event{
		ev(change.Insert, 1, nil, row{"id": int64(1), "first": "old", "other": "o"}),
		ev(change.Insert, 2, nil, row{"id": int64(2), "first": "x"}),
		ev(change.Delete, 3, row{"id": int64(2)}, nil),
	}
	for i := range seed {
		if err := tb.ApplySource(&seed[i]); err != nil {
			t.Fatal(err)
		}
	}
	sink := []change.Event{
		ev(change.Update, 4, row{"id": int64(1)}, row{"id": int64(1), "first": "new", "other": "changed"}),
		ev(change.Insert, 5, nil, row{"id": int64(3), "first": "never written"}),
		ev(change.Delete, 6, row{"id": int64(1)}, nil),
	}
	for i := range sink {
		if err := tb.Apply(&sink[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := []row{{"id": int64(1), "first": "new", "other": "o"}}
	if got := eventtest.Maps(tb.Rows()); !reflect.DeepEqual(got, want) {
		t.Errorf("rows = %v, want %v", got, want)
	}
}

func TestTableErrors(t *testing.T) {
	tb := NewTable("users", &dsl.TableSink{Key: []string{"email"}})
	e := ev(change.Insert, 4, nil, row{"id": int64(1)})
	if err := tb.Apply(&e); err == nil || !strings.Contains(err.Error(), `table users: the insert at position 4.0 has no value for key column "email"`) {
		t.Errorf("missing key column: %v", err)
	}
	tb = NewTable("users", &dsl.TableSink{Truncate: "fail"})
	tr := change.Event{Op: change.Truncate, Table: "users", Position: change.Position{Offset: 5}}
	if err := tb.Apply(&tr); err == nil || !strings.Contains(err.Error(), "truncate") {
		t.Errorf("truncate: %v", err)
	}
}

func TestTableTruncate(t *testing.T) {
	for _, c := range []struct {
		sink dsl.TableSink
		want int
	}{{dsl.TableSink{}, 1}, {dsl.TableSink{Truncate: "skip"}, 3}, {dsl.TableSink{Delete: "soft"}, 3}} {
		tb := NewTable("users", &c.sink)
		for i := int64(1); i <= 2; i++ {
			e := ev(change.Insert, uint64(i), nil, row{"id": i})
			if err := tb.Apply(&e); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range []change.Event{{Op: change.Truncate, Table: "users", Position: change.Position{Offset: 3}}, ev(change.Insert, 4, nil, row{"id": int64(3)})} {
			if err := tb.Apply(&e); err != nil {
				t.Fatal(err)
			}
		}
		rows := tb.Rows()
		if len(rows) != c.want {
			t.Errorf("%+v: %d rows after truncate and insert, want %d: %v", c.sink, len(rows), c.want, rows)
		}
		for _, r := range rows {
			if c.sink.Delete == "soft" && r.Get(DeletedColumn) != (r.Get("id") != int64(3)) {
				t.Errorf("soft: row %v: want __deleted only on the rows before the truncate", r)
			}
		}
	}
}

func TestDiff(t *testing.T) {
	tb := NewTable("t", &dsl.TableSink{})
	for i, r := range []row{{"id": int64(1), "a": "x", "n": nil}, {"id": int64(2), "a": "y"}, {"id": int64(3)}} {
		e := ev(change.Insert, uint64(i+1), nil, r)
		if err := tb.Apply(&e); err != nil {
			t.Fatal(err)
		}
	}
	got := tb.Diff(rowsOf([]row{{"id": 2.0, "a": "y"}, {"id": int64(1), "a": "z"}, {"id": int64(4)}}))
	want := []string{
		`row { id = 1 }: column a: want "z", got "x"`,
		`missing row { id = 4 }: { id = 4 }`,
		`extra row { id = 3 }: { id = 3 }`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEqual(t *testing.T) {
	when := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	same := [][2]any{
		{int64(1), 1.0}, {int64(1), change.Numeric("1")}, {change.Numeric("1.50"), 1.5}, {0.1, change.Numeric("0.1")},
		{"x", []byte("x")}, {when, "2026-01-02T03:04:05.0000006Z"}, {change.JSON(`{"a": [1, "b"]}`), map[string]any{"a": []any{int64(1), "b"}}},
		{[]string{"a"}, []any{"a"}}, {row{"n": int64(2)}, map[string]any{"n": 2.0}}, {nil, nil}, {true, true},
	}
	for _, p := range same {
		if !Equal(p[0], p[1]) || !Equal(p[1], p[0]) {
			t.Errorf("Equal(%#v, %#v) = false", p[0], p[1])
		}
	}
	different := [][2]any{
		{"1", int64(1)}, {int64(1), int64(2)}, {nil, ""}, {nil, int64(0)}, {true, "true"}, {change.Numeric("NaN"), 1.0},
		{[]any{"a"}, []any{"a", "b"}}, {row{"n": 1}, row{"m": 1}}, {when, "2026-01-02"},
	}
	for _, p := range different {
		if Equal(p[0], p[1]) || Equal(p[1], p[0]) {
			t.Errorf("Equal(%#v, %#v) = true", p[0], p[1])
		}
	}
}

// A primary-key update whose After lacks a column (an unchanged TOASTed
// value) keeps the moved row's value, as the SQL sinks do.
func TestTableKeyMoveKeepsAbsentColumns(t *testing.T) {
	tb := NewTable("docs", &dsl.TableSink{})
	for _, e := range []change.Event{
		ev(change.Insert, 1, nil, row{"id": int64(1), "title": "one", "body": "long"}),
		ev(change.Update, 2, row{"id": int64(1)}, row{"id": int64(2), "title": "two"}),
	} {
		if err := tb.Apply(&e); err != nil {
			t.Fatal(err)
		}
	}
	rows := tb.Rows()
	if len(rows) != 1 || rows[0].Get("id") != int64(2) || rows[0].Get("title") != "two" || rows[0].Get("body") != "long" {
		t.Errorf("rows %v, want one row 2|two|long", rows)
	}
}
