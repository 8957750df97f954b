package transforms

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/eventtest"
)

const testKey = "k3y"

func program(t testing.TB, src string, kind eventexpr.Kind) *eventexpr.Program {
	t.Helper()
	p, err := eventexpr.Compile(src, kind)
	if err != nil {
		t.Fatalf("compile %q: %v", src, err)
	}
	return p
}

func where(t testing.TB, src string) *eventexpr.Program {
	return program(t, src, eventexpr.Predicate)
}

func set(t testing.TB, col, src string) dsl.SetColumn {
	return dsl.SetColumn{Column: col, Expr: program(t, src, eventexpr.Value)}
}

func newTransform(t testing.TB, tc *dsl.Transform) engine.Transform {
	t.Helper()
	if tc.Name == "" {
		tc.Name = "clean"
	}
	cfg := &dsl.Config{Pipeline: dsl.Pipeline{Name: "p", MaskKey: testKey}}
	tr, err := New(engine.Build{Pipeline: engine.Pipeline{Name: cfg.Pipeline.Name, MaskKey: cfg.Pipeline.MaskKey.Reveal()}}, tc)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

func pos(i uint64) change.Position { return change.Position{Source: "app", Offset: i} }

func insert(i uint64, table string, after change.Row) change.Event {
	return change.Event{Op: change.Insert, Schema: "public", Table: table, Key: change.RowOf(map[string]any{"id": after.Get("id")}),
		After: after, Changed: after.Names(), Position: pos(i), Boundary: true}
}

func update(i uint64, table string, before, after change.Row, changed ...string) change.Event {
	return change.Event{Op: change.Update, Schema: "public", Table: table, Key: change.RowOf(map[string]any{"id": after.Get("id")}),
		Before: before, After: after, Changed: changed, Position: pos(i), Boundary: true}
}

func del(i uint64, table string, before change.Row) change.Event {
	return change.Event{Op: change.Delete, Schema: "public", Table: table, Key: change.RowOf(map[string]any{"id": before.Get("id")}),
		Before: before, Position: pos(i), Boundary: true}
}

func mark(i uint64) change.Event {
	return change.Event{Op: change.Mark, Position: pos(i), Boundary: true}
}

// clone deep-copies events so a test can check Apply left its input alone.
func clone(in []change.Event) []change.Event {
	out := make([]change.Event, len(in))
	for i, e := range in {
		e.Before, e.After, e.Key = e.Before.Clone(), e.After.Clone(), e.Key.Clone()
		e.Changed = append([]string(nil), e.Changed...)
		out[i] = e
	}
	return out
}

func TestSteps(t *testing.T) {
	h := func(s string) string { return eventexpr.HMAC(s, []byte(testKey)) }
	cases := []struct {
		name string
		tc   dsl.Transform
		in   []change.Event
		want []change.Event
	}{
		{
			name: "where keeps matches, a dropped boundary becomes its mark, a dropped mid-transaction row vanishes",
			tc:   dsl.Transform{Where: where(t, "row.total >= 50")},
			in: []change.Event{
				insert(1, "orders", change.RowOf(map[string]any{"id": int64(1), "total": int64(60)})),
				func() change.Event {
					e := insert(2, "orders", change.RowOf(map[string]any{"id": int64(2), "total": int64(10)}))
					e.Boundary = false
					return e
				}(),
				insert(3, "orders", change.RowOf(map[string]any{"id": int64(3), "total": 10.5})),
				del(4, "orders", change.RowOf(map[string]any{"id": int64(1), "total": int64(60)})),
			},
			want: []change.Event{
				insert(1, "orders", change.RowOf(map[string]any{"id": int64(1), "total": int64(60)})),
				{Op: change.Mark, Schema: "public", Table: "orders", Position: pos(3), Boundary: true},
				del(4, "orders", change.RowOf(map[string]any{"id": int64(1), "total": int64(60)})),
			},
		},
		{
			name: "set computes in order, each value sees the event before set, and counts as changed",
			tc:   dsl.Transform{Set: []dsl.SetColumn{set(t, "a", "after.x + 1"), set(t, "b", "after.a"), set(t, "domain", "split(after.email, '@')[1]")}},
			in:   []change.Event{update(1, "users", change.RowOf(map[string]any{"id": int64(1), "x": int64(0), "a": "old"}), change.RowOf(map[string]any{"id": int64(1), "x": int64(1), "a": "old", "email": "ben@example.com"}), "x", "email")},
			want: []change.Event{update(1, "users", change.RowOf(map[string]any{"id": int64(1), "x": int64(0), "a": "old"}),
				change.RowOf(map[string]any{"id": int64(1), "x": int64(1), "a": int64(2), "b": "old", "email": "ben@example.com", "domain": "example.com"}), "x", "email", "a", "b", "domain")},
		},
		{
			name: "set leaves deletes alone: they have no new row",
			tc:   dsl.Transform{Set: []dsl.SetColumn{set(t, "domain", "split(after.email, '@')[1]")}},
			in:   []change.Event{del(1, "users", change.RowOf(map[string]any{"id": int64(1), "email": "ben@example.com"}))},
			want: []change.Event{del(1, "users", change.RowOf(map[string]any{"id": int64(1), "email": "ben@example.com"}))},
		},
		{
			name: "mask every kind in before, after and key; NULL stays NULL; numbers are masked as text",
			tc: dsl.Transform{Mask: []dsl.MaskColumn{
				{Column: "email", Kind: "hash"}, {Column: "phone", Kind: "partial"}, {Column: "ssn", Kind: "redact"},
				{Column: "note", Kind: "null"}, {Column: "id", Kind: "hash"}, {Column: "fax", Kind: "redact"},
			}},
			in: []change.Event{update(1, "users",
				change.RowOf(map[string]any{"id": int64(7), "email": "a@x.io", "phone": "0123456789", "ssn": "123-45", "note": "n", "fax": nil}),
				change.RowOf(map[string]any{"id": int64(7), "email": "b@x.io", "phone": "0199", "ssn": "999-99", "note": "m", "fax": nil}), "email")},
			want: []change.Event{update(1, "users",
				change.RowOf(map[string]any{"id": h("7"), "email": h("a@x.io"), "phone": "0********9", "ssn": "***", "note": nil, "fax": nil}),
				change.RowOf(map[string]any{"id": h("7"), "email": h("b@x.io"), "phone": "0**9", "ssn": "***", "note": nil, "fax": nil}), "email")},
		},
		{
			name: "hash gives equal values equal hashes across before, after and events, and others other hashes",
			tc:   dsl.Transform{Mask: []dsl.MaskColumn{{Column: "email", Kind: "hash"}}},
			in: []change.Event{
				update(1, "users", change.RowOf(map[string]any{"id": int64(1), "email": "a@x.io"}), change.RowOf(map[string]any{"id": int64(1), "email": "a@x.io"})),
				insert(2, "users", change.RowOf(map[string]any{"id": int64(2), "email": "b@x.io"})),
				insert(3, "users", change.RowOf(map[string]any{"id": int64(3), "email": "a@x.io"})),
			},
			want: []change.Event{
				update(1, "users", change.RowOf(map[string]any{"id": int64(1), "email": h("a@x.io")}), change.RowOf(map[string]any{"id": int64(1), "email": h("a@x.io")})),
				func() change.Event {
					e := insert(2, "users", change.RowOf(map[string]any{"id": int64(2), "email": h("b@x.io")}))
					e.Changed = []string{"email", "id"}
					return e
				}(),
				func() change.Event {
					e := insert(3, "users", change.RowOf(map[string]any{"id": int64(3), "email": h("a@x.io")}))
					e.Changed = []string{"email", "id"}
					return e
				}(),
			},
		},
		{
			name: "select keeps only its columns everywhere, changed included",
			tc:   dsl.Transform{Select: []string{"id", "status"}},
			in:   []change.Event{update(1, "orders", change.RowOf(map[string]any{"id": int64(1), "status": "new", "secret": "s"}), change.RowOf(map[string]any{"id": int64(1), "status": "shipped", "secret": "t"}), "status", "secret")},
			want: []change.Event{update(1, "orders", change.RowOf(map[string]any{"id": int64(1), "status": "new"}), change.RowOf(map[string]any{"id": int64(1), "status": "shipped"}), "status")},
		},
		{
			name: "exclude drops its columns everywhere, key and changed included",
			tc:   dsl.Transform{Exclude: []string{"password", "id"}},
			in:   []change.Event{update(1, "users", change.RowOf(map[string]any{"id": int64(1), "name": "a", "password": "x"}), change.RowOf(map[string]any{"id": int64(1), "name": "b", "password": "y"}), "name", "password")},
			want: []change.Event{func() change.Event {
				e := update(1, "users", change.RowOf(map[string]any{"name": "a"}), change.RowOf(map[string]any{"name": "b"}), "name")
				e.Key = change.RowOf(map[string]any{})
				return e
			}()},
		},
		{
			name: "rename applies to before, after, key and changed, all at once (a swap is a swap)",
			tc:   dsl.Transform{Rename: []dsl.RenameColumn{{From: "id", To: "user_id"}, {From: "a", To: "b"}, {From: "b", To: "a"}}},
			in:   []change.Event{update(1, "users", change.RowOf(map[string]any{"id": int64(1), "a": "A0", "b": "B0"}), change.RowOf(map[string]any{"id": int64(1), "a": "A1", "b": "B1"}), "a", "id")},
			want: []change.Event{func() change.Event {
				e := update(1, "users", change.RowOf(map[string]any{"user_id": int64(1), "b": "A0", "a": "B0"}), change.RowOf(map[string]any{"user_id": int64(1), "b": "A1", "a": "B1"}), "b", "user_id")
				e.Key = change.RowOf(map[string]any{"user_id": int64(1)})
				return e
			}()},
		},
		{
			name: "steps run in order: where sees raw values, set sees unmasked email, mask then exclude then rename",
			tc: dsl.Transform{
				Where:   where(t, "after.email endsWith '@example.com' == false && after.x == 1"),
				Set:     []dsl.SetColumn{set(t, "x", "2"), set(t, "email_domain", "split(after.email, '@')[1]")},
				Mask:    []dsl.MaskColumn{{Column: "email", Kind: "hash"}, {Column: "password", Kind: "partial"}},
				Exclude: []string{"password"},
				Rename:  []dsl.RenameColumn{{From: "email_domain", To: "domain"}, {From: "email", To: "mail"}},
			},
			in: []change.Event{
				insert(1, "users", change.RowOf(map[string]any{"id": int64(1), "x": int64(1), "email": "ben@corp.io", "password": "hunter2"})),
				insert(2, "users", change.RowOf(map[string]any{"id": int64(2), "x": int64(1), "email": "amy@example.com", "password": "pw"})),
			},
			want: []change.Event{
				func() change.Event {
					e := insert(1, "users", change.RowOf(map[string]any{"id": int64(1), "x": int64(2), "mail": h("ben@corp.io"), "domain": "corp.io"}))
					e.Changed = []string{"mail", "id", "x", "domain"}
					return e
				}(),
				{Op: change.Mark, Schema: "public", Table: "users", Position: pos(2), Boundary: true},
			},
		},
		{
			name: "tables scopes the transform; other tables pass untouched",
			tc:   dsl.Transform{Tables: []string{"public.users", "audit.*"}, Exclude: []string{"secret"}},
			in: []change.Event{
				insert(1, "users", change.RowOf(map[string]any{"id": int64(1), "secret": "s"})),
				insert(2, "orders", change.RowOf(map[string]any{"id": int64(2), "secret": "s"})),
				func() change.Event {
					e := insert(3, "log", change.RowOf(map[string]any{"id": int64(3), "secret": "s"}))
					e.Schema = "audit"
					return e
				}(),
			},
			want: []change.Event{
				func() change.Event {
					e := insert(1, "users", change.RowOf(map[string]any{"id": int64(1)}))
					e.Changed = []string{"id"}
					return e
				}(),
				insert(2, "orders", change.RowOf(map[string]any{"id": int64(2), "secret": "s"})),
				func() change.Event {
					e := insert(3, "log", change.RowOf(map[string]any{"id": int64(3)}))
					e.Schema, e.Changed = "audit", []string{"id"}
					return e
				}(),
			},
		},
		{
			name: "marks and truncates pass untouched, even where a where would fail on them",
			tc:   dsl.Transform{Where: where(t, "split(after.name, ' ')[0] == 'x'"), Exclude: []string{"name"}},
			in:   []change.Event{mark(1), {Op: change.Truncate, Schema: "public", Table: "users", Position: pos(2), Boundary: true}},
			want: []change.Event{mark(1), {Op: change.Truncate, Schema: "public", Table: "users", Position: pos(2), Boundary: true}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTransform(t, &c.tc)
			orig := clone(c.in)
			got, failed := tr.Apply(c.in)
			if len(failed) > 0 {
				t.Fatalf("failed: %v", failed[0].Err)
			}
			if !reflect.DeepEqual(eventtest.PlainAll(got), eventtest.PlainAll(c.want)) {
				t.Errorf("got\n%+v\nwant\n%+v", got, c.want)
			}
			if !reflect.DeepEqual(eventtest.PlainAll(c.in), eventtest.PlainAll(orig)) {
				t.Errorf("Apply changed its input:\n%+v\nwas\n%+v", c.in, orig)
			}
		})
	}
}

func TestRowsSharedWhenNothingChanges(t *testing.T) {
	tr := newTransform(t, &dsl.Transform{Exclude: []string{"password"}})
	in := []change.Event{insert(1, "users", change.RowOf(map[string]any{"id": int64(1), "name": "x"}))}
	got, _ := tr.Apply(in)
	if got[0].After.Columns() != in[0].After.Columns() {
		t.Error("a row with no excluded column was copied")
	}
}

func TestRuntimeFailure(t *testing.T) {
	tr := newTransform(t, &dsl.Transform{Name: "split", Set: []dsl.SetColumn{set(t, "first", "split(after.name, ' ')[0]")}})
	in := []change.Event{
		insert(1, "users", change.RowOf(map[string]any{"id": int64(1), "name": "Ada Lovelace"})),
		insert(2, "users", change.RowOf(map[string]any{"id": int64(2), "name": nil})),
		insert(3, "users", change.RowOf(map[string]any{"id": int64(3), "name": "Bo"})),
	}
	out, failed := tr.Apply(in)
	if len(out) != 2 || out[0].After.Get("first") != "Ada" || out[1].After.Get("first") != "Bo" {
		t.Errorf("out = %+v, want events 1 and 3 with first set", out)
	}
	if len(failed) != 1 {
		t.Fatalf("failed = %v, want the event at position 2", failed)
	}
	f := failed[0]
	if f.Event.Position != pos(2) {
		t.Errorf("failed event at %v, want %v", f.Event.Position, pos(2))
	}
	var te *Error
	if !errors.As(f.Err, &te) || te.Transform != "split" || te.Table != "public.users" || te.Step != "set first" {
		t.Errorf("error = %#v", f.Err)
	}
	msg := f.Err.Error()
	for _, want := range []string{`transform "split"`, "public.users", "app position 2.0", `split(after.name, ' ')[0]`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
}

func TestWhereFailure(t *testing.T) {
	tr := newTransform(t, &dsl.Transform{Where: where(t, "len(after.tags) > 1")})
	_, failed := tr.Apply([]change.Event{insert(1, "t", change.RowOf(map[string]any{"id": int64(1), "tags": int64(3)}))})
	if len(failed) != 1 || !strings.Contains(failed[0].Err.Error(), "where") {
		t.Fatalf("failed = %v, want one where failure", failed)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		key  dsl.Secret
		tc   dsl.Transform
		want string
	}{
		{"hash without key", "", dsl.Transform{Mask: []dsl.MaskColumn{{Column: "email", Kind: "hash"}}}, "set mask_key in the pipeline block or the SLUICE_MASK_KEY environment variable"},
		{"select and exclude", "k", dsl.Transform{Select: []string{"a"}, Exclude: []string{"b"}}, "select and exclude are both set"},
		{"unknown mask kind", "k", dsl.Transform{Mask: []dsl.MaskColumn{{Column: "email", Kind: "scramble"}}}, `unknown kind "scramble"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := &dsl.Config{Pipeline: dsl.Pipeline{MaskKey: c.key}}
			_, err := New(engine.Build{Pipeline: engine.Pipeline{Name: cfg.Pipeline.Name, MaskKey: cfg.Pipeline.MaskKey.Reveal()}}, &c.tc)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("New = %v, want an error containing %q", err, c.want)
			}
		})
	}
	// Without any hash mask no key is needed.
	if _, err := New(engine.Build{}, &dsl.Transform{Mask: []dsl.MaskColumn{{Column: "a", Kind: "redact"}}}); err != nil {
		t.Errorf("redact without key: %v", err)
	}
}

func TestNormalize(t *testing.T) {
	cases := []struct {
		src  string
		want any
	}{
		{"1 + 2", int64(3)},
		{"1.5 * 2", 3.0},
		{"split('a b', ' ')", []any{"a", "b"}},
		{"{'n': 1}", map[string]any{"n": int64(1)}},
		{"nil", nil},
	}
	for _, c := range cases {
		tr := newTransform(t, &dsl.Transform{Set: []dsl.SetColumn{set(t, "v", c.src)}})
		out, failed := tr.Apply([]change.Event{insert(1, "t", change.RowOf(map[string]any{"id": int64(1)}))})
		if len(failed) > 0 {
			t.Fatalf("%s: %v", c.src, failed[0].Err)
		}
		if got := out[0].After.Get("v"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.src, got, c.want)
		}
	}
}

// TestConcurrentApply runs one transform from several goroutines, as the
// engine does when two sources feed it; run with -race.
func TestConcurrentApply(t *testing.T) {
	tr := newTransform(t, &dsl.Transform{
		Where: where(t, "after.id % 2 == 0"),
		Mask:  []dsl.MaskColumn{{Column: "email", Kind: "hash"}},
	})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				email := strings.Repeat("x", g+1) + "@example.com"
				in := []change.Event{insert(uint64(i), "u", change.RowOf(map[string]any{"id": int64(i), "email": email}))}
				out, _ := tr.Apply(in)
				if i%2 == 0 && out[0].After.Get("email") != eventexpr.HMAC(email, []byte(testKey)) {
					t.Errorf("goroutine %d: hash of %q = %v", g, email, out[0].After.Get("email"))
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestRelation(t *testing.T) {
	rel := &change.Relation{Schema: "public", Table: "users", Version: 3, Columns: []change.Column{
		{Name: "id", Type: "integer", Key: true, NotNull: true}, {Name: "email", Type: "citext", NotNull: true},
		{Name: "password", Type: "text"}, {Name: "name", Type: "varchar(20)"}, {Name: "n", Type: "text"},
	}}
	tr := newTransform(t, &dsl.Transform{
		Set:     []dsl.SetColumn{set(t, "n", "len(after.name)"), set(t, "full", "after.name + '!'")},
		Mask:    []dsl.MaskColumn{{Column: "email", Kind: "hash"}},
		Exclude: []string{"password"},
		Rename:  []dsl.RenameColumn{{From: "name", To: "display"}},
	})
	e := insert(1, "users", change.RowOf(map[string]any{"id": int64(1), "email": "a@b.c", "password": "x", "name": "Ann"}))
	e.Relation = rel
	e2 := e
	e2.Position = pos(2)
	out, failed := tr.Apply([]change.Event{e, e2})
	if len(failed) > 0 {
		t.Fatal(failed[0].Err)
	}
	want := &change.Relation{Schema: "public", Table: "users", Version: 3, Columns: []change.Column{
		{Name: "id", Type: "integer", Key: true, NotNull: true}, {Name: "email", Type: "text"},
		{Name: "display", Type: "varchar(20)"}, {Name: "n", Type: "bigint"}, {Name: "full", Type: "text"},
	}}
	if !reflect.DeepEqual(out[0].Relation, want) {
		t.Errorf("relation = %+v, want %+v", out[0].Relation, want)
	}
	if out[1].Relation != out[0].Relation {
		t.Error("the derived relation is not shared by events of one source relation")
	}
	if rel.Columns[2].Name != "password" || len(rel.Columns) != 5 {
		t.Errorf("the source relation was changed: %+v", rel)
	}
}

// TestChangedShared checks that events sharing a rewritten Changed list
// cannot disturb each other through it.
func TestChangedShared(t *testing.T) {
	tr := newTransform(t, &dsl.Transform{Set: []dsl.SetColumn{set(t, "n", "1")}, Exclude: []string{"password"}})
	in := []change.Event{
		insert(1, "users", change.RowOf(map[string]any{"id": int64(1), "password": "a"})),
		insert(2, "users", change.RowOf(map[string]any{"id": int64(2), "password": "b"})),
	}
	out, _ := tr.Apply(in)
	a := append(out[0].Changed, "x")
	b := append(out[1].Changed, "y")
	if a[len(a)-1] != "x" || b[len(b)-1] != "y" || !reflect.DeepEqual(out[0].Changed, []string{"id", "n"}) {
		t.Errorf("changed lists interfere: %v %v %v", a, b, out[0].Changed)
	}
}

// TestUnsentColumns: rows of one shape share their Columns, and a column
// the source did not send (an unchanged TOASTed value) stays unsent
// through every step, except where a rename lands on a column's name:
// then the row keeps that column's own value, as if the renamed one were
// absent.
func TestUnsentColumns(t *testing.T) {
	tr := newTransform(t, &dsl.Transform{
		Mask:   []dsl.MaskColumn{{Column: "doc", Kind: "redact"}},
		Rename: []dsl.RenameColumn{{From: "draft", To: "title"}},
	})
	cols := change.NewColumns("id", "doc", "draft", "title")
	sent := change.MakeRow(cols, []any{int64(1), "big", "new title", "old title"})
	unsent := change.MakeRow(cols, []any{int64(2), change.Unsent, change.Unsent, "kept"})
	out, failed := tr.Apply([]change.Event{update(1, "users", change.Row{}, sent), update(2, "users", change.Row{}, unsent)})
	if len(failed) > 0 {
		t.Fatal(failed[0].Err)
	}
	want := []map[string]any{
		{"id": int64(1), "doc": "***", "title": "new title"},
		{"id": int64(2), "title": "kept"},
	}
	for i, w := range want {
		if got := out[i].After.Map(); !reflect.DeepEqual(got, w) {
			t.Errorf("row %d: got %v, want %v", i, got, w)
		}
	}
	if out[0].After.Columns() != out[1].After.Columns() {
		t.Error("two rows of one shape came out with Columns of their own: the shape was planned twice")
	}
}

// TestEncodeHex checks the hash mask's hex against encoding/hex, for
// every byte.
func TestEncodeHex(t *testing.T) {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	got := make([]byte, 2*len(b))
	if encodeHex(got, b); string(got) != hex.EncodeToString(b) {
		t.Errorf("encodeHex = %s, want %s", got, hex.EncodeToString(b))
	}
}
