package eventexpr

import (
	"testing"

	"github.com/sluice-cdc/sluice/engine/change"
)

// benchEvent is an insert of a users row like the transforms benchmarks'.
func benchEvent() change.Event {
	return change.Event{Op: change.Insert, Schema: "public", Table: "users", After: change.RowOf(map[string]any{
		"id": int64(7), "first_name": "Ben", "email": "user7@corp.io", "phone": "+44 20 7946 0958",
		"ssn": "078-05-1120", "note": "vip", "password": "hunter2", "total": int64(7),
	}), Key: change.RowOf(map[string]any{"id": int64(7)})}
}

// benchRun compiles src as kind and runs it per event (Bind, then
// run), failing when a result is not want.
func benchRun(b *testing.B, src string, kind Kind, want any) {
	p, err := Compile(src, kind)
	if err != nil {
		b.Fatal(err)
	}
	e := benchEvent()
	var ev Evaluator
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ev.Bind(&e)
		var v any
		if kind == Predicate {
			v, err = ev.Bool(p)
		} else {
			v, err = ev.Value(p)
		}
		if err != nil || v != want {
			b.Fatalf("= %v, %v", v, err)
		}
	}
}

func benchBool(b *testing.B, src string, want bool) { benchRun(b, src, Predicate, want) }

// BenchmarkBool runs a typical where per event: Bind, then Bool.
func BenchmarkBool(b *testing.B) {
	b.Run("op-and-column", func(b *testing.B) {
		benchBool(b, "op in ['insert', 'update'] && after.total >= 0", true)
	})
	b.Run("string-column", func(b *testing.B) {
		benchBool(b, "op != 'delete' && row.email endsWith '@example.com' == false", true)
	})
	b.Run("in-and-len", func(b *testing.B) {
		benchBool(b, "'email' in after && len(key) == 1", true)
	})
	b.Run("whole-row", func(b *testing.B) { // reads the map of after
		benchBool(b, "get(after, 'email') != nil", true)
	})
}

// BenchmarkValue runs a typical value of set per event.
func BenchmarkValue(b *testing.B) { benchRun(b, "split(after.email, '@')[1]", Value, "corp.io") }
