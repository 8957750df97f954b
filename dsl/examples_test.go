package dsl

import (
	"testing"

	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine/change"
)

// TestCanonicalExamples checks what LANGUAGE.md's examples say landed in
// Config, beyond loading cleanly.
func TestCanonicalExamples(t *testing.T) {
	testEnv(t)
	load := func(name string) *Config {
		t.Helper()
		cfg, _, diags := LoadFile("testdata/valid/"+name, nil)
		if len(diags) > 0 {
			t.Fatalf("%s: %s", name, diags.Error())
		}
		return cfg
	}

	u := load("users_to_mysql.hcl")
	eq(t, "users: exclude", u.Sources[0].Postgres.Exclude, []string{"public.users.password"})
	eq(t, "users: slot", u.Sources[0].Postgres.Slot, "sluice_users_to_mysql")
	eq(t, "users: sink", []any{u.Sinks[0].Type, u.Sinks[0].MySQL.AutoCreate, refNames(u.Sinks[0].From)}, []any{"mysql", true, []string{"source.app"}})

	p := load("pasta_soft_delete.hcl")
	m := p.Sinks[0].MySQL
	eq(t, "pasta: sink", []any{m.Table, m.Key, m.Delete, m.Mode}, []any{"pasta_mysql", []string{"name"}, "soft", "upsert"})

	s := load("shipped_orders.hcl")
	tr := s.Transforms[0]
	eq(t, "shipped: select", tr.Select, []string{"order_id", "customer_id", "status", "total"})
	var ev eventexpr.Evaluator
	for _, c := range []struct {
		e    change.Event
		want bool
	}{
		{change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"total": int64(60), "status": "shipped"})}, true},
		{change.Event{Op: change.Update, After: change.RowOf(map[string]any{"total": 49.5, "status": "delivered"})}, false},
		{change.Event{Op: change.Delete, Before: change.RowOf(map[string]any{"total": int64(60), "status": "shipped"})}, false},
	} {
		ev.Bind(&c.e)
		if got, err := ev.Bool(tr.Where); err != nil || got != c.want {
			t.Errorf("shipped: where on %+v = %v, %v; want %v", c.e, got, err, c.want)
		}
	}
	sinks := map[string]*Sink{}
	for _, k := range s.Sinks {
		sinks[k.Name] = k
	}
	eq(t, "shipped: webhook", []any{sinks["notify"].Webhook.URL, sinks["notify"].Webhook.Secret.Reveal(), refNames(sinks["notify"].From)},
		[]any{"https://hooks.example.com/orders", "whsec", []string{"transform.notable"}})
	eq(t, "shipped: file", sinks["audit"].File.Path, "notable-orders.jsonl")

	n := load("split_name.hcl")
	ts := n.Sinks[0].Postgres
	eq(t, "split: sink", []any{ts.Table, ts.Mode, ts.Columns}, []any{"users", "update", []string{"first_name", "last_name"}})
	set := n.Transforms[0].Set
	if len(set) != 2 || set[0].Column != "first_name" || set[1].Column != "last_name" {
		t.Fatalf("split: set = %+v, want first_name then last_name", set)
	}
	e := change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"name": "Ada King Lovelace"})}
	ev.Bind(&e)
	first, err1 := ev.Value(set[0].Expr)
	last, err2 := ev.Value(set[1].Expr)
	if first != "Ada" || last != "King Lovelace" || err1 != nil || err2 != nil {
		t.Errorf("split: %v, %v (%v, %v)", first, last, err1, err2)
	}

	r := load("reference.hcl")
	eq(t, "reference: tests", len(r.Tests), 2)
	soft := r.Tests[1]
	eq(t, "reference: inputs", []any{soft.Inputs[0].Event.Op, soft.Inputs[1].Event.Op, soft.Inputs[1].Event.Table}, []any{change.Insert, change.Delete, "pasta"})
	eq(t, "reference: expect_table", soft.ExpectTables[0].Rows,
		[]change.Row{change.RowOf(map[string]any{"id": int64(1), "name": "linguine", "cooking_minutes": int64(10), "__deleted": true})})
	eq(t, "reference: expect", r.Tests[0].Expects[0].Sink, "replica")
}
