package sqltabletest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

var docs = relation("docs", "id integer key", "title character varying(50)", "body text")

var docCols = []string{"id", "title", "body"}

func doc(id int64, title, body string) change.Row {
	return change.RowOf(map[string]any{"id": id, "title": title, "body": body})
}

// createDocs pre-creates docs the way a user migrating into an existing
// schema would: every column NOT NULL.
func createDocs(e *env, extra string) {
	e.exec("CREATE TABLE " + e.tg.Quote("docs") + " (id INT PRIMARY KEY, title VARCHAR(50) NOT NULL, body TEXT NOT NULL" + extra + ")")
}

// targets runs f on a pre-created target with NOT NULL columns and on
// an auto-created one.
func targets(t *testing.T, tg Target, cfg dsl.TableSink, f func(t *testing.T, e *env)) {
	t.Run("pre-created NOT NULL", func(t *testing.T) {
		e := newEnv(t, tg, cfg)
		extra := ""
		if cfg.Delete == "soft" {
			extra = ", " + tg.Quote("__deleted") + " BOOLEAN NOT NULL DEFAULT false"
		}
		createDocs(e, extra)
		f(t, e)
	})
	t.Run("auto-created", func(t *testing.T) {
		cfg := cfg
		cfg.AutoCreate = true
		f(t, newEnv(t, tg, cfg))
	})
}

// fidelityCases check what a target row holds after each kind of change
// on a pre-created target with NOT NULL columns and on an auto-created
// one: primary-key moves and updates that leave columns out, soft
// deletes that carry only the key, truncates and schema changes.
var fidelityCases = []testCase{
	{"primary-key move keeps the columns the event lacks", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{}, func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(docs, doc(1, "one", "long body 1")), g.ins(docs, doc(2, "two", "long body 2")))
			e.flush()
			// body is unchanged and TOASTed: absent from After. The move
			// shares a write with ordinary changes on both sides.
			e.mustWrite(g.ins(docs, doc(3, "three", "long body 3")),
				g.upd(docs, change.RowOf(map[string]any{"id": int64(1)}), change.RowOf(map[string]any{"id": int64(10), "title": "ten"})),
				g.upd(docs, change.Row{}, change.RowOf(map[string]any{"id": int64(2), "title": "deux"})),
				g.upd(docs, change.RowOf(map[string]any{"id": int64(3)}), change.RowOf(map[string]any{"id": int64(30), "title": "thirty"})),
				g.upd(docs, change.RowOf(map[string]any{"id": int64(10)}), change.RowOf(map[string]any{"id": int64(11), "title": "eleven"})))
			e.flush()
			e.expectRows("docs", docCols, "2|deux|long body 2", "11|eleven|long body 1", "30|thirty|long body 3")
		})
	}},
	{"primary-key move with soft delete keeps both rows whole", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{Delete: "soft"}, func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(docs, doc(1, "one", "body 1")),
				g.upd(docs, change.RowOf(map[string]any{"id": int64(1)}), change.RowOf(map[string]any{"id": int64(10), "title": "ten"})))
			e.flush()
			e.expectRows("docs", []string{"id", "title", "body", "__deleted"},
				"1|one|body 1|"+tg.bool(true), "10|ten|body 1|"+tg.bool(false))
		})
	}},
	{"updates that leave columns out never need their values", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{}, func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(docs, doc(1, "one", "body 1")), g.ins(docs, doc(2, "two", "body 2")))
			// Partial and whole rows of one table in one write, the same
			// key twice, and an update that changes nothing.
			e.mustWrite(g.upd(docs, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "title": "uno"})),
				g.upd(docs, change.Row{}, doc(2, "dos", "body 2b")),
				g.upd(docs, change.Row{}, change.RowOf(map[string]any{"id": int64(2), "title": "deux"})),
				g.upd(docs, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "title": "eins"})),
				g.upd(docs, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "title": "eins"})))
			e.flush()
			e.expectRows("docs", docCols, "1|eins|body 1", "2|deux|body 2b")
		})
	}},
	{"a partial row the target lacks is inserted with what it has", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(docs, doc(1, "one", "body 1")),
			g.upd(docs, change.Row{}, change.RowOf(map[string]any{"id": int64(7), "title": "seven"})),
			g.upd(docs, change.RowOf(map[string]any{"id": int64(8)}), change.RowOf(map[string]any{"id": int64(9), "title": "nine"})))
		e.flush()
		e.expectRows("docs", docCols, "1|one|body 1", "7|seven|NULL", "9|nine|NULL")
	}},
	{"a partial row a NOT NULL target lacks is rejected, not invented", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		createDocs(e, "")
		var g gen
		e.mustWrite(g.ins(docs, doc(1, "one", "body 1")))
		bad := g.upd(docs, change.Row{}, change.RowOf(map[string]any{"id": int64(7), "title": "seven"}))
		if err := e.write(g.ins(docs, doc(2, "two", "body 2")), bad); !rejects(err, bad) {
			t.Fatalf("Write: %v, want a reject of the update of key 7", err)
		}
	}},
	{"soft delete carrying only the key marks the stored row", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{Delete: "soft"}, func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(docs, doc(1, "one", "body 1")), g.ins(docs, doc(2, "two", "body 2")),
				g.del(docs, change.RowOf(map[string]any{"id": int64(1)})),
				g.del(docs, change.RowOf(map[string]any{"id": int64(5)}))) // not in the target: nothing to mark
			e.flush()
			e.expectRows("docs", []string{"id", "title", "body", "__deleted"},
				"1|one|body 1|"+tg.bool(true), "2|two|body 2|"+tg.bool(false))
			// The key comes back.
			e.mustWrite(g.ins(docs, doc(1, "again", "body 1b")))
			e.flush()
			e.expectRows("docs", []string{"id", "title", "body", "__deleted"},
				"1|again|body 1b|"+tg.bool(false), "2|two|body 2|"+tg.bool(false))
		})
	}},
	{"a row moving between partitions is a delete and an insert of the root", func(t *testing.T, tg Target) {
		// publish_via_partition_root: an UPDATE of the partition key is a
		// delete of the old row (its key, under the default identity) and
		// an insert of the whole new row, both naming the root table.
		orders := relation("orders", "id bigint key", "region text key", "amount numeric(12,2)", "note text")
		o := func(id int64, region, amount, note string) change.Row {
			return change.RowOf(map[string]any{"id": id, "region": region, "amount": change.Numeric(amount), "note": note})
		}
		run := func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(orders, o(1, "eu", "10.50", "n1")), g.ins(orders, o(2, "us", "3.00", "n2")))
			del := g.del(orders, change.RowOf(map[string]any{"id": int64(1), "region": "eu"}))
			del.Boundary = false
			e.mustWrite(del, g.ins(orders, o(1, "us", "10.50", "n1")))
			e.flush()
			e.expectRows("orders", []string{"id", "region", "amount", "note"}, "1|us|10.50|n1", "2|us|3.00|n2")
		}
		t.Run("pre-created NOT NULL", func(t *testing.T) {
			e := newEnv(t, tg, dsl.TableSink{})
			e.exec("CREATE TABLE " + tg.Quote("orders") + " (id BIGINT NOT NULL, region VARCHAR(10) NOT NULL, amount DECIMAL(12,2) NOT NULL, note TEXT NOT NULL, PRIMARY KEY (id, region))")
			run(t, e)
		})
		t.Run("auto-created", func(t *testing.T) { run(t, newEnv(t, tg, dsl.TableSink{AutoCreate: true})) })
	}},
	{"truncate empties the target in the same transaction", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{}, func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(docs, doc(1, "one", "b1")), g.ins(docs, doc(2, "two", "b2")))
			e.flush()
			// TRUNCATE then new rows, in one source transaction: a reader
			// never sees the table empty.
			trunc := g.ev(change.Truncate, docs, change.Row{}, change.Row{})
			trunc.Boundary = false
			e.mustWrite(g.ins(docs, doc(3, "three", "b3")), trunc, g.ins(docs, doc(1, "uno", "b1b")))
			e.expectRows("docs", docCols, "1|one|b1", "2|two|b2")
			e.flush()
			e.expectRows("docs", docCols, "1|uno|b1b")
		})
	}},
	{"truncate with soft deletes marks every row", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{Delete: "soft"}, func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(docs, doc(1, "one", "b1")), g.ins(docs, doc(2, "two", "b2")),
				g.ev(change.Truncate, docs, change.Row{}, change.Row{}), g.ins(docs, doc(2, "deux", "b2b")))
			e.flush()
			e.expectRows("docs", []string{"id", "title", "__deleted"}, "1|one|"+tg.bool(true), "2|deux|"+tg.bool(false))
		})
	}},
	{"truncate in append mode is recorded, skip ignores it", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Mode: "append", Table: "docs_log"})
		var g gen
		e.mustWrite(g.ins(docs, doc(1, "one", "b1")), g.ev(change.Truncate, docs, change.Row{}, change.Row{}))
		e.flush()
		e.expectRows("docs_log", []string{"__position", "__op", "id"}, "1.0|insert|1", "2.0|truncate|NULL")

		e = newEnv(t, tg, dsl.TableSink{AutoCreate: true, Truncate: "skip"})
		e.mustWrite(g.ins(docs, doc(1, "one", "b1")), g.ev(change.Truncate, docs, change.Row{}, change.Row{}))
		e.flush()
		e.expectRows("docs", docCols, "1|one|b1")
	}},
	{"truncate of a table the target lacks changes nothing", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ev(change.Truncate, docs, change.Row{}, change.Row{}), g.ins(docs, doc(1, "one", "b1")))
		e.flush()
		e.expectRows("docs", docCols, "1|one|b1")
	}},
	{"a column added with a constant default shows it in the rows before", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{}, func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(docs, doc(1, "one", "b1")))
			e.flush()
			// ALTER TABLE docs ADD COLUMN status text NOT NULL DEFAULT 'it''s new',
			// ADD COLUMN n integer DEFAULT 42, ADD COLUMN at timestamptz DEFAULT now():
			// the source shows the defaults in row 1 without a change of it.
			v2 := relation("docs", "id integer key", "title character varying(50)", "body text", "status text", "n integer", "at timestamp with time zone")
			v2.Version = 2
			v2.Columns[3].Default, v2.Columns[3].NotNull = "'it''s new'::text", true
			v2.Columns[4].Default = "42"
			v2.Columns[5].Default = "now()" // not a constant: the target cannot reproduce it
			e.mustWrite(g.ins(v2, change.RowOf(map[string]any{"id": int64(2), "title": "two", "body": "b2", "status": `a\b`, "n": int64(7), "at": nil})))
			e.flush()
			e.expectRows("docs", []string{"id", "status", "n", "at"}, "1|it's new|42|NULL", `2|a\b|7|NULL`)
		})
	}},
	{"a widened column type is applied before the first wider value", func(t *testing.T, tg Target) {
		targets(t, tg, dsl.TableSink{}, func(t *testing.T, e *env) {
			v1 := relation("docs", "id integer key", "title character varying(5)", "body text")
			var g gen
			e.mustWrite(g.ins(v1, doc(1, "one", "b1")))
			e.flush()
			// ALTER TABLE docs ALTER id TYPE bigint, ALTER title TYPE varchar(50),
			// with a row of the old shape in the same write: where the ALTER
			// rolls the transaction back (MySQL), the replay sees the change
			// again and must not alter (and roll back) once more.
			v2 := relation("docs", "id bigint key", "title character varying(50)", "body text")
			v2.Version = 2
			// (The delete of a key the target lacks makes the insert before it
			// run, so the transaction holds a row when the ALTER comes.)
			e.mustWrite(g.ins(v1, doc(2, "two", "b2")), g.del(v1, change.RowOf(map[string]any{"id": int64(99)})), g.ins(v2, doc(5_000_000_000, "a longer title", "b3")))
			e.flush()
			e.expectRows("docs", docCols, "1|one|b1", "2|two|b2", "5000000000|a longer title|b3")
		})
	}},
	{"a type changed while the sink was not looking is widened on first sight", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		e.exec("CREATE TABLE " + tg.Quote("docs") + " (id INT PRIMARY KEY, title VARCHAR(50) NOT NULL, n INT NOT NULL)")
		wide := relation("docs", "id integer key", "title character varying(50)", "n bigint")
		var g gen
		e.mustWrite(g.ins(wide, change.RowOf(map[string]any{"id": int64(1), "title": "t", "n": int64(1) << 40})))
		e.flush()
		e.expectRows("docs", []string{"id", "title", "n"}, "1|t|1099511627776")
		// NOT NULL stayed.
		if err := e.write(g.ins(wide, change.RowOf(map[string]any{"id": int64(2), "title": "t", "n": nil}))); err == nil {
			t.Errorf("a NULL into the widened NOT NULL column was taken")
		}
	}},
	{"an incompatible type change stops the pipeline naming the column", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(docs, doc(1, "one", "b1")))
		e.flush()
		v2 := relation("docs", "id integer key", "title boolean", "body text")
		v2.Version = 2
		err := e.write(g.ins(v2, change.RowOf(map[string]any{"id": int64(2), "title": true, "body": "b"})))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), `"title"`) || !strings.Contains(err.Error(), "boolean") || !strings.Contains(err.Error(), "character varying") {
			t.Errorf("want a permanent error naming title and both types, got %v", err)
		}
	}},
	{"a dropped column never breaks later rows", func(t *testing.T, tg Target) {
		for _, mode := range []string{"add_columns", "drop_columns"} {
			t.Run(mode, func(t *testing.T) {
				targets(t, tg, dsl.TableSink{SchemaChanges: mode}, func(t *testing.T, e *env) {
					var g gen
					e.mustWrite(g.ins(docs, doc(1, "one", "b1")))
					e.flush()
					v2 := relation("docs", "id integer key", "title character varying(50)")
					v2.Version = 2
					e.mustWrite(g.ins(v2, change.RowOf(map[string]any{"id": int64(2), "title": "two"})))
					e.flush()
					if mode == "drop_columns" {
						e.expectRows("docs", []string{"id", "title"}, "1|one", "2|two")
						if err := e.db.QueryRowContext(ctx(t), "SELECT body FROM "+tg.Quote("docs")).Scan(new(any)); err == nil {
							t.Errorf("column body is still there")
						}
						return
					}
					e.expectRows("docs", docCols, "1|one|b1", "2|two|NULL")
				})
			})
		}
	}},
	{"max_rows_per_second holds the writes to the rate", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, MaxRowsPerSecond: 1000, BatchSize: 100})
		var g gen
		evs := make([]change.Event, 0, 600)
		for i := int64(1); i <= 600; i++ {
			evs = append(evs, g.ins(docs, doc(i, "t", "b")))
		}
		start := time.Now()
		e.mustWrite(evs...)
		e.flush()
		// 600 rows at 1,000 a second, the first tenth of a second free:
		// at least 0.5 s (only the lower bound: a loaded machine is slower).
		if took := time.Since(start); took < 450*time.Millisecond {
			t.Errorf("600 rows at max_rows_per_second = 1000 took %v, want at least 0.5 s", took)
		}
		if n := e.count("docs"); n != 600 {
			t.Errorf("%d rows written, want 600", n)
		}
	}},
}

// rejects reports whether err is a RejectError of event want.
func rejects(err error, want change.Event) bool {
	var rej *engine.RejectError
	return errors.As(err, &rej) && rej.Event.Position == want.Position
}
