package sqltabletest

import (
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// typeCase is one source column of the auto_create test: its source type,
// the value the source sends, and how each target reads it back as text.
type typeCase struct {
	col, typ string
	val      any
	mysql    string
	postgres string
}

var typeCases = []typeCase{
	{"c_smallint", "smallint", int64(-7), "-7", "-7"},
	{"c_integer", "integer", int64(2147483647), "2147483647", "2147483647"},
	{"c_bigint", "bigint", int64(9007199254740993), "9007199254740993", "9007199254740993"},
	{"c_numeric", "numeric(12,2)", change.Numeric("1234.50"), "1234.50", "1234.50"},
	{"c_numeric_free", "numeric", change.Numeric("3.25"), "3.250000000000000000000000000000", "3.25"},
	{"c_real", "real", 1.5, "1.5", "1.5"},
	{"c_double", "double precision", 2.25, "2.25", "2.25"},
	{"c_text", "text", "héllo ☃", "héllo ☃", "héllo ☃"},
	{"c_varchar", "character varying(20)", "abc", "abc", "abc"},
	{"c_char", "character(3)", "xy", "xy", "xy"},
	{"c_bool", "boolean", true, "1", "true"},
	{"c_date", "date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2024-02-29", "2024-02-29"},
	{"c_time", "time without time zone", "13:14:15.5", "13:14:15.500000", "13:14:15.5"},
	{"c_timestamp", "timestamp without time zone", time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC), "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123456"},
	{"c_timestamptz", "timestamp with time zone", time.Date(2024, 1, 2, 5, 4, 5, 0, time.FixedZone("CEST", 2*3600)), "2024-01-02 03:04:05.000000", "2024-01-02 03:04:05+00"},
	{"c_timetz", "time with time zone", "13:14:15+02", "13:14:15+02", "13:14:15+02"},
	{"c_money", "money", "$12.50", "$12.50", "$12.50"},
	{"c_interval", "interval", "1 day 02:00:00", "1 day 02:00:00", "1 day 02:00:00"},
	{"c_uuid", "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
	{"c_json", "json", change.JSON(`{"a": 1}`), `{"a": 1}`, `{"a": 1}`},
	{"c_jsonb", "jsonb", change.JSON(`{"b":[1,2]}`), `{"b":[1,2]}`, `{"b": [1, 2]}`},
	{"c_bytea", "bytea", []byte{0, 1, 2, 255}, "\x00\x01\x02\xff", `\x000102ff`},
	{"c_int_array", "integer[]", []any{int64(1), int64(2)}, "[1,2]", "{1,2}"},
	{"c_text_array", "text[]", []any{"a", "b c", nil}, `["a","b c",null]`, `{a,"b c",NULL}`},
	{"c_oid", "oid", int64(4000000000), "4000000000", "4000000000"},
	{"c_inet", "inet", "192.168.0.1/24", "192.168.0.1/24", "192.168.0.1/24"},
	{"c_cidr", "cidr", "10.0.0.0/8", "10.0.0.0/8", "10.0.0.0/8"},
	{"c_macaddr", "macaddr", "08:00:2b:01:02:03", "08:00:2b:01:02:03", "08:00:2b:01:02:03"},
	{"c_xml", "xml", "<a>1</a>", "<a>1</a>", "<a>1</a>"},
	{"c_enum", "mood", "happy", "happy", "happy"},
	{"c_domain", "positive_int", int64(5), "5", "5"},
	{"c_null", "text", nil, "NULL", "NULL"},
}

// autoCreateTypes creates a table from a source schema with every type
// of the source's list and reads each value back.
func autoCreateTypes(t *testing.T, tg Target) {
	e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
	cols := []string{"id integer key"}
	row := change.Row{"id": int64(1)}
	names := []string{"id"}
	want := []string{"1"}
	for _, c := range typeCases {
		cols = append(cols, c.col+" "+c.typ)
		row[c.col] = c.val
		names = append(names, c.col)
		if tg.Name == "mysql" {
			want = append(want, c.mysql)
		} else {
			want = append(want, c.postgres)
		}
	}
	rel := relation("all_types", cols...)
	var g gen
	e.mustWrite(g.ins(rel, row))
	e.flush()
	got := e.rows("all_types", names...)
	if len(got) != 1 {
		t.Fatalf("got %d rows, want 1", len(got))
	}
	vals := strings.Split(got[0], "|")
	for i, n := range names {
		if i >= len(vals) || vals[i] != want[i] {
			v := "<missing>"
			if i < len(vals) {
				v = vals[i]
			}
			t.Errorf("%s: read back %q, want %q", n, v, want[i])
		}
	}
}
