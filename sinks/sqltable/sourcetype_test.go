package sqltable

import (
	"fmt"
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
