package postgres

import (
	"math"
	"testing"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

func TestValue(t *testing.T) {
	ts := time.Date(2024, 2, 29, 13, 14, 15, 500000000, time.FixedZone("X", 3600))
	for _, c := range []struct {
		name    string
		v       any
		colType string
		want    any
	}{
		{"null", nil, "int4", nil},
		{"int", int64(-3), "int4", "-3"},
		{"bool", true, "bool", "true"},
		{"NaN", math.NaN(), "float8", "NaN"},
		{"-Inf", math.Inf(-1), "float8", "-Infinity"},
		{"float", 0.1, "float8", "0.1"},
		{"timestamptz in UTC", ts, "timestamptz", "2024-02-29 12:14:15.5Z"},
		{"date", ts, "date", "2024-02-29"},
		{"time", ts, "time", "12:14:15.5"},
		{"numeric", change.Numeric("1.50"), "numeric", "1.50"},
		{"json", change.JSON(`{"a":1}`), "jsonb", `{"a":1}`},
		{"array into an array column", []any{"a b", `q"x\y`, nil, []any{int64(1)}}, "_text", `{"a b","q\"x\\y",NULL,{"1"}}`},
		{"array into a json column", []any{"a", int64(1)}, "jsonb", `["a",1]`},
		{"object", map[string]any{"k": "v"}, "jsonb", `{"k":"v"}`},
	} {
		got, err := dialect{}.Value(c.v, c.colType)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: Value(%v, %q) = %#v, want %#v", c.name, c.v, c.colType, got, c.want)
		}
	}
}

func TestArrays(t *testing.T) {
	var ai sqltable.ArrayInserter = dialect{}
	for _, c := range []struct {
		colType string
		want    string
		ok      bool
	}{
		{"int4", "int4[]", true},
		{"bpchar", "bpchar[]", true},
		{"app.mood", "app.mood[]", true},
		{"_int4", "", false},
		{"app._mood", "", false},
		{"bit", "", false},
		{"", "", false},
	} {
		if got, ok := ai.ArrayType(c.colType); got != c.want || ok != c.ok {
			t.Errorf("ArrayType(%q) = %q, %v; want %q, %v", c.colType, got, ok, c.want, c.ok)
		}
	}
	p, err := ai.ArrayParam([]any{"a", nil, []byte{0, 255}, `"\`})
	if err != nil || p != `{"a",NULL,"\\x00ff","\"\\"}` {
		t.Errorf("ArrayParam = %v, %v", p, err)
	}
}
