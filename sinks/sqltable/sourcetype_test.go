package sqltable

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseSourceType(t *testing.T) {
	for _, c := range []struct {
		in   string
		want SourceType
	}{
		{"integer", SourceType{Base: "integer"}},
		{"int4", SourceType{Base: "integer"}},
		{"numeric(12,2)", SourceType{Base: "numeric", Args: []int{12, 2}}},
		{"character varying(40)", SourceType{Base: "character varying", Args: []int{40}}},
		{"varchar(40)", SourceType{Base: "character varying", Args: []int{40}}},
		{"timestamp(3) with time zone", SourceType{Base: "timestamp with time zone", Args: []int{3}}},
		{"timestamptz", SourceType{Base: "timestamp with time zone"}},
		{"time without time zone", SourceType{Base: "time"}},
		{"text[]", SourceType{Base: "text", Array: true}},
		{"_int4", SourceType{Base: "integer", Array: true}},
		{"numeric(10,2)[]", SourceType{Base: "numeric", Args: []int{10, 2}, Array: true}},
		{"Mood", SourceType{Base: "mood"}},
		{"", SourceType{}},
	} {
		got := ParseSourceType(c.in)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("ParseSourceType(%q) = %+v, want %+v", c.in, got, c.want)
		}
	}
	if ParseSourceType("mood").Builtin() || !ParseSourceType("jsonb").Builtin() {
		t.Error("Builtin: enums are not built in, jsonb is")
	}
}

func TestWidens(t *testing.T) {
	for _, c := range []struct {
		from, to string
		want     bool
	}{
		{"integer", "bigint", true}, {"smallint", "integer", true}, {"bigint", "integer", false},
		{"real", "real", true}, {"real", "double precision", true}, {"double precision", "real", false},
		{"character varying(5)", "character varying(50)", true}, {"character varying(50)", "character varying(5)", false},
		{"character varying(5)", "character varying", true}, {"character varying(5)", "text", true}, {"text", "character varying(5)", false},
		{"numeric(10,2)", "numeric(12,2)", true}, {"numeric(10,2)", "numeric(10,3)", false}, {"numeric(10,2)", "numeric(12,3)", true},
		{"numeric(10,2)", "numeric", true}, {"numeric", "numeric(10,2)", false},
		{"integer", "numeric(20,0)", true}, {"integer", "numeric(12,2)", false}, {"integer", "text", true},
		{"integer", "boolean", false}, {"text", "integer", false}, {"integer[]", "bigint[]", false},
		{"character(3)", "character(3)", true}, {"character(3)", "character(4)", false},
	} {
		if got := widens(ParseSourceType(c.from), ParseSourceType(c.to)); got != c.want {
			t.Errorf("widens(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

func TestConstDefault(t *testing.T) {
	d := quoteOnly{}
	for _, c := range []struct{ expr, want string }{
		{"'new'::text", "'new'"}, {"'it''s'::character varying", "'it''s'"}, {"42", "42"}, {"(-1)", "-1"},
		{"'-1'::integer", "'-1'"}, {"1.50", "1.50"}, {"true", "TRUE"}, {"NULL::integer", "NULL"},
		{"'{}'::jsonb", "'{}'"}, {"'2020-01-01'::date", "'2020-01-01'"},
		{"now()", ""}, {"nextval('t_id_seq'::regclass)", ""}, {"CURRENT_TIMESTAMP", ""}, {"('a'::text || 'b'::text)", ""},
	} {
		got, ok := constDefault(d, c.expr)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("constDefault(%q) = %q, %v; want %q", c.expr, got, ok, c.want)
		}
	}
}

// quoteOnly is a Dialect whose Literal is all constDefault uses.
type quoteOnly struct{ Dialect }

func (quoteOnly) Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
