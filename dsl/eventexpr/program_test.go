package eventexpr

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/engine/change"
)

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name, src string
		offset    int
		msg       string
	}{
		{"unknown name", "op == 'insert' && usr.id > 1", 18, "unknown name usr"},
		{"unknown op value", "op == 'insert' || op == 'upsert'", 24, `op is never "upsert"`},
		{"unknown op in list", "op in ['insert', 'created']", 17, `op is never "created"`},
		{"not a bool", "len(changed) + 1", 0, "expected bool"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(c.src, Predicate)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) = %v, want *Error", c.src, err)
			}
			if e.Offset != c.offset {
				t.Errorf("offset = %d, want %d (%s)", e.Offset, c.offset, e.Message)
			}
			if !strings.Contains(e.Message, c.msg) {
				t.Errorf("message = %q, want it to contain %q", e.Message, c.msg)
			}
		})
	}
}

func TestEvaluate(t *testing.T) {
	where, err := Compile("op in ['insert', 'update'] && after.total >= 50 && after.status in ['shipped', 'delivered']", Predicate)
	if err != nil {
		t.Fatal(err)
	}
	domain, err := Compile("split(after.email, '@')[1]", Value)
	if err != nil {
		t.Fatal(err)
	}
	var ev Evaluator
	e := change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"total": int64(60), "status": "shipped", "email": "a@b.example"})}
	ev.Bind(&e)
	if ok, err := ev.Bool(where); err != nil || !ok {
		t.Errorf("where = %v, %v; want true", ok, err)
	}
	if v, err := ev.Value(domain); err != nil || v != "b.example" {
		t.Errorf("domain = %v, %v", v, err)
	}
	e.After.Set("total", 10.5)
	ev.Bind(&e)
	if ok, err := ev.Bool(where); err != nil || ok {
		t.Errorf("where = %v, %v; want false", ok, err)
	}
	del := change.Event{Op: change.Delete, Before: change.RowOf(map[string]any{"id": int64(1)})}
	ev.Bind(&del)
	if _, err := ev.Value(domain); err == nil {
		t.Errorf("split of nil: want a runtime error")
	}
}

func TestMasks(t *testing.T) {
	for in, want := range map[string]string{"benjamin@example.com": "b******n@example.com", "0123456789": "0********9", "ab": "**"} {
		if got := Partial(in); got != want {
			t.Errorf("Partial(%q) = %q, want %q", in, got, want)
		}
	}
	if HMAC("x", []byte("k")) == HMAC("x", []byte("k2")) {
		t.Error("HMAC ignores its key")
	}
}

func TestPositionIsFilledForProgramsThatReadIt(t *testing.T) {
	p, err := Compile("position + '/' + table", Value)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Compile("table", Value)
	if err != nil {
		t.Fatal(err)
	}
	var ev Evaluator
	e := change.Event{Table: "users", Position: change.Position{Offset: 7, Index: 2}}
	ev.Bind(&e)
	if v, _ := ev.Value(q); v != "users" {
		t.Errorf("table = %v", v)
	}
	if v, _ := ev.Value(p); v != "7.2/users" {
		t.Errorf("position expression = %v, want 7.2/users", v)
	}
	e2 := change.Event{Table: "orders", Position: change.Position{Offset: 9}}
	ev.Bind(&e2)
	if v, _ := ev.Value(p); v != "9.0/orders" {
		t.Errorf("after a new Bind: %v, want 9.0/orders", v)
	}
}

func TestNumericColumnsCompareAsNumbers(t *testing.T) {
	where, err := Compile("after.total >= 50 && row.total < 100.5 && after.total * 2 == 241", Predicate)
	if err != nil {
		t.Fatal(err)
	}
	copyTotal, err := Compile("after.total", Value)
	if err != nil {
		t.Fatal(err)
	}
	var ev Evaluator
	e := change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"total": change.Numeric("120.50")})}
	ev.Bind(&e)
	if ok, err := ev.Bool(where); err == nil && ok {
		t.Errorf("120.50 < 100.5 held")
	}
	e.After.Set("total", change.Numeric("60.0"))
	ev.Bind(&e)
	if ok, err := ev.Bool(where); err != nil || ok {
		t.Errorf("where on 60.0 = %v, %v; want false (60*2 != 241)", ok, err)
	}
	e.After.Set("total", change.Numeric("60.5"))
	ev.Bind(&e)
	if ok, err := ev.Bool(where); err != nil || ok {
		t.Errorf("where on 60.5 = %v, %v; want false", ok, err)
	}
	e.After.Set("total", change.Numeric("100.25"))
	ev.Bind(&e)
	if ok, err := ev.Bool(where); err != nil || ok {
		t.Errorf("where on 100.25 = %v, %v", ok, err)
	}
	e.After.Set("total", change.Numeric("99"))
	ev.Bind(&e)
	if _, err := ev.Bool(where); err != nil {
		t.Errorf("where on 99: %v", err)
	}
	if v, err := ev.Value(copyTotal); err != nil || v != change.Numeric("99") {
		t.Errorf("a plain column read = %#v, %v; want the exact change.Numeric", v, err)
	}
	half, _ := Compile("after.total >= 50", Predicate)
	e.After.Set("total", change.Numeric("120.50"))
	ev.Bind(&e)
	if ok, err := ev.Bool(half); err != nil || !ok {
		t.Errorf("120.50 >= 50 = %v, %v", ok, err)
	}
}

func TestColumns(t *testing.T) {
	p, err := Compile("after.total >= 50 && row['status'] == 'shipped' && before.note != nil && op == 'update'", Predicate)
	if err != nil {
		t.Fatal(err)
	}
	want := []ColumnRef{
		{Column: "total", Offset: 0, ComparedWith: "number"},
		{Column: "status", Offset: 21, ComparedWith: "string"},
		{Column: "note", Offset: 51},
	}
	got := p.Columns()
	if len(got) != len(want) {
		t.Fatalf("Columns() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("column %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestEqualityWithTextNeedsNoConversion(t *testing.T) {
	p, err := Compile("after.status == 'shipped' && after.total == 50", Predicate)
	if err != nil {
		t.Fatal(err)
	}
	var ev Evaluator
	e := change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"status": "shipped", "total": change.Numeric("50.00")})}
	ev.Bind(&e)
	if ok, err := ev.Bool(p); err != nil || !ok {
		t.Errorf("= %v, %v; want true (a numeric 50.00 equals 50)", ok, err)
	}
}
