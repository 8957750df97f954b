package sqltabletest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// exactCases check that values and keys arrive exactly: text keys that
// differ only by case, trailing space or accent stay distinct rows,
// numerics are stored exactly or refused, arrays keep their elements'
// types.
var exactCases = []testCase{
	{"text keys differing by case, trailing space or accent stay distinct rows", func(t *testing.T, tg Target) {
		run := func(t *testing.T, e *env) {
			var g gen
			e.mustWrite(g.ins(codes, code("abc", "1")), g.ins(codes, code("ABC", "2")),
				g.ins(codes, code("abc ", "3")), g.ins(codes, code("Ábc", "4")))
			e.flush()
			e.expectSorted("codes", codeCols, "ABC|2", "abc|1", "abc |3", "Ábc|4")
			// Each change hits only its own row: an update, a delete and a
			// key change whose old and new keys differ only by case.
			e.mustWrite(g.upd(codes, code("ABC", "2"), code("ABC", "two")),
				g.del(codes, code("abc ", "3")),
				g.upd(codes, code("Ábc", "4"), code("ábc", "four")))
			e.flush()
			e.expectSorted("codes", codeCols, "ABC|two", "abc|1", "ábc|four")
		}
		t.Run("auto-created", func(t *testing.T) { run(t, newEnv(t, tg, dsl.TableSink{AutoCreate: true})) })
		t.Run("pre-created with an exact collation", func(t *testing.T) {
			e := newEnv(t, tg, dsl.TableSink{})
			collate := ""
			if tg.Name == "mysql" {
				collate = " CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"
			}
			e.exec("CREATE TABLE " + tg.Quote("codes") + " (code VARCHAR(50)" + collate + " NOT NULL PRIMARY KEY, v VARCHAR(50) NOT NULL)")
			run(t, e)
		})
	}},
	{"update mode writes a change of case or trailing space only", func(t *testing.T, tg Target) {
		// The target's column has the server's default collation, which
		// on MySQL calls 'ann' and 'Ann ' equal.
		e := newEnv(t, tg, dsl.TableSink{Mode: "update", Columns: []string{"name"}})
		e.exec("CREATE TABLE " + tg.Quote("people") + " (id INT PRIMARY KEY, name VARCHAR(50), born DATE)")
		e.exec("INSERT INTO " + tg.Quote("people") + " (id, name, born) VALUES (1, 'ann', '2000-01-01'), (2, 'ben', '2000-01-02'), (3, 'cid', '2000-01-03')")
		people := relation("people", "id integer key", "name text")
		var g gen
		e.mustWrite(g.upd(people, change.Row{}, change.RowOf(map[string]any{"id": int64(1), "name": "Ann"})),
			g.upd(people, change.Row{}, change.RowOf(map[string]any{"id": int64(2), "name": "ben "})),
			g.upd(people, change.Row{}, change.RowOf(map[string]any{"id": int64(3), "name": "cid"})))
		e.flush()
		e.expectRows("people", []string{"id", "name"}, "1|Ann", "2|ben ", "3|cid")
	}},
	{"numerics beyond DECIMAL are stored exactly, never rounded", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		nums := relation("nums", "id integer key", "n40 numeric(40,35)", "n70 numeric(70,0)", "free numeric", "tiny numeric(3,5)")
		const (
			v40 = "12345.12345678901234567890123456789012345"
			v70 = "1234567890123456789012345678901234567890123456789012345678901234567890"
		)
		var g gen
		e.mustWrite(g.ins(nums, change.RowOf(map[string]any{"id": int64(1), "n40": change.Numeric(v40), "n70": change.Numeric(v70),
			"free": change.Numeric("3.25"), "tiny": change.Numeric("0.00123")})),
			g.ins(nums, change.RowOf(map[string]any{"id": int64(2), "n40": change.Numeric("-" + v40), "n70": change.Numeric("-" + v70),
				"free": change.Numeric("-12345678901234567890123456789012345.123456789012345678901234567891"), "tiny": change.Numeric("-0.00999")})))
		e.flush()
		cols := []string{"id", "n40", "n70", "free", "tiny"}
		switch tg.Name {
		case "mysql":
			// Unconstrained numeric is DECIMAL(65,30), which shows its 30
			// places; the value is the source's.
			e.expectRows("nums", cols,
				"1|"+v40+"|"+v70+"|3.250000000000000000000000000000|0.00123",
				"2|-"+v40+"|-"+v70+"|-12345678901234567890123456789012345.123456789012345678901234567891|-0.00999")
		default:
			e.expectRows("nums", cols,
				"1|"+v40+"|"+v70+"|3.25|0.00123",
				"2|-"+v40+"|-"+v70+"|-12345678901234567890123456789012345.123456789012345678901234567891|-0.00999")
		}
	}},
	{"unconstrained numerics that DECIMAL(65,30) cannot hold are refused on MySQL", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		nums := relation("nums", "id integer key", "free numeric")
		var g gen
		e.mustWrite(g.ins(nums, change.RowOf(map[string]any{"id": int64(1), "free": change.Numeric("1.5")})))
		e.flush()
		for _, c := range []struct{ val, why string }{
			{"0." + strings.Repeat("0", 30) + "1", "31 fractional digits"},
			{"1" + strings.Repeat("0", 35), "36 integer digits"},
			{"NaN", "NaN"},
		} {
			ev := g.ins(nums, change.RowOf(map[string]any{"id": int64(2), "free": change.Numeric(c.val)}))
			err := e.write(ev)
			if tg.Name == "postgres" {
				if err != nil {
					t.Fatalf("%s: %v", c.val, err)
				}
				e.flush()
				e.expectRows("nums", []string{"id", "free"}, "1|1.5", "2|"+c.val)
				continue
			}
			if !rejects(err, ev) || !strings.Contains(err.Error(), c.why) || !strings.Contains(err.Error(), `"free"`) || !strings.Contains(err.Error(), "ALTER") {
				t.Errorf("%s: want a reject naming column free, %q and an ALTER, got %v", c.val, c.why, err)
			}
			e.pending = e.pending[:len(e.pending)-1] // dead-lettered
		}
		e.flush()
		if tg.Name == "mysql" {
			e.expectRows("nums", []string{"id", "free"}, "1|1.500000000000000000000000000000")
		}
	}},
	{"a value with more places than a pre-created DECIMAL column is refused", func(t *testing.T, tg Target) {
		// PostgreSQL's numeric(10,2) rounds on input as MySQL does, with
		// no error either.
		e := newEnv(t, tg, dsl.TableSink{})
		e.exec("CREATE TABLE " + tg.Quote("prices") + " (id INT PRIMARY KEY, price DECIMAL(10,2) NOT NULL)")
		prices := relation("prices", "id integer key", "price numeric")
		var g gen
		ok1 := g.ins(prices, change.RowOf(map[string]any{"id": int64(1), "price": change.Numeric("1.230")})) // trailing zero: exact
		bad := g.ins(prices, change.RowOf(map[string]any{"id": int64(2), "price": change.Numeric("1.234")}))
		ok2 := g.ins(prices, change.RowOf(map[string]any{"id": int64(3), "price": change.Numeric("-99999999.99")}))
		err := e.write(ok1, bad, ok2)
		colType := map[string]string{"mysql": "decimal(10,2)", "postgres": "numeric(10,2)"}[tg.Name]
		if !rejects(err, bad) || !strings.Contains(err.Error(), "3 fractional digits") || !strings.Contains(err.Error(), colType) || !strings.Contains(err.Error(), `"price"`) {
			t.Fatalf("want a reject of 1.234 naming price, 3 fractional digits and %s, got %v", colType, err)
		}
		e.pending = e.pending[:1]
		e.mustWrite(ok2)
		tooBig := g.ins(prices, change.RowOf(map[string]any{"id": int64(4), "price": change.Numeric("123456789.5")}))
		// MySQL's message is sluice's; PostgreSQL's own says "numeric field overflow".
		overflow := map[string]string{"mysql": "9 integer digits", "postgres": "numeric field overflow"}[tg.Name]
		if err := e.write(tooBig); !rejects(err, tooBig) || !strings.Contains(err.Error(), overflow) {
			t.Fatalf("want a reject of 123456789.5 saying %q, got %v", overflow, err)
		}
		e.pending = e.pending[:len(e.pending)-1]
		e.flush()
		e.expectRows("prices", []string{"id", "price"}, "1|1.23", "3|-99999999.99")
	}},
	{"arrays keep their elements' types", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		arrs := relation("arrs", "id integer key", "nums numeric[]", "txts text[]", "grid integer[]", "flts double precision[]", "stamps timestamp with time zone[]")
		var g gen
		e.mustWrite(g.ins(arrs, change.RowOf(map[string]any{"id": int64(1),
			"nums":   []any{change.Numeric("1.50"), nil, change.Numeric("-3"), change.Numeric("12345678901234567890.123456789012345678901234567890"), change.Numeric("NaN")},
			"txts":   []any{"a", nil, `b<&>"c`, "é"},
			"grid":   []any{[]any{int64(1), int64(2)}, []any{int64(3), nil}},
			"flts":   []any{1.5, nil},
			"stamps": []any{time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC), nil},
		})))
		e.flush()
		cols := []string{"id", "nums", "txts", "grid", "flts", "stamps"}
		if tg.Name == "mysql" {
			e.expectRows("arrs", cols, `1|[1.50,null,-3,12345678901234567890.123456789012345678901234567890,"NaN"]|["a",null,"b<&>\"c","é"]|[[1,2],[3,null]]|[1.5,null]|["2024-01-02T03:04:05.123456+00:00",null]`)
		} else {
			e.expectRows("arrs", cols, `1|{1.50,NULL,-3,12345678901234567890.123456789012345678901234567890,NaN}|{a,NULL,"b<&>\"c",é}|{{1,2},{3,NULL}}|{1.5,NULL}|{"2024-01-02 03:04:05.123456+00",NULL}`)
		}
	}},
	{"bytea arrays keep their bytes", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		arrs := relation("arrs", "id integer key", "bins bytea[]")
		var g gen
		e.mustWrite(g.ins(arrs, change.RowOf(map[string]any{"id": int64(1), "bins": []any{[]byte{1, 2}, nil, []byte{0xff}, []byte{}}})))
		e.flush()
		want := map[string]string{"mysql": `1|["\\x0102",null,"\\xff","\\x"]`, "postgres": `1|{"\\x0102",NULL,"\\xff","\\x"}`}[tg.Name]
		e.expectRows("arrs", []string{"id", "bins"}, want)
	}},
	{"a name the target refuses fails the pipeline, not a retry loop", func(t *testing.T, tg Target) {
		long := strings.Repeat("x", 70)
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Table: long})
		var g gen
		err := e.write(g.ins(users, u(1, "ann", "a@x")))
		if !engine.IsPermanent(err) || !strings.Contains(err.Error(), long) {
			t.Errorf("table name of 70 characters: want a permanent error naming it, got %v", err)
		}
		// A column name MySQL refuses (trailing space); PostgreSQL takes it.
		e.cfg.Table = ""
		e.open()
		spaced := relation("spaced", "id integer key")
		spaced.Columns = append(spaced.Columns, change.Column{Name: "name ", Type: "text"})
		err = e.write(g.ins(spaced, change.RowOf(map[string]any{"id": int64(1), "name ": "ann"})))
		var rej *engine.RejectError
		switch {
		case tg.Name == "mysql" && (!engine.IsPermanent(err) || errors.As(err, &rej) || !strings.Contains(err.Error(), "name ")):
			t.Errorf("column name with a trailing space: want a permanent error naming it, got %v", err)
		case tg.Name == "postgres" && err != nil:
			t.Errorf("column name with a trailing space: %v", err)
		}
	}},
}

var codes = relation("codes", "code text key", "v text")

var codeCols = []string{"code", "v"}

func code(c, v string) change.Row { return change.RowOf(map[string]any{"code": c, "v": v}) }

// expectSorted is expectRows with the rows sorted byte for byte, not in
// the target collation's order.
func (e *env) expectSorted(table string, cols []string, want ...string) {
	e.t.Helper()
	got := e.rows(table, cols...)
	slices.Sort(got)
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		e.t.Errorf("%s rows:\n got %q\nwant %q", table, got, want)
	}
}
