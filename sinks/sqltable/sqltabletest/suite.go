package sqltabletest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

var users = relation("users", "id integer key", "name text", "email character varying(100)")

var userCols = []string{"id", "name", "email"}

func u(id int64, name, email string) change.Row {
	return change.RowOf(map[string]any{"id": id, "name": name, "email": email})
}

// testCase is one case of the suite, run once per target.
type testCase struct {
	name string
	run  func(t *testing.T, tg Target)
}

// cases is the conformance suite; each case gets a database of its own.
var cases = []testCase{
	{"upsert and hard delete", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ev(change.Snapshot, users, change.Row{}, u(1, "ann", "a@x")), g.ins(users, u(2, "ben", "b@x")), g.ins(users, u(3, "cid", "c@x")),
			g.upd(users, u(2, "ben", "b@x"), u(2, "benjamin", "b@x")), g.del(users, change.RowOf(map[string]any{"id": int64(3)})))
		e.flush()
		e.expectRows("users", userCols, "1|ann|a@x", "2|benjamin|b@x")
	}},
	{"same key several times in one write keeps order", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "a", "1")), g.upd(users, u(1, "a", "1"), u(1, "b", "1")), g.del(users, u(1, "b", "1")),
			g.ins(users, u(1, "c", "1")), g.upd(users, u(1, "c", "1"), u(1, "d", "1")), g.ins(users, u(2, "x", "2")))
		e.flush()
		e.expectRows("users", userCols, "1|d|1", "2|x|2")
	}},
	{"composite keys", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		pairs := relation("pairs", "a integer key", "b text key", "v text")
		p := func(a int64, b, v string) change.Row { return change.RowOf(map[string]any{"a": a, "b": b, "v": v}) }
		var g gen
		e.mustWrite(g.ins(pairs, p(1, "x", "1x")), g.ins(pairs, p(1, "y", "1y")), g.ins(pairs, p(2, "x", "2x")), g.ins(pairs, p(3, "z", "3z")),
			g.del(pairs, change.RowOf(map[string]any{"a": int64(1), "b": "y"})), g.del(pairs, change.RowOf(map[string]any{"a": int64(3), "b": "z"})),
			g.upd(pairs, change.RowOf(map[string]any{"a": int64(2), "b": "x"}), p(2, "w", "2w")))
		e.flush()
		e.expectRows("pairs", []string{"a", "b", "v"}, "1|x|1x", "2|w|2w")
	}},
	{"soft delete", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Delete: "soft", Key: []string{"name"}, Table: "pasta_copy"})
		pasta := relation("pasta", "id integer key", "name text", "cooking_minutes integer")
		var g gen
		e.mustWrite(g.ins(pasta, change.RowOf(map[string]any{"id": int64(1), "name": "linguine", "cooking_minutes": int64(10)})),
			g.ins(pasta, change.RowOf(map[string]any{"id": int64(2), "name": "penne", "cooking_minutes": int64(11)})),
			g.del(pasta, change.RowOf(map[string]any{"id": int64(1), "name": "linguine"})))
		e.flush()
		e.expectRows("pasta_copy", []string{"name", "id", "cooking_minutes", "__deleted"}, "linguine|1|10|"+tg.bool(true), "penne|2|11|"+tg.bool(false))
		// A row that comes back is no longer deleted.
		e.mustWrite(g.ins(pasta, change.RowOf(map[string]any{"id": int64(3), "name": "linguine", "cooking_minutes": int64(9)})))
		e.flush()
		e.expectRows("pasta_copy", []string{"name", "id", "cooking_minutes", "__deleted"}, "linguine|3|9|"+tg.bool(false), "penne|2|11|"+tg.bool(false))
	}},
	{"deletes with only the source key reach a sink keyed by another column", func(t *testing.T, tg Target) {
		// PostgreSQL's default replica identity: a delete's before holds only
		// the primary key (id); the sink is keyed by name.
		pasta := relation("pasta", "id integer key", "name text", "cooking_minutes integer")
		for _, del := range []string{"soft", "hard"} {
			e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Delete: del, Key: []string{"name"}, Table: "pasta_" + del})
			var g gen
			e.mustWrite(g.ins(pasta, change.RowOf(map[string]any{"id": int64(1), "name": "linguine", "cooking_minutes": int64(10)})),
				g.ins(pasta, change.RowOf(map[string]any{"id": int64(2), "name": "penne", "cooking_minutes": int64(11)})),
				g.del(pasta, change.RowOf(map[string]any{"id": int64(1)})))
			e.flush()
			if del == "soft" {
				e.expectRows("pasta_soft", []string{"name", "id", "__deleted"}, "linguine|1|"+tg.bool(true), "penne|2|"+tg.bool(false))
			} else {
				e.expectRows("pasta_hard", []string{"name", "id"}, "penne|2")
			}
		}
	}},
	{"skip delete", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Delete: "skip"})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.del(users, u(1, "ann", "a@x")))
		e.flush()
		e.expectRows("users", userCols, "1|ann|a@x")
	}},
	{"append mode records every change once", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Mode: "append", Table: "users_history"})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.upd(users, u(1, "ann", "a@x"), u(1, "anna", "a@x")), g.del(users, u(1, "anna", "a@x")))
		e.flush()
		e.expectRows("users_history", []string{"__position", "__op", "id", "name", "__commit_time"},
			"1.0|insert|1|ann|"+tg.time("2026-01-02 03:04:05.000001"),
			"2.0|update|1|anna|"+tg.time("2026-01-02 03:04:05.000002"),
			"3.0|delete|1|anna|"+tg.time("2026-01-02 03:04:05.000003"))
	}},
	{"append mode with delete skip", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Mode: "append", Delete: "skip"})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.del(users, u(1, "ann", "a@x")))
		e.flush()
		e.expectRows("users", []string{"__position", "__op", "id"}, "1.0|insert|1")
	}},
	{"update mode writes only the listed columns of existing rows", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{Mode: "update", Columns: []string{"first_name", "last_name"}})
		e.exec("CREATE TABLE " + tg.Quote("people") + " (id INT PRIMARY KEY, name VARCHAR(50), first_name VARCHAR(50), last_name VARCHAR(50))")
		e.exec("INSERT INTO " + tg.Quote("people") + " (id, name, first_name, last_name) VALUES (1, 'Ada Lovelace', NULL, NULL), (2, 'Alan Turing', 'Alan', 'T')")
		people := relation("people", "id integer key", "name text", "first_name text", "last_name text")
		before := e.versions("people")
		var g gen
		e.mustWrite(
			// name is not listed: never written.
			g.upd(people, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "name": "CHANGED", "first_name": "Ada", "last_name": "Lovelace"})),
			// last_name absent: left as it is.
			g.upd(people, change.Row{}, change.RowOf(map[string]any{"id": int64(2), "name": "Alan Turing", "first_name": "Alan"})),
			// no such row: nothing inserted.
			g.ins(people, change.RowOf(map[string]any{"id": int64(3), "name": "X Y", "first_name": "X", "last_name": "Y"})),
			// deletes change nothing.
			g.del(people, change.RowOf(map[string]any{"id": int64(2)})))
		e.flush()
		e.expectRows("people", []string{"id", "name", "first_name", "last_name"}, "1|Ada Lovelace|Ada|Lovelace", "2|Alan Turing|Alan|T")
		if after := e.versions("people"); before != nil && (after[0] == before[0] || after[1] != before[1]) {
			t.Errorf("row versions %v → %v: want row 1 written and row 2 (no listed value differs) not", before, after)
		}
	}},
	{"update mode batches rows and writes only those that differ", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{Mode: "update", Columns: []string{"first_name", "last_name"}})
		e.exec("CREATE TABLE " + tg.Quote("people") + " (id INT PRIMARY KEY, name VARCHAR(50), first_name VARCHAR(50), last_name VARCHAR(50))")
		e.exec("INSERT INTO " + tg.Quote("people") + " (id, name, first_name, last_name) VALUES (1, 'a', NULL, NULL), (2, 'b', 'B', 'Bee'), (3, 'c', 'C', 'Cee'), (4, 'd', 'D', 'Dee')")
		people := relation("people", "id integer key", "name text", "first_name text", "last_name text")
		p := func(id int64, first, last any) change.Row {
			return change.RowOf(map[string]any{"id": id, "name": "ignored", "first_name": first, "last_name": last})
		}
		before := e.versions("people")
		var g gen
		e.mustWrite(
			g.upd(people, change.Row{}, p(1, "A", "Ay")),
			g.upd(people, change.Row{}, p(2, "B", "Bee")), // the same values: not written
			g.upd(people, change.Row{}, p(3, "C", nil)),   // a value becomes NULL
			g.upd(people, change.Row{}, p(1, "A2", "Ay")), // the same key again, later
			g.upd(people, change.Row{}, p(9, "X", "Y")))   // no such row
		e.flush()
		e.expectRows("people", []string{"id", "name", "first_name", "last_name"}, "1|a|A2|Ay", "2|b|B|Bee", "3|c|C|NULL", "4|d|D|Dee")
		if after := e.versions("people"); before != nil && (after[0] == before[0] || after[1] != before[1] || after[2] == before[2] || after[3] != before[3]) {
			t.Errorf("row versions %v → %v: want rows 1 and 3 written, 2 and 4 not", before, after)
		}
	}},
	{"primary-key update moves the row", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.ins(users, u(2, "ben", "b@x")),
			g.upd(users, change.RowOf(map[string]any{"id": int64(1)}), u(10, "ann", "a@x")))
		e.flush()
		e.expectRows("users", userCols, "2|ben|b@x", "10|ann|a@x")
	}},
	{"primary-key update with soft delete marks the old key", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Delete: "soft"})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.upd(users, change.RowOf(map[string]any{"id": int64(1)}), u(10, "ann", "a@x")))
		e.flush()
		e.expectRows("users", []string{"id", "name", "__deleted"}, "1|ann|"+tg.bool(true), "10|ann|"+tg.bool(false))
	}},
	{"absent columns are left untouched", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.ins(users, u(2, "ben", "b@x")))
		// email unchanged and TOASTed: absent from After, in one batch
		// with full rows.
		e.mustWrite(g.upd(users, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "name": "anna"})),
			g.upd(users, change.Row{}, u(2, "benjamin", "bb@x")),
			g.upd(users, change.Row{}, change.RowOf(map[string]any{"id": int64(2), "name": "benji"})),
			g.upd(users, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "email": nil})))
		e.flush()
		e.expectRows("users", userCols, "1|anna|NULL", "2|benji|bb@x")
	}},
	{"absent columns of rows of one shape are left untouched", func(t *testing.T, tg Target) {
		// Rows as a source makes them: one Columns per table shape, in
		// the table's column order (not sorted), change.Unsent where a
		// value was not sent. Consecutive rows share the Columns but not
		// the columns they have.
		cols := change.NewColumns("id", "name", "email")
		r := func(vals ...any) change.Row { return change.MakeRow(cols, vals) }
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, r(int64(1), "ann", "a@x")), g.ins(users, r(int64(2), "ben", "b@x")), g.ins(users, r(int64(3), "cid", "c@x")))
		e.mustWrite(g.upd(users, change.Row{}, r(int64(1), "anna", change.Unsent)),
			g.upd(users, change.Row{}, r(int64(3), change.Unsent, nil)),
			g.upd(users, change.Row{}, r(int64(2), "benjamin", "bb@x")),
			g.upd(users, change.Row{}, r(int64(2), "benji", change.Unsent)),
			g.upd(users, change.Row{}, r(int64(1), change.Unsent, "A@X")),
			g.ins(users, r(int64(4), "dan", nil)))
		e.flush()
		e.expectRows("users", userCols, "1|anna|A@X", "2|benji|bb@x", "3|cid|NULL", "4|dan|NULL")
	}},
	{"absent columns of rows of one shape without a source schema are left untouched", func(t *testing.T, tg Target) {
		// Without a Relation (file and Kafka sources) every row is whole
		// and upserts the columns it has: the rows of one statement have
		// the same ones, whichever their Columns hold.
		notes := relation("notes", "id integer key", "title text", "body text")
		cols := change.NewColumns("id", "title", "body")
		var g gen
		ev := func(vals ...any) change.Event {
			e := g.upd(notes, change.Row{}, change.MakeRow(cols, vals))
			e.Relation = nil
			return e
		}
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		e.mustWrite(ev(int64(1), "one", "b1"), ev(int64(2), "two", "b2"), ev(int64(3), "three", "b3"))
		e.mustWrite(ev(int64(1), "uno", change.Unsent), ev(int64(2), "dos", "b2b"), ev(int64(3), change.Unsent, nil),
			ev(int64(4), change.Unsent, "b4"))
		e.flush()
		e.expectRows("notes", []string{"id", "title", "body"}, "1|uno|b1", "2|dos|b2b", "3|three|NULL", "4|NULL|b4")
	}},
	{"auto_create maps every source type", autoCreateTypes},
	{"added column", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")))
		e.flush()
		v2 := relation("users", "id integer key", "name text", "email character varying(100)", "age smallint")
		v2.Version = 2
		// The delete ends a statement before the new column shows up, so
		// the transaction holds rows when the table must be altered.
		e.mustWrite(g.ins(users, u(2, "ben", "b@x")), g.del(users, change.RowOf(map[string]any{"id": int64(1)})),
			g.ins(v2, change.RowOf(map[string]any{"id": int64(3), "name": "cid", "email": "c@x", "age": int64(33)})))
		e.flush()
		e.expectRows("users", []string{"id", "name", "age"}, "2|ben|NULL", "3|cid|33")
		if cp := e.open(); cp[change.Stream{Source: "src"}].Offset != g.off {
			t.Errorf("checkpoint %v after the schema change, want offset %d", cp, g.off)
		}
	}},
	{"a column the target spells in another case", func(t *testing.T, tg Target) {
		// MySQL matches column names case-insensitively: "Email" is the
		// target's "email" and must not be added again. PostgreSQL's
		// quoted names are distinct: "Email" is a new column.
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")))
		e.mustWrite(g.upd(users, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "Email": "A@X"})))
		e.flush()
		want := "1|ann|A@X"
		if tg.Name == "postgres" {
			want = "1|ann|a@x"
		}
		e.expectRows("users", userCols, want)
	}},
	{"added column with schema_changes fail", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, SchemaChanges: "fail"})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")))
		err := e.write(g.ins(users, change.RowOf(map[string]any{"id": int64(2), "name": "ben", "age": int64(3)})))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), `"age"`) || !strings.Contains(err.Error(), "users") {
			t.Fatalf("want a permanent error naming users and age, got %v", err)
		}
	}},
	{"several source tables each to its own table", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		orders := relation("orders", "order_id bigint key", "total numeric(10,2)")
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.ins(orders, change.RowOf(map[string]any{"order_id": int64(7), "total": change.Numeric("12.50")})),
			g.ins(users, u(2, "ben", "b@x")), g.ins(orders, change.RowOf(map[string]any{"order_id": int64(8), "total": change.Numeric("3.00")})))
		e.flush()
		e.expectRows("users", userCols, "1|ann|a@x", "2|ben|b@x")
		e.expectRows("orders", []string{"order_id", "total"}, "7|12.50", "8|3.00")
	}},
	{"a schema-qualified table", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		// A table of a name no other database has tells the schema.
		marker := fmt.Sprintf("marker_%d", time.Now().UnixNano())
		e.exec("CREATE TABLE " + tg.Quote(marker) + " (x INT)")
		var schema string
		if err := e.db.QueryRowContext(ctx(t), "SELECT table_schema FROM information_schema.tables WHERE table_name = '"+marker+"'").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		e.cfg.Table = schema + ".users_copy"
		e.open()
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.ins(users, u(2, "ben", "b@x")), g.del(users, u(1, "ann", "a@x")))
		e.flush()
		e.expectRows("users_copy", userCols, "2|ben|b@x")
	}},
	{"big transaction is streamed into one target transaction", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, BatchSize: 100})
		var g gen
		e.mustWrite(g.ins(users, u(0, "first", "")))
		e.flush()
		const rows, perWrite = 3000, 250
		commit := g.off + 1
		for i := 0; i < rows; i += perWrite {
			batch := make([]change.Event, perWrite)
			for j := range batch {
				id := int64(i + j + 1)
				batch[j] = change.Event{Op: change.Insert, Schema: "public", Table: "users", Relation: users,
					Key: change.RowOf(map[string]any{"id": id}), After: u(id, fmt.Sprint("n", id), "e"),
					Position: change.Position{Source: "src", Offset: commit, Index: uint32(i + j)}, Boundary: i+j == rows-1}
			}
			e.mustWrite(batch...)
			if n := e.count("users"); n != 1 {
				t.Fatalf("a reader sees %d rows in the middle of the transaction, want 1", n)
			}
		}
		e.flush()
		if n := e.count("users"); n != rows+1 {
			t.Fatalf("%d rows after the flush, want %d", n, rows+1)
		}
	}},
	{"wide rows are split across statements", func(t *testing.T, tg Target) {
		// 20 rows of 1 MiB: more than MySQL's default max_allowed_packet
		// (16 MiB) had they gone into one statement.
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		big := strings.Repeat("x", 1<<20)
		var g gen
		var evs []change.Event
		for i := int64(1); i <= 20; i++ {
			evs = append(evs, g.ins(users, u(i, big, "e")))
		}
		e.mustWrite(evs...)
		e.flush()
		var n, total int64
		q := "SELECT COUNT(*), SUM(LENGTH(" + tg.Quote("name") + ")) FROM " + tg.Quote("users")
		if err := e.db.QueryRowContext(ctx(t), q).Scan(&n, &total); err != nil {
			t.Fatal(err)
		}
		if n != 20 || total != 20<<20 {
			t.Fatalf("%d rows of %d bytes in all, want 20 of %d", n, total, 20<<20)
		}
	}},
	{"processes sharing the checkpoint row each move only their own streams", func(t *testing.T, tg Target) {
		// Two processes of one pipeline behind a Kafka consumer group:
		// a owns partition 0, b partition 1, and b still carries the
		// position of partition 0 it opened with.
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		p0, p1 := change.Stream{Source: "k", Partition: "t/0"}, change.Stream{Source: "k", Partition: "t/1"}
		at := func(st change.Stream, off uint64) change.Position {
			return change.Position{Source: st.Source, Partition: st.Partition, Offset: off}
		}
		flush := func(sk engine.Sink, cp change.Checkpoint) {
			t.Helper()
			if _, err := sk.Flush(ctx(t), cp); err != nil {
				t.Fatalf("Flush %v: %v", cp, err)
			}
		}
		committed := func(sk engine.Sink) string {
			t.Helper()
			cp, err := sk.(engine.CommittedReader).Committed(ctx(t))
			if err != nil {
				t.Fatalf("Committed: %v", err)
			}
			return fmt.Sprint(cp)
		}
		flush(e.sink, change.Checkpoint{p0: at(p0, 5)})
		b, err := tg.New(build, tg.block(e.dsn, e.cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		opened, err := b.Open(ctx(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		flush(e.sink, change.Checkpoint{p0: at(p0, 9)})
		flush(b, change.Checkpoint{p0: opened[p0], p1: at(p1, 7)})
		want := fmt.Sprint(change.Checkpoint{p0: at(p0, 9), p1: at(p1, 7)})
		if got := committed(b); got != want {
			t.Fatalf("after both flushed, Committed = %s, want %s (b's stale partition 0 must not overwrite a's)", got, want)
		}
		flush(e.sink, change.Checkpoint{p0: at(p0, 12)})
		want = fmt.Sprint(change.Checkpoint{p0: at(p0, 12), p1: at(p1, 7)})
		if got := committed(e.sink); got != want {
			t.Fatalf("Committed = %s, want %s (a must not drop b's partition 1)", got, want)
		}
		if got := fmt.Sprint(e.open()); got != want {
			t.Fatalf("Open = %s, want %s", got, want)
		}
	}},
	{"open after flush returns the flushed checkpoint", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		if cp := e.open(); len(cp) != 0 {
			t.Fatalf("first Open returned %v, want an empty checkpoint", cp)
		}
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")), g.mark(), g.mark())
		e.flush()
		want := change.Checkpoint{{Source: "src"}: {Source: "src", Offset: 3}}
		if cp := e.open(); fmt.Sprint(cp) != fmt.Sprint(want) {
			t.Fatalf("Open after Flush returned %v, want %v", cp, want)
		}
		// The target is the truth: what the state file saved is ignored.
		if cp, err := e.sink.Open(ctx(t), []byte(`[{"source":"src","offset":99,"index":0}]`)); err != nil || fmt.Sprint(cp) != fmt.Sprint(want) {
			t.Fatalf("Open with other saved bytes returned %v, %v; want %v", cp, err, want)
		}
		// A flush with marks only still moves the checkpoint.
		e.mustWrite(g.mark())
		e.flush()
		want[change.Stream{Source: "src"}] = change.Position{Source: "src", Offset: 4}
		if cp := e.open(); fmt.Sprint(cp) != fmt.Sprint(want) {
			t.Fatalf("Open after a marks-only Flush returned %v, want %v", cp, want)
		}
	}},
	{"write without flush then close leaves nothing", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")))
		e.flush()
		e.mustWrite(g.ins(users, u(2, "ben", "b@x")), g.upd(users, change.Row{}, u(1, "changed", "a@x")))
		if err := e.sink.Close(); err != nil {
			t.Fatal(err)
		}
		cp := e.open()
		if want := (change.Position{Source: "src", Offset: 1}); cp[want.Stream()] != want {
			t.Fatalf("checkpoint after rollback %v, want %v", cp, want)
		}
		e.expectRows("users", userCols, "1|ann|a@x")
	}},
	{"rejected row is identified inside a multi-row statement", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		e.exec("CREATE TABLE " + tg.Quote("users") + " (id INT PRIMARY KEY, name VARCHAR(5), email VARCHAR(100))")
		var g gen
		var evs []change.Event
		for i := int64(1); i <= 10; i++ {
			name := fmt.Sprint("n", i)
			if i == 6 {
				name = "far too long for five"
			}
			evs = append(evs, g.ins(users, u(i, name, "e")))
		}
		err := e.write(evs...)
		var rej *engine.RejectError
		if !errors.As(err, &rej) {
			t.Fatalf("want a RejectError, got %v", err)
		}
		if rej.Event.Position != evs[5].Position {
			t.Fatalf("rejected %v, want the sixth event %v", rej.Event.Position, evs[5].Position)
		}
		// dead_letter: carry on after the rejected event.
		e.pending = append(e.pending[:len(e.pending)-len(evs)], evs[:5]...)
		e.mustWrite(evs[6:]...)
		e.flush()
		e.expectRows("users", []string{"id", "name"}, "1|n1", "2|n2", "3|n3", "4|n4", "5|n5", "7|n7", "8|n8", "9|n9", "10|n10")
	}},
	{"a value too long for a fixed-length column is a reject, never truncated", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		e.exec("CREATE TABLE " + tg.Quote("codes") + " (id INT PRIMARY KEY, code CHAR(3))")
		codes := relation("codes", "id integer key", "code character(3)")
		var g gen
		ok1, bad, ok2 := g.ins(codes, change.RowOf(map[string]any{"id": int64(1), "code": "abc"})), g.ins(codes, change.RowOf(map[string]any{"id": int64(2), "code": "abcd"})), g.ins(codes, change.RowOf(map[string]any{"id": int64(3), "code": "xyz"}))
		err := e.write(ok1, bad, ok2)
		var rej *engine.RejectError
		if !errors.As(err, &rej) || rej.Event.Position != bad.Position {
			t.Fatalf("want a RejectError for the second row, got %v", err)
		}
		e.pending = e.pending[:1]
		e.mustWrite(ok2)
		e.flush()
		e.expectRows("codes", []string{"id", "code"}, "1|abc", "3|xyz")
	}},
	{"rejected row after other statements of the same write", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		e.exec("CREATE TABLE " + tg.Quote("users") + " (id INT PRIMARY KEY, name VARCHAR(5), email VARCHAR(100))")
		var g gen
		evs := []change.Event{
			g.ins(users, u(1, "a", "e")), g.ins(users, u(2, "b", "e")), g.ins(users, u(3, "c", "e")), // statement 1
			g.del(users, change.RowOf(map[string]any{"id": int64(2)})),                  // statement 2
			g.upd(users, change.RowOf(map[string]any{"id": int64(3)}), u(30, "c", "e")), // delete 3, then upsert 30
			g.ins(users, u(4, "d", "e")), g.ins(users, u(5, "far too long", "e")), g.ins(users, u(6, "f", "e")),
		}
		err := e.write(evs...)
		var rej *engine.RejectError
		if !errors.As(err, &rej) || rej.Event.Position != evs[6].Position {
			t.Fatalf("want a RejectError for the seventh event, got %v", err)
		}
		e.pending = append(e.pending[:0], evs[:6]...)
		e.mustWrite(evs[7])
		e.flush()
		e.expectRows("users", []string{"id", "name"}, "1|a", "4|d", "6|f", "30|c")
	}},
	{"rejected row in a later write of the same transaction", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		e.exec("CREATE TABLE " + tg.Quote("users") + " (id INT PRIMARY KEY, name VARCHAR(5), email VARCHAR(100))")
		var g gen
		e.mustWrite(g.ins(users, u(1, "a", "e")), g.ins(users, u(2, "b", "e")), g.del(users, change.RowOf(map[string]any{"id": int64(2)})))
		e.mustWrite(g.ins(users, u(3, "c", "e")))
		four, bad, six := g.ins(users, u(4, "d", "e")), g.ins(users, u(5, "far too long", "e")), g.ins(users, u(6, "f", "e"))
		err := e.write(four, bad, six)
		var rej *engine.RejectError
		if !errors.As(err, &rej) || rej.Event.Position != bad.Position {
			t.Fatalf("want a RejectError for the bad row, got %v", err)
		}
		e.pending = e.pending[:len(e.pending)-2]
		e.mustWrite(six)
		e.flush()
		e.expectRows("users", []string{"id", "name"}, "1|a", "3|c", "4|d", "6|f")
	}},
	{"constraint violation is a reject", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		e.exec("CREATE TABLE " + tg.Quote("users") + " (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, email VARCHAR(100))")
		var g gen
		a, b := g.ins(users, u(1, "ann", "a@x")), g.ins(users, change.RowOf(map[string]any{"id": int64(2), "name": nil, "email": "b@x"}))
		err := e.write(a, b)
		var rej *engine.RejectError
		if !errors.As(err, &rej) || rej.Event.Position != b.Position {
			t.Fatalf("want a RejectError for the second row, got %v", err)
		}
	}},
	{"configuration errors are permanent and say what to do", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{})
		var g gen
		err := e.write(g.ins(users, u(1, "ann", "a@x")))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), "users") || !strings.Contains(err.Error(), "auto_create") {
			t.Errorf("missing table: want a permanent error naming users and auto_create, got %v", err)
		}
		e.exec("CREATE TABLE " + tg.Quote("users") + " (uid INT PRIMARY KEY, name VARCHAR(50), email VARCHAR(100))")
		e.open()
		err = e.write(g.ins(users, u(1, "ann", "a@x")))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), `"id"`) || !strings.Contains(err.Error(), "key") {
			t.Errorf("missing key column: want a permanent error naming id and key, got %v", err)
		}
		e.exec("CREATE TABLE " + tg.Quote("nokey") + " (id INT, name VARCHAR(50), email VARCHAR(100))")
		e.cfg.Table = "nokey"
		e.open()
		err = e.write(g.ins(users, u(1, "ann", "a@x")))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), "nokey") || !strings.Contains(err.Error(), "unique index on (id)") {
			t.Errorf("no unique key: want a permanent error naming nokey and its missing unique index, got %v", err)
		}
		e.cfg.Table, e.cfg.Key, e.cfg.Truncate = "", []string{"uid"}, "fail"
		e.open()
		err = e.write(g.ev(change.Truncate, users, change.Row{}, change.Row{}))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), "public.users") || !strings.Contains(err.Error(), `truncate = "skip"`) {
			t.Errorf("truncate with truncate = fail: want a permanent error naming public.users and the fix, got %v", err)
		}
		e.cfg.Truncate = ""
		if _, err := tg.New(build, tg.block(e.dsn, dsl.TableSink{Mode: "update"})); !engine.IsPermanent(err) || !strings.Contains(err.Error(), "columns") {
			t.Errorf("update without columns: want a permanent error about columns, got %v", err)
		}
		e.cfg = dsl.TableSink{Mode: "update", Table: "nokey", Key: []string{"id"}, Columns: []string{"id", "name"}}
		e.open()
		err = e.write(g.upd(users, change.Row{}, u(1, "ann", "a@x")))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), `"id"`) || !strings.Contains(err.Error(), "part of the key") {
			t.Errorf("update of a key column: want a permanent error naming id, got %v", err)
		}
	}},
	{"a lost connection loses the open transaction, not committed rows", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")))
		e.flush()
		e.mustWrite(g.ins(users, u(2, "ben", "b@x")))
		e.exec(tg.KillOthers)
		err := e.sink.Write(ctx(t), []change.Event{g.ins(users, u(3, "cid", "c@x"))})
		if err == nil {
			_, err = e.sink.Flush(ctx(t), change.Checkpoint{{Source: "src"}: {Source: "src", Offset: g.off}})
		}
		var rej *engine.RejectError
		if err == nil || engine.IsPermanent(err) || errors.As(err, &rej) {
			t.Fatalf("after the target dropped the connection: want a retriable error, got %v", err)
		}
		// Until reopened, the sink refuses to go on as if nothing was lost.
		if err := e.sink.Write(ctx(t), []change.Event{g.ins(users, u(4, "dan", "d@x"))}); err == nil {
			t.Fatal("Write after a lost transaction succeeded without a reopen")
		}
		if _, err := e.sink.Flush(ctx(t), change.Checkpoint{{Source: "src"}: {Source: "src", Offset: g.off}}); err == nil {
			t.Fatal("Flush after a lost transaction succeeded without a reopen")
		}
		e.expectRows("users", userCols, "1|ann|a@x")
		if cp := e.open(); cp[change.Stream{Source: "src"}].Offset != 1 {
			t.Fatalf("checkpoint %v after the lost transaction, want offset 1", cp)
		}
		// The engine replays from the checkpoint.
		e.mustWrite(g.ins(users, u(2, "ben", "b@x")), g.ins(users, u(3, "cid", "c@x")))
		e.flush()
		e.expectRows("users", userCols, "1|ann|a@x", "2|ben|b@x", "3|cid|c@x")
	}},
	{"malformed events are refused, never applied or dropped silently", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		var g gen
		e.mustWrite(g.ins(users, u(1, "ann", "a@x")))
		e.flush()
		for _, c := range []struct {
			name string
			ev   change.Event
		}{
			{"insert without a row", g.ins(users, change.Row{})},
			{"insert without its key", g.ins(users, change.RowOf(map[string]any{"name": "x"}))},
			{"delete without row or key", change.Event{Op: change.Delete, Schema: "public", Table: "users", Relation: users, Position: change.Position{Source: "src", Offset: 100}}},
			{"unknown op", change.Event{Op: change.Op(42), Schema: "public", Table: "users", Position: change.Position{Source: "src", Offset: 101}}},
			{"no table", change.Event{Op: change.Insert, After: change.RowOf(map[string]any{"id": int64(5)}), Position: change.Position{Source: "src", Offset: 102}}},
			{"a value of a type no source sends", g.ins(users, change.RowOf(map[string]any{"id": int64(6), "name": struct{ X int }{1}, "email": "e"}))},
		} {
			err := e.sink.Write(ctx(t), []change.Event{c.ev})
			var rej *engine.RejectError
			switch {
			case errors.As(err, &rej), engine.IsPermanent(err):
			case c.name == "a value of a type no source sends" && err == nil:
				// Written as its text: accepted, not dropped.
			default:
				t.Errorf("%s: want a RejectError or a permanent error, got %v", c.name, err)
			}
			e.open()
		}
		e.expectRows("users", []string{"id"}, "1")
	}},
	{"a target outage loses the open transaction, and the sink resumes after it", func(t *testing.T, tg Target) {
		dsn, down, up := tg.Outage(t)
		s, err := tg.New(build, tg.block(dsn, dsl.TableSink{AutoCreate: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.Open(ctx(t), nil); err != nil {
			t.Fatal(err)
		}
		var g gen
		first := g.ins(users, u(1, "ann", "a@x"))
		cp := change.Checkpoint{}
		if err := s.Write(ctx(t), []change.Event{first}); err != nil {
			t.Fatal(err)
		}
		cp.Advance(first.Position)
		if _, err := s.Flush(ctx(t), cp.Clone()); err != nil {
			t.Fatal(err)
		}
		second := g.ins(users, u(2, "ben", "b@x"))
		if err := s.Write(ctx(t), []change.Event{second}); err != nil {
			t.Fatal(err)
		}
		down()
		next := cp.Clone()
		next.Advance(second.Position)
		_, err = s.Flush(ctx(t), next)
		if err == nil || engine.IsPermanent(err) {
			t.Fatalf("Flush during the outage: want a retriable error, got %v", err)
		}
		if _, err := s.Open(ctx(t), nil); err != nil && engine.IsPermanent(err) {
			t.Fatalf("Open during the outage failed permanently: %v", err)
		}
		up()
		got, err := s.Open(ctx(t), nil)
		if err != nil {
			t.Fatalf("Open after the outage: %v", err)
		}
		if fmt.Sprint(got) != fmt.Sprint(cp) {
			t.Fatalf("checkpoint after the outage %v, want %v", got, cp)
		}
		if err := s.Write(ctx(t), []change.Event{second}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Flush(ctx(t), next); err != nil {
			t.Fatal(err)
		}
		db, err := tg.Open(dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRowContext(ctx(t), "SELECT COUNT(*) FROM "+tg.Quote("users")).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%d rows after the outage (%v), want 2", n, err)
		}
	}},
	{"the DSN password never appears in errors", func(t *testing.T, tg Target) {
		const secret = "Sup3rS3cretPw"
		s, err := tg.New(build, tg.block(tg.BadDSN(secret), dsl.TableSink{}))
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("New error shows the password: %v", err)
			}
			return
		}
		_, err = s.Open(ctx(t), nil)
		if err == nil {
			t.Fatal("Open with an unreachable DSN succeeded")
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("Open error shows the password: %v", err)
		}
		// An unreachable target is an outage to wait out, not a reason
		// to stop the pipeline.
		if engine.IsPermanent(err) {
			t.Fatalf("Open of an unreachable target failed permanently: %v", err)
		}
	}},
}

// Run runs the conformance suite against tg.
func Run(t *testing.T, tg Target) {
	for _, c := range slices.Concat(cases, fidelityCases, exactCases, ddlCases) {
		t.Run(c.name, func(t *testing.T) { c.run(t, tg) })
	}
}

// count reads the number of rows of table in a separate connection.
func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.db.QueryRowContext(ctx(e.t), "SELECT COUNT(*) FROM "+e.tg.Quote(table)).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// versions reads the row versions of table by id; nil where the target
// has none to read.
func (e *env) versions(table string) []string {
	if e.tg.RowVersion == "" {
		return nil
	}
	var out []string
	rs, err := e.db.QueryContext(ctx(e.t), "SELECT "+e.tg.RowVersion+" FROM "+e.tg.Quote(table)+" ORDER BY id")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var v string
		if err := rs.Scan(&v); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// bool is how the target's boolean reads as text.
func (tg Target) bool(b bool) string {
	switch {
	case tg.Name == "mysql" && b:
		return "1"
	case tg.Name == "mysql":
		return "0"
	case b:
		return "true"
	}
	return "false"
}

// time is how a UTC timestamp reads as text.
func (tg Target) time(s string) string {
	if tg.Name == "mysql" {
		return s
	}
	return s + "+00"
}
