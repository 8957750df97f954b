package eventexpr

import (
	"errors"
	"testing"

	"github.com/sluice-cdc/sluice/engine/change"
)

// FuzzCompile compiles arbitrary expressions: no input may panic, an
// error's offset must lie inside the text, a compiled program must run
// against an event without panicking, and it must do what its twin that
// reads every row through maps does (see sameAsMaps).
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		"op in ['insert', 'update'] && after.total >= 50 && after.status in ['shipped', 'delivered']",
		"op != 'delete' && row.email endsWith '@example.com' == false",
		"split(after.email, '@')[1]",
		"len(split(after.name, ' ')) > 1 ? join(split(after.name, ' ')[1:], ' ') : nil",
		"op == 'insrt'", "sha256(after.id)", "hmac(string(after.id), 'k')", "mask_email(after.email)",
		"redact(before)", "tx.commit_time.Year() > 2000", "usr.id", "((", "'\\u00e9' == after.x",
		"after == nil || 'email' in after", "before?.email ?? key.id", "op + table", "$env.after.total > 1",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	ev := &Evaluator{}
	event := change.Event{Op: change.Update, Schema: "public", Table: "t",
		Before: change.RowOf(map[string]any{"id": int64(1), "email": "a@b.c"}), After: change.RowOf(map[string]any{"id": int64(1), "email": "x@y.z", "name": "A B", "total": 60.5, "status": "shipped"}),
		Key: change.RowOf(map[string]any{"id": int64(1)}), Changed: []string{"email"}}
	events := accessEvents()
	f.Fuzz(func(t *testing.T, src string, predicate bool) {
		kind := Value
		if predicate {
			kind = Predicate
		}
		p, err := Compile(src, kind)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && (e.Offset < 0 || e.Offset > len(src)) {
				t.Fatalf("offset %d outside %q", e.Offset, src)
			}
			return
		}
		ev.Bind(&event)
		if predicate {
			_, _ = ev.Bool(p)
		} else {
			_, _ = ev.Value(p)
		}
		if err := sameAsMaps(src, kind, events); err != nil {
			t.Fatal(err)
		}
	})
}
