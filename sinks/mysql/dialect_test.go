package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

func TestNumericType(t *testing.T) {
	for _, c := range []struct {
		src  string
		key  bool
		want string
	}{
		{"numeric(12,2)", false, "DECIMAL(12,2)"},
		{"numeric(65,30)", false, "DECIMAL(65,30)"},
		{"numeric", false, "DECIMAL(65,30)"},
		{"numeric(40,35)", false, "VARCHAR(43)"},
		{"numeric(70,0)", false, "VARCHAR(73)"},
		{"numeric(70,0)", true, "VARCHAR(73) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"},
		{"numeric(3,5)", false, "DECIMAL(5,5)"},  // 0.00123
		{"numeric(3,-2)", false, "DECIMAL(5,0)"}, // 12300
		{"numeric(5)", false, "DECIMAL(5,0)"},
	} {
		if got := (dialect{}).ColumnType(sqltable.ParseSourceType(c.src), c.key); got != c.want {
			t.Errorf("%s (key %v): %s, want %s", c.src, c.key, got, c.want)
		}
	}
}

func TestKeyTypesCompareExactly(t *testing.T) {
	d := dialect{exact: "utf8mb4_0900_bin"} // as ForServer learns it on MySQL 8
	for _, c := range []struct{ src, want string }{
		{"text", "VARBINARY(3072)"},
		{"character varying(768)", "VARCHAR(768) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin"},
		{"character varying(769)", "VARBINARY(3072)"},
		{"character varying(40)", "VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin"},
		{"character(3)", "CHAR(3) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"},
		{"mood", "VARBINARY(3072)"}, // a name without its TypeDef
		{"integer", "INT"},
		{"bytea", "VARBINARY(255)"},
	} {
		if got := d.ColumnType(sqltable.ParseSourceType(c.src), true); got != c.want {
			t.Errorf("key %s: %s, want %s", c.src, got, c.want)
		}
	}
	if got := d.ValueType("x", true); got != "VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin" {
		t.Errorf("string key without a schema: %s", got)
	}
	if got := d.ColumnType(sqltable.ParseSourceType("text"), false); got != "LONGTEXT" {
		t.Errorf("text column outside the key: %s, want LONGTEXT with the table's collation", got)
	}
}

func TestDecimalValues(t *testing.T) {
	for _, c := range []struct {
		val     any
		colType string
		err     string // "" means accepted as the value's own digits
	}{
		{change.Numeric("1.23"), "decimal(10,2)", ""},
		{change.Numeric("1.230000"), "decimal(10,2)", ""},
		{change.Numeric("-99999999.99"), "decimal(10,2)", ""},
		{change.Numeric("00012.5"), "decimal(3,1)", ""},
		{change.Numeric("0"), "decimal(3,3)", ""},
		{change.Numeric("0.000"), "decimal(1,0)", ""},
		{change.Numeric("1.5e2"), "decimal(3,0)", ""},
		{change.Numeric("12"), "decimal(10,2) unsigned", ""},
		{change.Numeric("1.234"), "decimal(10,2)", "value 1.234 has 3 fractional digits, column is decimal(10,2); the server would round it: ALTER the column to DECIMAL(11,3)"},
		{change.Numeric("123456789.5"), "decimal(10,2)", "has 9 integer digits, column is decimal(10,2), which holds 8: ALTER the column to DECIMAL(11,2)"},
		{change.Numeric("0." + strings.Repeat("1", 35)), "decimal(65,30)", "has 35 fractional digits, column is decimal(65,30); the server would round it: ALTER the column to VARCHAR(73)"},
		{change.Numeric("1.5e-3"), "decimal(5,3)", "has 4 fractional digits"},
		{change.Numeric("NaN"), "decimal(65,30)", "value NaN cannot be stored in a decimal(65,30) column: ALTER the column to VARCHAR(68)"},
		{change.Numeric("-Infinity"), "decimal(10,2)", "cannot be stored"},
		{change.Numeric("1,5"), "decimal(10,2)", "is not a number"},
		{change.Numeric("1.234"), "varchar(43)", ""}, // text keeps every digit
		{2.5, "decimal(3,1)", ""},
		{0.125, "decimal(3,2)", "3 fractional digits"},
	} {
		got, err := (dialect{}).Value(c.val, c.colType)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%v into %s: %v", c.val, c.colType, err)
		case c.err == "" && fmt.Sprint(got) != fmt.Sprint(c.val):
			t.Errorf("%v into %s: %v, want the value's own digits", c.val, c.colType, got)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%v into %s: %v, %v; want an error containing %q", c.val, c.colType, got, err, c.err)
		}
	}
}

func TestArraysAsPostgreSQLRendersJSON(t *testing.T) {
	for _, c := range []struct {
		name string
		val  any
		want string
	}{
		{"numbers keep their digits", []any{change.Numeric("1.50"), change.Numeric("-0.000000000000000000000000000000000001"), change.Numeric("123456789012345678901234567890")}, `[1.50,-0.000000000000000000000000000000000001,123456789012345678901234567890]`},
		{"non-finite numbers are strings", []any{change.Numeric("NaN"), change.Numeric("Infinity"), math.NaN(), math.Inf(-1)}, `["NaN","Infinity","NaN","-Infinity"]`},
		{"integers, floats, booleans", []any{int64(-7), 1.5, 1e300, true, false}, `[-7,1.5,1e+300,true,false]`},
		{"bytea as hex", []any{[]byte{0, 1, 0xab}, []byte{}}, `["\\x0001ab","\\x"]`},
		{"text unescaped but for JSON", []any{`<a href="x">&</a>`, "tab\there", "☃"}, `["<a href=\"x\">&</a>","tab\there","☃"]`},
		{"nulls and nesting", []any{[]any{int64(1), nil}, []any{}, nil}, `[[1,null],[],null]`},
		{"times in ISO 8601, UTC", []any{time.Date(2024, 1, 2, 5, 4, 5, 120000000, time.FixedZone("", 2*3600)), time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)}, `["2024-01-02T03:04:05.12+00:00","2024-02-29T00:00:00+00:00"]`},
		{"json elements embedded", []any{change.JSON(`{"a": [1, 2]}`), change.JSON(`"s"`)}, `[{"a": [1, 2]},"s"]`},
		{"objects with sorted keys", map[string]any{"b": change.Numeric("2.0"), "a": []any{"x"}}, `{"a":["x"],"b":2.0}`},
	} {
		got, err := (dialect{}).Value(c.val, "longtext")
		if err != nil || got != c.want {
			t.Errorf("%s: %v, %v; want %s", c.name, got, err, c.want)
		}
	}
	if _, err := (dialect{}).Value([]any{change.JSON(`{"a":`)}, "longtext"); err == nil {
		t.Error("an invalid JSON element was accepted")
	}
}

func TestInexactCollation(t *testing.T) {
	for _, c := range []struct {
		colType, collation string
		inexact            bool
	}{
		{"varchar(255)", "utf8mb4_general_ci", true},
		{"varchar(255)", "utf8mb4_unicode_520_ci", true},
		{"varchar(255)", "utf8mb4_bin", true}, // PAD SPACE: 'abc' = 'abc '
		{"varchar(255)", "utf8mb4_nopad_general_ci", true},
		{"varchar(255)", "utf8mb4_0900_ai_ci", true},
		{"varchar(255)", "utf8mb4_0900_as_cs", true},
		{"varchar(255)", "utf8mb4_nopad_bin", false},
		{"varchar(255)", "utf8mb4_0900_bin", false},
		{"varchar(255)", "binary", false},
		{"char(3)", "utf8mb4_bin", false}, // CHAR pads, as character(n) does
		{"char(3)", "utf8mb4_general_ci", true},
	} {
		if why := (dialect{}).InexactCollation(c.colType, c.collation); (why != "") != c.inexact {
			t.Errorf("%s %s: %q, want inexact %v", c.colType, c.collation, why, c.inexact)
		}
	}
	if got, want := (dialect{}).ExactKey("`t`", "`k`", "varchar(50)"), "ALTER TABLE `t` MODIFY `k` VARCHAR(50) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL"; got != want {
		t.Errorf("ExactKey: %s, want %s", got, want)
	}
}

func TestNotDistinctComparesTextByteForByte(t *testing.T) {
	db, err := sql.Open("mysql", server.CreateDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (s VARCHAR(10) COLLATE utf8mb4_general_ci, n DECIMAL(5,2), d DATETIME(6))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES ('abc', 1.50, '2024-01-02 03:04:05'), (NULL, NULL, NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		col, where string
		param      any
		same       bool
	}{
		{"s", "s IS NOT NULL", "abc", true},
		{"s", "s IS NOT NULL", "ABC", false},
		{"s", "s IS NOT NULL", "abc ", false},
		{"s", "s IS NOT NULL", "ábc", false},
		{"s", "s IS NULL", nil, true},
		{"s", "s IS NULL", "abc", false},
		{"n", "n IS NOT NULL", "1.5", true}, // numbers compare as numbers
		{"n", "n IS NOT NULL", "1.51", false},
		{"d", "d IS NOT NULL", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), true},
	} {
		var same bool
		// As update mode compares: the values in a derived table.
		q := "SELECT " + (dialect{}).NotDistinct("t."+c.col, "v.p") + " FROM t, (SELECT ? AS p) AS v WHERE " + c.where
		if err := db.QueryRow(q, c.param).Scan(&same); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if same != c.same {
			t.Errorf("%s with %v: %v, want %v", q, c.param, same, c.same)
		}
	}
}

func TestForServerLearnsTheExactCollation(t *testing.T) {
	db, err := sql.Open("mysql", server.CreateDB(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := (dialect{}).ForServer(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	var version string
	if err := db.QueryRow("SELECT VERSION()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	want := "utf8mb4_0900_bin"
	if strings.Contains(version, "MariaDB") {
		want = "utf8mb4_nopad_bin"
	}
	if got := d.(dialect).exactCollation(); got != want {
		t.Errorf("on %s: %s, want %s", version, got, want)
	}
	// The server takes the key type it gets.
	typ := d.ColumnType(sqltable.ParseSourceType("text"), true)
	if _, err := db.Exec("CREATE TABLE k (k " + typ + " NOT NULL PRIMARY KEY)"); err != nil {
		t.Fatalf("key column %s: %v", typ, err)
	}
}

func TestRefusedNamesAreFatalWithAFix(t *testing.T) {
	for _, n := range []uint16{1059, 1102, 1103, 1166, 1280} {
		err := fmt.Errorf("create: %w", &gomysql.MySQLError{Number: n, Message: "Incorrect name 'x '"})
		if c := (dialect{}).Classify(err); c != sqltable.Fatal {
			t.Errorf("error %d: class %v, want Fatal", n, c)
		}
		if h := (dialect{}).Hint(err); !strings.Contains(h, `set table = "..."`) || !strings.Contains(h, "transform") {
			t.Errorf("error %d: hint %q, want the fix", n, h)
		}
	}
	if h := (dialect{}).Hint(&gomysql.MySQLError{Number: 1213}); h != "" {
		t.Errorf("deadlock: hint %q, want none", h)
	}
}

func TestSourceColumnType(t *testing.T) {
	rating := &change.TypeDef{Kind: change.TypeEnum, Schema: "public", Name: "mpaa_rating", Labels: []string{"G", "PG-13", "it's"}}
	year := &change.TypeDef{Kind: change.TypeDomain, Schema: "public", Name: "year", Base: "integer",
		Checks: []string{"CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))"}}
	code := &change.TypeDef{Kind: change.TypeDomain, Schema: "public", Name: "code", Base: "text",
		Checks: []string{"CHECK ((VALUE ~ '^[A-Z]+$'::text))"}}
	onEnum := &change.TypeDef{Kind: change.TypeDomain, Schema: "public", Name: "r2", Base: "mpaa_rating", BaseDef: rating,
		Checks: []string{"CHECK ((VALUE <> 'G'::mpaa_rating))"}}
	for _, c := range []struct {
		name string
		d    dialect
		col  change.Column
		key  bool
		want string
	}{
		{"enum", dialect{}, change.Column{Name: "r", Type: "mpaa_rating", TypeDef: rating}, false, "ENUM('G', 'PG-13', 'it''s') CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"},
		{"enum as varchar", dialect{enums: "varchar"}, change.Column{Name: "r", Type: "mpaa_rating", TypeDef: rating}, false, "VARCHAR(5)"},
		{"enum key as varchar", dialect{enums: "varchar"}, change.Column{Name: "r", Type: "mpaa_rating", TypeDef: rating}, true, "VARCHAR(5) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin"},
		{"domain with a CHECK", dialect{}, change.Column{Name: "y", Type: "year", TypeDef: year}, false, "INT CHECK (((`y` >= 1901) AND (`y` <= 2155)))"},
		{"domain with a regular expression", dialect{}, change.Column{Name: "c", Type: "code", TypeDef: code}, false, "LONGTEXT"},
		{"domain over an enum", dialect{}, change.Column{Name: "r", Type: "r2", TypeDef: onEnum}, false, "ENUM('G', 'PG-13', 'it''s') CHARACTER SET utf8mb4 COLLATE utf8mb4_bin CHECK ((`r` <> 'G'))"},
		{"array of an enum", dialect{}, change.Column{Name: "r", Type: "mpaa_rating[]", TypeDef: rating}, false, "JSON"},
	} {
		got, ok := c.d.SourceColumnType(c.col, c.key)
		if !ok {
			got = c.d.ColumnType(sqltable.ParseSourceType(c.col.Type), c.key)
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	if got := enumLabels("enum('G','it''s','a\\\\b')"); strings.Join(got, "|") != `G|it's|a\b` {
		t.Errorf("enumLabels: %q", got)
	}
}
