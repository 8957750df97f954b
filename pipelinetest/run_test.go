package pipelinetest

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/eventtest"
	"github.com/sluice-cdc/sluice/transforms"
)

var registry = components.Kinds{Transform: transforms.New}

// load loads a pipeline file from src, failing the test on diagnostics.
func load(t *testing.T, src string) *dsl.Config {
	t.Helper()
	cfg, _, diags := dsl.Load("test.hcl", []byte(src), nil)
	if diags.HasErrors() {
		t.Fatalf("load: %v", diags)
	}
	return cfg
}

// runOne runs the only test of src.
func runOne(t *testing.T, src string) Result {
	t.Helper()
	results := Run(load(t, src), registry)
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	return results[0]
}

const usersToMySQL = `
pipeline "users_to_mysql" {}

source "postgres" "app" {
  dsn     = "postgres://u:secret@localhost/app"
  tables  = ["public.users"]
  exclude = ["public.users.password"]
}

sink "mysql" "replica" {
  from        = source.app
  dsn         = "root@tcp(localhost)/t"
  auto_create = true
}
`

func TestRunPasses(t *testing.T) {
	cases := []struct{ name, src string }{
		{"LANGUAGE.md: the source's exclude keeps password out", usersToMySQL + `
test "password never leaves" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, first_name = "Ben", email = "ben@example.com", password = "hunter2" }
  }
  expect "sink.replica" {
    op    = "insert"
    after = { id = 1, first_name = "Ben", email = "ben@example.com" }
    key   = { id = 1.0 }
  }
}`},
		{"LANGUAGE.md: soft delete keeps the row, keyed by name", `
pipeline "pasta" {}
source "postgres" "pg" {
  dsn    = "postgres://localhost/app"
  tables = ["public.pasta"]
}
sink "mysql" "pasta" {
  from   = source.pg
  dsn    = "root@tcp(localhost)/t"
  table  = "pasta_mysql"
  key    = ["name"]
  delete = "soft"
}
test "soft delete keeps the row" {
  input "public.pasta" {
    op    = "insert"
    after = { id = 1, name = "linguine", cooking_minutes = 10 }
  }
  input "public.pasta" {
    op    = "insert"
    after = { id = 2, name = "penne", cooking_minutes = 11 }
  }
  input "public.pasta" {
    op     = "delete"
    before = { id = 1, name = "linguine" }
  }
  expect_table "sink.pasta" {
    rows = [
      { id = 2, name = "penne", cooking_minutes = 11, __deleted = false },
      { id = 1, name = "linguine", cooking_minutes = 10, __deleted = true },
    ]
  }
}`},
		{"a transform filters, projects and masks on the way to two sinks", `
pipeline "shipped_orders" { mask_key = "k" }
source "postgres" "shop" {
  dsn    = "postgres://localhost/shop"
  tables = ["public.orders"]
}
transform "notable" {
  from   = source.shop
  where  = "op in ['insert', 'update'] && after.total >= 50 && after.status in ['shipped', 'delivered']"
  select = ["order_id", "status", "total", "email"]
  mask   = { email = "redact" }
}
sink "webhook" "notify" {
  from = transform.notable
  url  = "http://localhost/hook"
}
sink "file" "audit" {
  from = transform.notable
  path = "notable.jsonl"
}
test "only notable orders, projected" {
  input "public.orders" {
    op    = "insert"
    after = { order_id = 1, customer_id = 7, status = "new", total = 99.5, email = "a@b.c" }
  }
  input "public.orders" {
    op     = "update"
    before = { order_id = 1, customer_id = 7, status = "new", total = 99.5, email = "a@b.c" }
    after  = { order_id = 1, customer_id = 7, status = "shipped", total = 99.5, email = "a@b.c" }
  }
  input "public.orders" {
    op    = "delete"
    before = { order_id = 1, customer_id = 7, status = "shipped", total = 99.5, email = "a@b.c" }
  }
  expect "sink.notify" {
    op     = "update"
    before = { order_id = 1, status = "new", total = 99.5, email = "***" }
    after  = { order_id = 1, status = "shipped", total = 99.5, email = "***" }
  }
  expect "sink.audit" {
    op    = "update"
    after = { order_id = 1, status = "shipped", total = 99.5, email = "***" }
  }
}`},
		{"LANGUAGE.md split_name: update mode writes back into the table the source reads", `
pipeline "split_name" {}
source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}
transform "split" {
  from  = source.app
  where = "op != 'delete'"
  set = {
    first_name = "split(after.name, ' ')[0]"
    last_name  = "len(split(after.name, ' ')) > 1 ? join(split(after.name, ' ')[1:], ' ') : nil"
  }
}
sink "postgres" "same_table" {
  from    = transform.split
  dsn     = "postgres://localhost/app"  # the source's: the same table
  table   = "users"
  mode    = "update"
  columns = ["first_name", "last_name"]
}
test "names split" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, name = "Ada King Lovelace" }
  }
  input "public.users" {
    op    = "delete"
    before = { id = 1, name = "Ada King Lovelace" }
  }
  input "public.users" {
    op    = "insert"
    after = { id = 2, name = "Plato" }
  }
  expect "sink.same_table" {
    op    = "insert"
    after = { id = 1, name = "Ada King Lovelace", first_name = "Ada", last_name = "King Lovelace" }
  }
  expect "sink.same_table" {
    op    = "insert"
    after = { id = 2, name = "Plato", first_name = "Plato", last_name = null }
  }
  expect_table "sink.same_table" {
    rows = [{ id = 2, name = "Plato", first_name = "Plato" }]
  }
}`},
		{"inputs come from the source that reads their table; keys from the sink's key", `
pipeline "two" {}
source "postgres" "users" {
  dsn    = "postgres://localhost/a"
  tables = ["public.users"]
}
source "postgres" "shop" {
  dsn    = "postgres://localhost/b"
  tables = ["shop.*"]
}
sink "file" "people" {
  from = source.users
  path = "-"
}
sink "kafka" "orders" {
  from    = source.shop
  brokers = ["localhost:9092"]
  key     = ["order_id"]
}
test "each to its own" {
  input "shop.orders" {
    op    = "insert"
    after = { order_id = 7, id = 1 }
  }
  input "public.users" {
    op    = "update"
    before = { id = 1, name = "a", age = 3 }
    after  = { id = 1, name = "b", age = 3 }
  }
  expect "sink.orders" {
    op  = "insert"
    key = { order_id = 7 }
  }
  expect "sink.people" {
    key = { id = 1 }
  }
}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runOne(t, c.src)
			if !r.Passed {
				t.Fatalf("failed:\n%s", r.Failure)
			}
		})
	}
}

// TestRunFailures checks that wrong expectations fail, pointing at the
// expectation's line with a readable diff.
func TestRunFailures(t *testing.T) {
	cases := []struct {
		name  string
		src   string
		wants []string
	}{
		{"a column that must not leak", usersToMySQL + `
test "password kept" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, email = "ben@example.com", password = "hunter2" }
  }
  expect "sink.replica" {
    op    = "update"
    after = { id = 1, email = "amy@example.com", password = "hunter2" }
  }
}`, []string{
			`expect "sink.replica" (test.hcl:21): event 1 differs:`,
			`op: want update, got insert`,
			`after.email: want "amy@example.com", got "ben@example.com"`,
			`after.password: want "hunter2", got no such column`,
			`got:  insert public.users key = { id = 1 } after = { email = "ben@example.com", id = 1 }`,
		}},
		{"more expected than arrived, and a sink that should stay empty", usersToMySQL + `
sink "file" "log" {
  from = source.app
  path = "-"
}
test "two events" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.replica" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.replica" {
    key = { id = 1 }
  }
}`, []string{
			`expect "sink.replica" (test.hcl:29): event 2 never reached the sink (it received 1); wanted:
  any op key = { id = 1 }`,
			`sink.log: the test has no expect for it, so nothing may reach it, but 1 event(s) did:`,
			`insert public.users key = { id = 1 } after = { id = 1 }`,
		}},
		{"an unexpected extra event", usersToMySQL + `
test "one event" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  input "public.users" {
    op     = "delete"
    before = { id = 1 }
  }
  expect "sink.replica" {
    op    = "insert"
  }
}`, []string{`sink.replica: unexpected event 2 (the test expects 1):`, `delete public.users key = { id = 1 } before = { id = 1 }`}},
		{"a table that differs", usersToMySQL + `
test "table" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, name = "a" }
  }
  input "public.users" {
    op    = "insert"
    after = { id = 2, name = "b" }
  }
  input "public.users" {
    op     = "update"
    before = { id = 2, name = "b" }
    after  = { id = 3, name = "c" }
  }
  expect_table "sink.replica" {
    rows = [{ id = 1, name = "x" }, { id = 2, name = "b" }]
  }
}`, []string{
			`expect_table "sink.replica" (test.hcl:30): table users differs:`,
			`row { id = 1 }: column name: want "x", got "a"`,
			`missing row { id = 2 }: { id = 2, name = "b" }`,
			`extra row { id = 3 }: { id = 3, name = "c" }`,
			`got rows:  [{ id = 1, name = "a" }, { id = 3, name = "c" }]`,
		}},
		{"a transform that fails at run time", `
pipeline "p" {}
source "postgres" "app" {
  dsn    = "postgres://localhost/app"
  tables = ["public.users"]
}
transform "split" {
  from = source.app
  set  = { first = "split(after.name, ' ')[0]" }
}
sink "file" "out" {
  from = transform.split
  path = "-"
}
test "null name" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, name = null }
  }
  expect "sink.out" {
    op = "insert"
  }
}`, []string{`input 1 (test.hcl:16): transform "split": public.users at app position 1.0: set first "split(after.name, ' ')[0]"`, `event 1 never reached the sink`}},
		{"an input no source reads", usersToMySQL + `
test "wrong table" {
  input "public.user" {
    op    = "insert"
    after = { id = 1 }
  }
}`, []string{`input 1 (test.hcl:17): no source reads table public.user: the sources read app (public.users)`}},
		{"a test with no expectation at all asserts that nothing reaches any sink (here the insert reaches sink.orders, not the filtered sink.deletes)", usersToMySQL + `
test "nothing" {
  input "public.orders" {
    op    = "insert"
    after = { id = 1 }
  }
}
source "postgres" "shop" {
  dsn    = "postgres://localhost/shop"
  tables = ["public.orders"]
}
sink "mysql" "orders" {
  from = source.shop
  dsn  = "root@tcp(localhost)/t"
}
transform "none" {
  from  = source.shop
  where = "op == 'delete'"
}
sink "file" "deletes" {
  from = transform.none
  path = "-"
}`, []string{`sink.orders: the test has no expect for it, so nothing may reach it, but 1 event(s) did:`, `insert public.orders key = { id = 1 } after = { id = 1 }`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runOne(t, c.src)
			if r.Passed {
				t.Fatal("passed, want a failure")
			}
			for _, w := range c.wants {
				if !strings.Contains(r.Failure, w) {
					t.Errorf("failure does not contain %q:\n%s", w, r.Failure)
				}
			}
		})
	}
}

func TestWrite(t *testing.T) {
	cfg := load(t, usersToMySQL+`
test "good" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.replica" {
    op = "insert"
  }
}
test "bad" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.replica" {
    op = "delete"
  }
}`)
	var out bytes.Buffer
	if err := Write(&out, Run(cfg, registry)); err != nil {
		t.Fatal(err)
	}
	want := `PASS good
FAIL bad (test.hcl:25)
    expect "sink.replica" (test.hcl:30): event 1 differs:
      op: want delete, got insert
      want: delete
      got:  insert public.users key = { id = 1 } after = { id = 1 }
1 passed, 1 failed
`
	if out.String() != want {
		t.Errorf("Write printed\n%s\nwant\n%s", out.String(), want)
	}
}

// TestInputEvent checks how an input becomes the event a source would
// deliver: position, boundary, the source's excluded columns, Key and
// Changed.
func TestInputEvent(t *testing.T) {
	cfg := load(t, usersToMySQL)
	g, err := components.Compile(cfg, registry, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := change.Event{Op: change.Update, Schema: "public", Table: "users",
		Before: change.RowOf(map[string]any{"id": int64(1), "name": "a", "n": int64(1), "password": "x"}),
		After:  change.RowOf(map[string]any{"id": int64(1), "name": "b", "n": 1.0, "password": "y", "new": nil})}
	src, err := SourceFor(cfg, &in)
	if err != nil {
		t.Fatal(err)
	}
	e := InputEvent(cfg, g, src, &in, 3)
	want := change.Event{Op: change.Update, Schema: "public", Table: "users",
		Key:      change.RowOf(map[string]any{"id": int64(1)}),
		Before:   change.RowOf(map[string]any{"id": int64(1), "name": "a", "n": int64(1)}),
		After:    change.RowOf(map[string]any{"id": int64(1), "name": "b", "n": 1.0, "new": nil}),
		Changed:  []string{"name", "new"},
		Tx:       change.Tx{ID: 3},
		Position: change.Position{Source: "app", Offset: 3}, Boundary: true}
	if !reflect.DeepEqual(eventtest.Plain(e), eventtest.Plain(want)) {
		t.Errorf("event\n%+v\nwant\n%+v", e, want)
	}
	if _, ok := in.After.Lookup("password"); !ok {
		t.Error("inputEvent changed the test's input")
	}
}

// TestMaskKeyIsFixed: a test hashes with MaskKey whatever the pipeline's
// mask_key says (here a literal, as env("SLUICE_MASK_KEY") would give in
// CI), so its expected hashes hold on every machine.
func TestMaskKeyIsFixed(t *testing.T) {
	const src = `
pipeline "p" {
  mask_key = "the-production-key"
}
source "file" "in" {
  path = "in.jsonl"
}
transform "m" {
  from = source.in
  mask = { email = "hash" }
}
sink "file" "out" {
  from = transform.m
  path = "-"
}
test "hashed with the test key" {
  input "public.users" {
    op    = "insert"
    after = { id = 1, email = "ben@example.com" }
  }
  expect "sink.out" {
    op    = "insert"
    after = { id = 1, email = "1f5acc737f33e540cff2c429d1d29d034b1da9d03d602f2acca0d55db032821a" }
  }
}`
	cfg := load(t, src)
	if r := Run(cfg, registry); len(r) != 1 || !r[0].Passed {
		t.Fatalf("results %+v", r)
	}
	if cfg.Pipeline.MaskKey.Reveal() != "the-production-key" {
		t.Errorf("Run changed the caller's config: mask key %q", cfg.Pipeline.MaskKey.Reveal())
	}
}
