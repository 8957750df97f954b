package sqltabletest

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// typeCase is one source column of the auto_create test: its source type
// (and TypeDef, for the types the source describes), the value the
// source sends, how each target reads it back as text, and the type each
// creates: MySQL's as ColumnType writes it (docs/type-mapping.md's
// spelling), PostgreSQL's as format_type prints it ("" means the
// source's type itself).
type typeCase struct {
	col, typ string
	val      any
	mysql    string
	postgres string
	myType   string
	pgType   string
	def      *change.TypeDef
}

var (
	moodDef     = &change.TypeDef{Kind: change.TypeEnum, Schema: "public", Name: "mood", Labels: []string{"sad", "happy"}}
	positiveDef = &change.TypeDef{Kind: change.TypeDomain, Schema: "public", Name: "positive_int", Base: "integer", Checks: []string{"CHECK ((VALUE > 0))"}}
	addressDef  = &change.TypeDef{Kind: change.TypeOther, Schema: "public", Name: "address"}
	rangeDef    = &change.TypeDef{Kind: change.TypeRange, Schema: "public", Name: "floatrange", Base: "double precision"}
)

var typeCases = []typeCase{
	{"c_smallint", "smallint", int64(-7), "-7", "-7", "SMALLINT", "", nil},
	{"c_integer", "integer", int64(2147483647), "2147483647", "2147483647", "INT", "", nil},
	{"c_bigint", "bigint", int64(9007199254740993), "9007199254740993", "9007199254740993", "BIGINT", "", nil},
	{"c_numeric", "numeric(12,2)", change.Numeric("1234.50"), "1234.50", "1234.50", "DECIMAL(12,2)", "", nil},
	{"c_numeric_free", "numeric", change.Numeric("3.25"), "3.250000000000000000000000000000", "3.25", "DECIMAL(65,30)", "", nil},
	{"c_real", "real", 1.5, "1.5", "1.5", "FLOAT", "", nil},
	{"c_double", "double precision", 2.25, "2.25", "2.25", "DOUBLE", "", nil},
	{"c_text", "text", "héllo ☃", "héllo ☃", "héllo ☃", "LONGTEXT", "", nil},
	{"c_varchar", "character varying(20)", "abc", "abc", "abc", "VARCHAR(20)", "", nil},
	{"c_char", "character(3)", "xy", "xy", "xy", "CHAR(3)", "", nil},
	{"c_bool", "boolean", true, "1", "true", "BOOLEAN", "", nil},
	{"c_date", "date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), "2024-02-29", "2024-02-29", "DATE", "", nil},
	{"c_time", "time without time zone", "13:14:15.5", "13:14:15.500000", "13:14:15.5", "TIME(6)", "", nil},
	{"c_timestamp", "timestamp without time zone", time.Date(2024, 1, 2, 3, 4, 5, 123456000, time.UTC), "2024-01-02 03:04:05.123456", "2024-01-02 03:04:05.123456", "DATETIME(6)", "", nil},
	{"c_timestamptz", "timestamp with time zone", time.Date(2024, 1, 2, 5, 4, 5, 0, time.FixedZone("CEST", 2*3600)), "2024-01-02 03:04:05.000000", "2024-01-02 03:04:05+00", "DATETIME(6)", "", nil},
	{"c_timetz", "time with time zone", "13:14:15+02", "13:14:15+02", "13:14:15+02", "VARCHAR(32)", "", nil},
	{"c_money", "money", "$12.50", "$12.50", "$12.50", "LONGTEXT", "", nil},
	{"c_interval", "interval", "1 day 02:00:00", "1 day 02:00:00", "1 day 02:00:00", "VARCHAR(255)", "", nil},
	{"c_uuid", "uuid", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "CHAR(36)", "", nil},
	{"c_json", "json", change.JSON(`{"a": 1}`), `{"a": 1}`, `{"a": 1}`, "JSON", "", nil},
	{"c_jsonb", "jsonb", change.JSON(`{"b":[1,2]}`), `{"b":[1,2]}`, `{"b": [1, 2]}`, "JSON", "", nil},
	{"c_bytea", "bytea", []byte{0, 1, 2, 255}, "\x00\x01\x02\xff", `\x000102ff`, "LONGBLOB", "", nil},
	{"c_int_array", "integer[]", []any{int64(1), int64(2)}, "[1,2]", "{1,2}", "JSON", "", nil},
	{"c_text_array", "text[]", []any{"a", "b c", nil}, `["a","b c",null]`, `{a,"b c",NULL}`, "JSON", "", nil},
	{"c_oid", "oid", int64(4000000000), "4000000000", "4000000000", "BIGINT", "", nil},
	{"c_inet", "inet", "192.168.0.1/24", "192.168.0.1/24", "192.168.0.1/24", "LONGTEXT", "", nil},
	{"c_cidr", "cidr", "10.0.0.0/8", "10.0.0.0/8", "10.0.0.0/8", "LONGTEXT", "", nil},
	{"c_macaddr", "macaddr", "08:00:2b:01:02:03", "08:00:2b:01:02:03", "08:00:2b:01:02:03", "LONGTEXT", "", nil},
	{"c_xml", "xml", "<a>1</a>", "<a>1</a>", "<a>1</a>", "LONGTEXT", "", nil},
	{"c_tsvector", "tsvector", "'a':1 'b':2", "'a':1 'b':2", "'a':1 'b':2", "LONGTEXT", "", nil},
	{"c_int4range", "int4range", "[1,5)", "[1,5)", "[1,5)", "LONGTEXT", "", nil},
	{"c_tstzrange", "tstzrange", `["2024-01-01 00:00:00+00",)`, `["2024-01-01 00:00:00+00",)`, `["2024-01-01 00:00:00+00",)`, "LONGTEXT", "", nil},
	{"c_point", "point", "(1,2)", "(1,2)", "(1,2)", "LONGTEXT", "", nil},
	{"c_bit", "bit(3)", "101", "101", "101", "LONGTEXT", "", nil},
	{"c_enum", "mood", "happy", "happy", "happy", "ENUM('sad','happy')", "", moodDef},
	{"c_enum_array", "mood[]", []any{"sad", "happy"}, `["sad","happy"]`, "{sad,happy}", "JSON", "", moodDef},
	{"c_domain", "positive_int", int64(5), "5", "5", "INT", "", positiveDef},
	{"c_domain_array", "positive_int[]", []any{int64(5)}, "[5]", "{5}", "JSON", "", positiveDef},
	{"c_range", "floatrange", "[1.5,2.5)", "[1.5,2.5)", "[1.5,2.5)", "LONGTEXT", "", rangeDef},
	{"c_citext", "citext", "Ann", "Ann", "Ann", "LONGTEXT", "", citextDef},
	{"c_composite", "address", "(1,main)", "(1,main)", "(1,main)", "LONGTEXT", "text", addressDef},
	{"c_unknown", "mystery", "x", "x", "x", "LONGTEXT", "text", nil},
	{"c_null", "text", nil, "NULL", "NULL", "LONGTEXT", "", nil},
}

// autoCreateTypes creates a table from a source schema with every type
// of the source's list and reads each value back.
func autoCreateTypes(t *testing.T, tg Target) {
	e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
	cols := []string{"id integer key"}
	row := change.RowOf(map[string]any{"id": int64(1)})
	names := []string{"id"}
	want := []string{"1"}
	for _, c := range typeCases {
		cols = append(cols, c.col+" "+c.typ)
		row.Set(c.col, c.val)
		names = append(names, c.col)
		if tg.Name == "mysql" {
			want = append(want, c.mysql)
		} else {
			want = append(want, c.postgres)
		}
	}
	rel := relation("all_types", cols...)
	for i, c := range typeCases {
		rel.Columns[i+1].TypeDef = c.def
	}
	if tg.Name == "postgres" {
		e.exec("CREATE EXTENSION citext")
	}
	var g gen
	e.mustWrite(g.ins(rel, row))
	e.flush()
	defs := e.columnDefs("all_types")
	for _, c := range typeCases {
		got, _, _ := strings.Cut(defs[c.col], "|")
		want := c.pgType
		if want == "" {
			want = c.typ
		}
		if tg.Name == "mysql" {
			got, want = mysqlType(got), mysqlType(c.myType)
		}
		if got != want {
			t.Errorf("%s (%s): created as %s, want %s", c.col, c.typ, got, want)
		}
	}
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

var (
	intDisplayWidth = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|bigint)\([0-9]+\)`)
	charsetCollate  = regexp.MustCompile(`(?i) (character set|collate) [a-z0-9_]+`)
)

// mysqlType reads a type as MySQL's and MariaDB's catalog (COLUMN_TYPE)
// and docs/type-mapping.md's spelling both name it: lower case, without
// integer display widths, charset and collation; BOOLEAN is tinyint,
// JSON MariaDB's longtext.
func mysqlType(t string) string {
	t = strings.ToLower(charsetCollate.ReplaceAllString(t, ""))
	t, _, _ = strings.Cut(t, " check ")
	t = strings.ReplaceAll(intDisplayWidth.ReplaceAllString(t, "$1"), "', '", "','")
	switch t {
	case "boolean":
		return "tinyint"
	case "json":
		return "longtext"
	}
	return t
}
