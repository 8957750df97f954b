package eventexpr

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/sluice-cdc/sluice/engine/change"
)

// accessEvents are events of every shape the rows can take: no Before, no
// After, a present row without columns, unsent columns, numeric values.
func accessEvents() []change.Event {
	cols := change.NewColumns("id", "email", "total", "note", "status")
	unsent := change.MakeRow(cols, []any{int64(2), "u@x.io", change.Numeric("120.50"), change.Unsent, "shipped"})
	return []change.Event{
		{Op: change.Insert, Schema: "public", Table: "users",
			After: change.RowOf(map[string]any{"id": int64(1), "email": "a@b.example", "total": int64(60), "status": "shipped", "note": nil, "vip": true}),
			Key:   change.RowOf(map[string]any{"id": int64(1)}), Position: change.Position{Offset: 3}},
		{Op: change.Update, Schema: "public", Table: "orders",
			Before:  change.RowOf(map[string]any{"id": int64(2), "email": "old@x.io", "total": change.Numeric("10"), "status": "new"}),
			After:   unsent,
			Key:     change.RowOf(map[string]any{"id": int64(2)}),
			Changed: []string{"email", "total", "note"},
			Tx:      change.Tx{ID: 9, CommitTime: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}},
		{Op: change.Delete, Schema: "s", Table: "orders",
			Before: change.RowOf(map[string]any{"id": int64(3), "email": "d@x.io", "total": 49.5}),
			Key:    change.RowOf(map[string]any{"id": int64(3)})},
		{Op: change.Snapshot, Table: "empty", After: change.NewRow(), Key: change.NewRow()},
		{Op: change.Insert, Table: "keyless", After: change.RowOf(map[string]any{"email": nil, "total": change.Numeric("NaN")})},
	}
}

// accessExprs exercise every rewrite of rowAccess and the uses of whole
// rows it leaves to the maps, valid or not.
var accessExprs = []string{
	// column reads
	"after.email", "after['email']", "after?.email", "after?.['email']", "(after).email", "row.total", "key.id",
	"before.email", "after.missing", "after.note", "row['note'] == nil", "after.note == nil", "before?.email ?? 'none'",
	"after.email.x", "after.email()", "after.x?.y", "after?.x?.y", "before?.email.x", "before?.email.x ?? 1",
	"before?.email?.x", "before?.['email'].x", "[before?.email.x, 1]", "before?.email.foo()", "before?.email[0]",
	"before?.email[0:1]", "{'a': 1}?.[before?.email.x]", "before?.email.x == nil", "len(before?.email.x ?? '')",
	"before.A ?? key ?? key?.A00", "1 ?? before?.email", "before?.email", "nil ?? key?.id?.x", "before?.email ?? 2",
	"(before?.email) ?? 3", "[1 ?? before?.email]", "before?.email == nil", "type(nil ?? before?.email)", "after.email[0:1]", "after.email + before.email",
	"split(after.email, '@')[1]", "sha256(after.email)", "mask_email(after.email)", "upper(row.status)",
	"after.total > 5 ? after.email : nil", "{'a': after.email}.a", "[after.email, key.id]", "get(after, 'email')",
	"let x = after.email; x + '!'", "map(changed, after.email)", "after.email startsWith 'a'", "after.email contains '@'",
	// numbers
	"after.total >= 50", "after.total * 2", "row['total'] + 1", "-after.total", "after.total == 50", "after.total ?? 0",
	"__number_of(after.total)", "__number_of(1, 2)", "__number_of(after)", "__number_of(after[changed[0]])",
	"after.total > before.total", "row.total in [60, 10]", "after.total < 100.5 && row.total * 2 == 241",
	"after[changed[1]] > 1", "after.total == nil", "after.total != 'x'",
	// whole rows
	"after == nil", "nil == after", "after != nil", "nil != before", "before == nil", "row == nil", "key != nil",
	"(after) == nil", "!(after == nil)", "after == nil == false", "after == before", "after == {'a': 1}", "after",
	"'email' in after", "'email' not in after", "'note' in after", "not ('id' in key)", "'id' in before ? 1 : 2",
	"1 in after", "nil in after", "op in after", "after in after", "'a' in ['a'] in after", "sort(keys(after))",
	"len(row)", "len(before)", "len(key) == 1", "len(after) > 3", "after | len()", "len(after, 1)", "len(before?.email)",
	"sort(values(key))", "after[changed[0]]", "after ?? 1", "redact(before)", "toJSON(after)", "toJSON(row)",
	"all(changed, after[#] != nil)", "filter(changed, # in after)", "let a = after; a.email", "get(after, changed[0])",
	"key == nil ? 'x' : key.id", "after == nil ? before.email : after.email",
	// $env
	"$env.after.email", "$env['after']['total'] >= 50", "$env.op", "$env.position", "$env.key.id", "'after' in $env",
	"get($env, 'row').email",
	// the string names
	"op", "op + table", "op == 'insert'", "op in ['insert', 'update']", "op()", "op.x", "op[0:1]", "op + 1",
	"schema + '.' + table", "op matches '^ins'", "upper(op)", "len(op)", "table == 'orders' && op != 'delete'",
	"op == 'insrt'", "op in ['insert', 'upsert']", "schema()", "table.name", "table ?? 'x'", "op ?? 1", "-op", "!op",
	"op.Foo()", "op == nil", "nil != table", "{op: 1}.op", "{after: op}", "{'k': op}.k", "after.op", "tx.op",
	"map(changed, {op: #})", "filter(changed, # == op)", "op | upper()", "'a' + op + 'b'", "op ?: 'x'",
	"after?.[changed[0]]", "before?.[changed[0]] ?? op",
	// the Go names of Env's fields
	"After.id", "Before?.email", "After == nil", "'id' in Key", "Op + Table + Schema", "Op == 'insert'", "Position",
	"Row.total >= 50", "Tx.ID", "Changed", "sha256(After.id)", "sha256(Before?.email)", "mask_email(Key.id)",
	"redact(After) + sha256(Op + Table)", "mask_email(Position)", "sha256(rows)", "sha256(boxed)", "hmac(Foo, 'k')",
	// others
	"tx.id", "tx.commit_time.Year()", "position", "position + '/' + table", "changed", "len(changed) + 1", "usr.id",
	"op in ['insert', 'update'] && after.total >= 50 && after.status in ['shipped', 'delivered']",
	"op != 'delete' && row.email endsWith '@example.com' == false", "op == 'delete' || row.plan != 'internal'",
	"op != 'delete' && after.email != nil",
	// the shapes of pred
	"true", "!false && not (op == 'delete')", "op not in ['delete']", "'insert' == op", "op != 'snapshot' || key == nil",
	"after.total > 50.5", "after.total <= -1", "after.total < -0.5", "50 < after.total", "after.total == 60.0",
	"after.total != 60", "row.total >= 10 and row.total < 120.5", "after.total > 1 or after.email == 'x'",
	"after?.total >= 50", "key.id == 1", "key?.id != 2", "after.email > 'b'", "'b' <= after.email", "after.email < 5",
	"after.email == nil", "after.note != nil", "after.vip == true", "after.vip != false", "false == after.vip",
	"after.vip < true", "after.email endsWith '.io'", "after.email not startsWith 'u'", "after.total contains '1'",
	"row.email contains '@' == (after.total > 10)", "'vip' in after && 'email' not in before", "row != nil",
	"nil == before || after.total != after.total", "after.total == 'x' || after.total != 'x'", "after.total > 1 > 2",
	"after.email == 'u@x.io' && after.status == 'shipped'", "after.missing == nil && after.missing != 1",
}

// TestFastPredicates checks which predicates are decided without the VM
// (TestDirectReadsMatchMaps checks that they decide as the VM does).
func TestFastPredicates(t *testing.T) {
	for src, want := range map[string]bool{
		"op in ['insert', 'update'] && after.total >= 0":               true,
		"op != 'delete' && row.email endsWith '@example.com' == false": true,
		"op == 'delete' || row.plan != 'internal'":                     true,
		"after == nil || 'email' in after && key?.id > -1":             true,
		"not (after.total < 5.5) && after.vip == true":                 true,
		"after.total > before.total":                                   false,
		"len(after) > 1":                                               false,
		"op in after":                                                  false,
		"after.email matches '^a'":                                     false,
		"let x = after.total; x > 1":                                   false,
		"After == nil":                                                 false,
	} {
		p, err := Compile(src, Predicate)
		if err != nil {
			continue // a name pred does not know may not compile at all
		}
		if got := p.fast != nil; got != want {
			t.Errorf("%q: fast %v, want %v", src, got, want)
		}
	}
}

// TestDirectReadsMatchMaps compares every program with its twin compiled
// without rowAccess, which reads all rows through maps as expressions
// always did: the same compile errors at the same places, the same
// values and runtime errors on every event.
func TestDirectReadsMatchMaps(t *testing.T) {
	events := accessEvents()
	for _, src := range accessExprs {
		for _, kind := range []Kind{Predicate, Value} {
			if err := sameAsMaps(src, kind, events); err != nil {
				t.Errorf("%q (kind %d): %v", src, kind, err)
			}
		}
	}
}

// sameAsMaps reports how the program of src differs from its map-reading
// twin, nil if it does not.
func sameAsMaps(src string, kind Kind, events []change.Event) error {
	p, err := compile(src, kind, true)
	q, qerr := compile(src, kind, false)
	if msg, want := errText(err), errText(qerr); msg != want {
		return fmt.Errorf("compile error %s, want %s", msg, want)
	}
	if err != nil {
		return nil
	}
	if !reflect.DeepEqual(p.columns, q.columns) || p.usesPosition != q.usesPosition {
		return fmt.Errorf("columns %+v position %v, want %+v %v", p.columns, p.usesPosition, q.columns, q.usesPosition)
	}
	var ev, ref Evaluator
	for i := range events {
		e := events[i]
		ev.Bind(&e)
		ref.Bind(&e)
		if kind == Predicate {
			// Bool first, for a pred that ran before the Env was filled
			v, err := ev.Bool(p)
			want, werr := ref.Bool(q)
			if errText(err) != errText(werr) || v != want {
				return fmt.Errorf("on %s %v: Bool %v, %s; want %v, %s", e.Op, e.After, v, errText(err), want, errText(werr))
			}
		}
		for range 2 { // a second run reuses what the first made
			v, err := ev.Value(p)
			want, werr := ref.Value(q)
			// %#v, not reflect.DeepEqual: a numeric NaN reads as a NaN
			if errText(err) != errText(werr) || fmt.Sprintf("%#v", v) != fmt.Sprintf("%#v", want) {
				return fmt.Errorf("on %s %v: %#v, %s; want %#v, %s", e.Op, e.After, v, errText(err), want, errText(werr))
			}
		}
	}
	return nil
}

func errText(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return fmt.Sprintf("%d: %s", e.Offset, e.Message)
	}
	if err != nil {
		return err.Error()
	}
	return "none"
}

// TestRowMaps checks that a program gets the maps of the rows it uses
// whole, and only those.
func TestRowMaps(t *testing.T) {
	for src, want := range map[string]rowMask{
		"op in ['insert', 'update'] && after.total >= 0":      0,
		"after.email != nil && row['total'] > key.id":         0,
		"after == nil || before != nil":                       0,
		"'email' in after && len(key) == 1":                   0,
		"op in after":                                         1 << rowAfter,
		"len(row) + len(key) > 1 && keys(row) == values(key)": 1<<rowRow | 1<<rowKey,
		"after.email == before[changed[0]]":                   1 << rowBefore,
		"after.email == $env.after.email":                     allRows,
		"$env.op == 'insert'":                                 allRows,
		"all(changed, after[#] != nil) && after.total == 50":  1 << rowAfter,
		"sha256(After.id) != ''":                              1 << rowAfter,
		"before?.email == nil && after?.['x'] == nil":         0,
	} {
		p, err := Compile(src, Predicate)
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		if p.maps != want {
			t.Errorf("%q: maps %04b, want %04b", src, p.maps, want)
		}
	}
}

// TestMapsAreBuiltPerEvent checks the lazily made maps: made for the
// bound event, again after each Bind, and fresh each time, since a value
// of set may be the map itself.
func TestMapsAreBuiltPerEvent(t *testing.T) {
	whole, err := Compile("after", Value)
	if err != nil {
		t.Fatal(err)
	}
	col, err := Compile("after.email", Value)
	if err != nil {
		t.Fatal(err)
	}
	var ev Evaluator
	e1 := change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"email": "a"})}
	ev.Bind(&e1)
	if v, _ := ev.Value(col); v != "a" {
		t.Errorf("after.email = %v", v)
	}
	if ev.env.After != nil {
		t.Errorf("a column read made the map of after: %v", ev.env.After)
	}
	first, _ := ev.Value(whole)
	if !reflect.DeepEqual(first, map[string]any{"email": "a"}) {
		t.Errorf("after = %#v", first)
	}
	e2 := change.Event{Op: change.Delete, Before: change.RowOf(map[string]any{"email": "b"})}
	ev.Bind(&e2)
	if v, _ := ev.Value(whole); !reflect.DeepEqual(v, map[string]any(nil)) {
		t.Errorf("after of a delete = %#v, want a nil map", v)
	}
	ev.Bind(&e1)
	again, _ := ev.Value(whole)
	again.(map[string]any)["email"] = "changed"
	if first.(map[string]any)["email"] != "a" {
		t.Errorf("the map of one Bind was reused by the next")
	}
}

// TestPatchOrder checks that the patches that read the expression as
// written see it before rowAccess rewrites it: op's checker, the column
// references, the numeric operands (whose reads rowAccess fuses).
func TestPatchOrder(t *testing.T) {
	if _, err := Compile("after.total > 1 && op == 'insrt'", Predicate); err == nil || !strings.Contains(err.Error(), `op is never "insrt"`) {
		t.Errorf("op checker: %v", err)
	}
	p, err := Compile("row['total'] >= 50 && op == 'insert' && after.email == 'x'", Predicate)
	if err != nil {
		t.Fatal(err)
	}
	want := []ColumnRef{{Column: "total", Offset: 0, ComparedWith: "number"}, {Column: "email", Offset: 40, ComparedWith: "string"}}
	if !reflect.DeepEqual(p.Columns(), want) {
		t.Errorf("Columns() = %+v, want %+v", p.Columns(), want)
	}
	tree := patched(t, "after.total >= 50 && before.email == nil && after == nil && op == 'insert' && __number_of(key[op])")
	var names []string
	var calls, numbers int
	ast.Walk(&tree.Node, visitFunc(func(n ast.Node) {
		switch n := n.(type) {
		case *ast.IdentifierNode:
			names = append(names, n.Value)
		case *ast.CallNode:
			calls++
			if c, ok := n.Callee.(*ast.ConstantNode); ok && reflect.ValueOf(c.Value).Pointer() == reflect.ValueOf(numberReaders[rowAfter]).Pointer() {
				numbers++
			}
		}
	}))
	// $env for after.total, before.email, after == nil, both op, and key
	// whose map the non-constant key[op] reads.
	if got := strings.Join(names, " "); got != "$env $env $env $env key $env" {
		t.Errorf("identifiers left: %s", got)
	}
	if calls != 6 || numbers != 1 {
		t.Errorf("%d calls, %d fused number reads; want 6 and 1", calls, numbers)
	}
}

// patched returns the tree of src after Compile's patches.
func patched(t *testing.T, src string) *parser.Tree {
	t.Helper()
	tree, err := parser.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []ast.Visitor{&opChecker{}, &nameUse{}, &columnReads{}, numericOperands{}, &rowAccess{}} {
		ast.Walk(&tree.Node, v)
	}
	return tree
}

type visitFunc func(ast.Node)

func (f visitFunc) Visit(n *ast.Node) { f(*n) }

// TestUnsentColumnsReadAsNil checks a column the source did not send: it
// reads as nil and the row lacks it, as when it was missing from a map.
func TestUnsentColumnsReadAsNil(t *testing.T) {
	row := change.MakeRow(change.NewColumns("id", "doc"), []any{int64(1), change.Unsent})
	e := change.Event{Op: change.Update, After: row, Before: row}
	var ev Evaluator
	ev.Bind(&e)
	for src, want := range map[string]any{"after.doc": nil, "after?.doc ?? 'kept'": "kept", "'doc' in after": false, "len(after)": 1, "after.id": int64(1)} {
		p, err := Compile(src, Value)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := ev.Value(p); err != nil || v != want {
			t.Errorf("%s = %#v, %v; want %#v", src, v, err, want)
		}
	}
}
