package pipelinetest

import (
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/engine/change"
)

// TestResultSideBySide: a test that passes in memory and fails live
// reports both, and shows the two tables side by side, naming the first
// row that differs: the live target folded 'ABC' into 'abc'.
func TestResultSideBySide(t *testing.T) {
	cfg := load(t, usersToMySQL+`
test "keys differ in case" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect_table "sink.replica" {
    rows = [{ id = 1 }]
  }
}`)
	test := cfg.Tests[0]
	view := func(target string, rows ...change.Row) []View {
		return []View{{Of: `expect_table "sink.replica" (test.hcl:22)`, Table: &TableView{Name: "codes", Target: target, Key: []string{"code"}, Rows: rows}}}
	}
	mem := Outcome{Runner: Memory, Passed: true, Views: view("",
		change.RowOf(map[string]any{"code": "ABC", "name": "upper"}), change.RowOf(map[string]any{"code": "abc", "name": "lower"}))}
	live := Outcome{Runner: Live, Failure: "expect_table \"sink.replica\" (test.hcl:22): table codes (mysql) differs", Notes: []string{"sink.replica ran live (mysql)"},
		Views: view("mysql", change.RowOf(map[string]any{"code": "abc", "name": "upper", "gone": nil}))}

	r := NewResult(test, mem)
	if !r.Passed || r.String() != "PASS keys differ in case" {
		t.Fatalf("memory only: %+v", r)
	}
	r = r.With(live)
	if r.Passed || len(r.Runs) != 2 {
		t.Fatalf("with a failed live run: %+v", r)
	}
	for _, want := range []string{
		"passes in memory, fails live:",
		"live:\n  expect_table \"sink.replica\" (test.hcl:22): table codes (mysql) differs",
		`the first that differs is row { code = "ABC" }`,
		"memory                           | live (mysql)",
		`≠ { code = "ABC", name = "upper" } | (no row)`,
		`≠ { code = "abc", name = "lower" } | { code = "abc", name = "upper" }`,
		"notes of the live run:\n  sink.replica ran live (mysql)",
	} {
		if !strings.Contains(r.Failure, want) {
			t.Errorf("failure lacks %q:\n%s", want, r.Failure)
		}
	}
	if !strings.HasPrefix(r.String(), "FAIL keys differ in case (test.hcl:") {
		t.Errorf("String = %q", r.String())
	}

	same := NewResult(test, mem, Outcome{Runner: Live, Passed: true, Views: view("mysql", change.RowOf(map[string]any{"code": "ABC", "name": "upper"}), change.RowOf(map[string]any{"code": "abc", "name": "lower"}))})
	if !same.Passed || same.String() != "PASS keys differ in case (memory, live)" {
		t.Errorf("both passed: %q", same.String())
	}
	if s := SideBySide(mem, same.Runs[1]); s != "" {
		t.Errorf("runs that agree shown side by side:\n%s", s)
	}
}

// TestSideBySideEvents pairs events one by one, numbers equal whatever
// their Go type, and marks the one that differs.
func TestSideBySideEvents(t *testing.T) {
	ev := func(op change.Op, after change.Row) change.Event {
		return change.Event{Op: op, Schema: "public", Table: "t", After: after, Key: change.RowOf(map[string]any{"id": 1})}
	}
	a := Outcome{Runner: Memory, Views: []View{{Of: `expect "sink.out" (t.hcl:9)`, Events: []change.Event{ev(change.Insert, change.RowOf(map[string]any{"id": int64(1), "n": 80})), ev(change.Update, change.RowOf(map[string]any{"id": int64(1), "n": 81}))}}}}
	b := Outcome{Runner: Live, Views: []View{{Of: `expect "sink.out" (t.hcl:9)`, Events: []change.Event{ev(change.Insert, change.RowOf(map[string]any{"id": change.Numeric("1"), "n": 80.0}))}}}}
	s := SideBySide(a, b)
	if !strings.Contains(s, `expect "sink.out" (t.hcl:9): the first that differs is event 2`) || !strings.Contains(s, "≠ update public.t after = { id = 1, n = 81 } | (no event)") {
		t.Errorf("side by side:\n%s", s)
	}
	if strings.Contains(s, "≠ insert") {
		t.Errorf("equal events marked as differing:\n%s", s)
	}
}
