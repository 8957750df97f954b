package transforms

import (
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// FuzzApply runs the clean transform of LANGUAGE.md over arbitrary
// column values and ops: it must never panic, and every event must come
// out either passed on (a row without password), as a Mark, or as a
// Failure.
func FuzzApply(f *testing.F) {
	f.Add("ben@example.com", "Ben Ford", int64(1), "0123456789", true, uint8(change.Insert))
	f.Add("", "", int64(-1), "", false, uint8(change.Delete))
	f.Add("no-at-sign", " ", int64(0), "é", true, uint8(change.Update))
	f.Add("a@b@c", "x", int64(1<<62), "\x00", false, uint8(change.Mark))
	tr := newTransform(f, &dsl.Transform{
		Where:   where(f, "op != 'delete' && row.email endsWith '@example.com' == false"),
		Set:     []dsl.SetColumn{set(f, "email_domain", "split(after.email, '@')[1]"), set(f, "first", "split(after.name, ' ')[0]")},
		Mask:    []dsl.MaskColumn{{Column: "email", Kind: "hash"}, {Column: "phone", Kind: "partial"}, {Column: "id", Kind: "partial"}},
		Exclude: []string{"password"},
		Rename:  []dsl.RenameColumn{{From: "email_domain", To: "domain"}},
	})
	f.Fuzz(func(t *testing.T, email, name string, id int64, phone string, null bool, op uint8) {
		row := change.RowOf(map[string]any{"id": id, "email": email, "name": name, "phone": phone, "password": "pw"})
		if null {
			row.Set("email", nil)
		}
		e := change.Event{Op: change.Op(op), Schema: "public", Table: "users", Key: change.RowOf(map[string]any{"id": id}), Position: pos(1), Boundary: true}
		if e.Op == change.Delete {
			e.Before = row
		} else {
			e.After = row
		}
		out, failed := tr.Apply([]change.Event{e})
		if len(out)+len(failed) != 1 {
			t.Fatalf("%d out, %d failed: an event vanished or doubled", len(out), len(failed))
		}
		for _, o := range out {
			if _, ok := o.Row().Lookup("password"); ok && e.Op.IsRow() { // non-row events pass untouched
				t.Fatalf("password leaked: %+v", o)
			}
		}
	})
}
