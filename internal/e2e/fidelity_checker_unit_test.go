package e2e

import (
	"strings"
	"testing"
)

// TestNormaliseEqual: the renderings PostgreSQL (first) and MariaDB
// (second) give of one value normalise to the same text, which is want
// when want is set.
func TestNormaliseEqual(t *testing.T) {
	for _, c := range []struct {
		name      string
		kind      valueKind
		pg, mysql string
		want      string
	}{
		{"decimal scale padding", vDecimal, "1.50000", "1.500000000000000000000000000000", "1.5"},
		{"decimal integer with scale", vDecimal, "12.00", "12", "12"},
		{"decimal negative zero", vDecimal, "-0.000", "0", "0"},
		{"decimal leading zeros", vDecimal, "00012.3400", "12.34", "12.34"},
		{"decimal small", vDecimal, "0.00000000000000000000000000000000001", "1E-35", "0.00000000000000000000000000000000001"},
		{"decimal exponent", vDecimal, "1000", "1e3", "1000"},
		{"decimal many digits", vDecimal, "-12345678901234567890.12345678901234567890123456789012345", "-12345678901234567890.123456789012345678901234567890123450000", "-12345678901234567890.12345678901234567890123456789012345"},
		{"decimal NaN", vDecimal, "NaN", "NaN", "NaN"},
		{"int", vInt, "-9223372036854775808", "-9223372036854775808", "-9223372036854775808"},
		{"int beyond 2^31", vInt, "2147483648", "2147483648", "2147483648"},
		{"bool true", vBool, "true", "1", "true"},
		{"bool t", vBool, "t", "1", "true"},
		{"bool false", vBool, "f", "0", "false"},
		{"text", vText, "O'Brien \"x\" \\ ü\ttab\n", "O'Brien \"x\" \\ ü\ttab\n", "O'Brien \"x\" \\ ü\ttab\n"},
		{"text empty", vText, "", "", ""},
		{"time UTC", vTime, "2026-03-01 12:34:56.123456+00", "2026-03-01 12:34:56.123456", "2026-03-01T12:34:56.123456000Z"},
		{"time offset hours", vTime, "2026-03-01 14:34:56.5+02", "2026-03-01 12:34:56.500000", "2026-03-01T12:34:56.500000000Z"},
		{"time offset minutes", vTime, "2026-03-01 07:04:56+05:30", "2026-03-01 01:34:56.000000", "2026-03-01T01:34:56.000000000Z"},
		{"time negative offset", vTime, "2026-02-28 21:00:00-03", "2026-03-01 00:00:00", "2026-03-01T00:00:00.000000000Z"},
		{"time ISO", vTime, "2026-03-01T12:00:00Z", "2026-03-01 12:00:00", "2026-03-01T12:00:00.000000000Z"},
		{"uuid case", vUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
		{"bytes hex case", vBytes, "deadbeef00ff", "DEADBEEF00FF", "deadbeef00ff"},
		{"bytes escape form", vBytes, `\xdeadbeef`, "DEADBEEF", "deadbeef"},
		{"bytes empty", vBytes, "", "", ""},
		{"json key order and space", vJSON, `{"b": 1.50, "a": [1, "x", null, true]}`, `{"a":[1,"x",null,true],"b":1.5}`, `{"a":[1,"x",null,true],"b":1.5}`},
		{"json escapes", vJSON, `{"s": "\u00fc\"\\/\n"}`, `{"s":"ü\"\\\/\u000a"}`, `{"s":"ü\"\\/\u000a"}`},
		{"json big number exact", vJSON, `{"n": 12345678901234567890123}`, `{"n":12345678901234567890123}`, `{"n":12345678901234567890123}`},
		{"json exponent", vJSON, `[0.0000001]`, `[1e-7]`, `[0.0000001]`},
		{"json nested", vJSON, `{"o": {"z": {}, "a": []}}`, `{"o":{"a":[],"z":{}}}`, `{"o":{"a":[],"z":{}}}`},
		{"int array", vIntArray, "{1,NULL,-3}", "[1, null, -3]", "[1,null,-3]"},
		{"int array empty", vIntArray, "{}", "[]", "[]"},
		{"int array 2-D", vIntArray, "{{1,2},{3,4}}", "[[1,2],[3,4]]", "[[1,2],[3,4]]"},
		{"numeric array", vIntArray, "{1.50,NULL,-3,12345678901234567890.123456789012345678901234567890}", "[1.5, null, -3.000, 12345678901234567890.12345678901234567890123456789]",
			"[1.5,null,-3,12345678901234567890.12345678901234567890123456789]"},
		{"text array quoting", vTextArray, `{"a b",NULL,"NULL","x\"y","back\\slash",plain,"","{}","a,b"}`,
			`["a b", null, "NULL", "x\"y", "back\\slash", "plain", "", "{}", "a,b"]`,
			`["a b",null,"NULL","x\"y","back\\slash","plain","","{}","a,b"]`},
		{"text array unicode", vTextArray, `{üñí,"✓ "}`, `["üñí","\u2713 "]`, `["üñí","✓ "]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, err := normalise(c.kind, c.pg)
			if err != nil {
				t.Fatalf("normalise(%s, %q): %v", c.kind, c.pg, err)
			}
			b, err := normalise(c.kind, c.mysql)
			if err != nil {
				t.Fatalf("normalise(%s, %q): %v", c.kind, c.mysql, err)
			}
			if a != b {
				t.Errorf("normalise(%s): %q → %q but %q → %q", c.kind, c.pg, a, c.mysql, b)
			}
			if c.want != "" && a != c.want {
				t.Errorf("normalise(%s, %q) = %q, want %q", c.kind, c.pg, a, c.want)
			}
		})
	}
}

// TestNormaliseDiffers: renderings of different values never normalise
// to the same text.
func TestNormaliseDiffers(t *testing.T) {
	for _, c := range []struct {
		name string
		kind valueKind
		a, b string
	}{
		{"text case", vText, "abc", "ABC"},
		{"text trailing space", vText, "abc ", "abc"},
		{"text accent", vText, "Ábc", "Abc"},
		{"text decomposed accent", vText, "\u00c1bc", "A\u0301bc"},
		{"text line ending", vText, "a\nb", "a\r\nb"},
		{"decimal last digit", vDecimal, "1.5", "1.50000000001"},
		{"decimal rounded to float", vDecimal, "12345678901234567890123", "12345678901234567000000"},
		{"decimal rounded scale", vDecimal, "0.12345678901234567890123456789012345", "0.123456789012345678901234567890"},
		{"decimal sign", vDecimal, "-1", "1"},
		{"int 2^31", vInt, "2147483648", "2147483647"},
		{"int wrapped", vInt, "2147483648", "-2147483648"},
		{"bool", vBool, "t", "0"},
		{"time microsecond", vTime, "2026-03-01 12:34:56.123456+00", "2026-03-01 12:34:56.123457"},
		{"time offset ignored", vTime, "2026-03-01 12:00:00+02", "2026-03-01 12:00:00"},
		{"uuid digit", vUUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12"},
		{"bytes NUL vs empty", vBytes, "00", ""},
		{"bytes digit", vBytes, "DEADBEEF", "deadbeee"},
		{"json number vs string", vJSON, `{"a":1.5}`, `{"a":"1.5"}`},
		{"json null member", vJSON, `{"a":1}`, `{"a":1,"b":null}`},
		{"json float rounding", vJSON, `[12345678901234567890123]`, `[1.2345678901234568e+22]`},
		{"json array order", vJSON, `[1,2]`, `[2,1]`},
		{"json string case", vJSON, `"abc"`, `"ABC"`},
		{"int array as strings", vIntArray, "{1,2}", `["1","2"]`},
		{"int array order", vIntArray, "{1,2}", "[2,1]"},
		{"numeric array as strings", vIntArray, "{1.50}", `["1.50"]`},
		{"numeric array rounded", vIntArray, "{12345678901234567890.1234567890123}", `[12345678901234567000]`},
		{"text array NULL vs 'NULL'", vTextArray, "{NULL}", `["NULL"]`},
		{"text array comma", vTextArray, `{"a,b"}`, `["a","b"]`},
		{"text array trailing space", vTextArray, `{"a "}`, `["a"]`},
		{"text array nesting", vTextArray, `{{a}}`, `["a"]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			x, errx := normalise(c.kind, c.a)
			y, erry := normalise(c.kind, c.b)
			if errx == nil && erry == nil && x == y {
				t.Errorf("normalise(%s) maps %q and %q both to %q", c.kind, c.a, c.b, x)
			}
		})
	}
}

// TestNormaliseRefuses: text that is no rendering of a value of the kind
// is an error, never a guess.
func TestNormaliseRefuses(t *testing.T) {
	for _, c := range []struct {
		kind valueKind
		s    string
	}{
		{vDecimal, "1.2.3"},
		{vDecimal, "abc"},
		{vDecimal, ""},
		{vDecimal, "."},
		{vInt, "0x10"},
		{vBool, "yes"},
		{vTime, "tomorrow"},
		{vTime, "2026-13-01 00:00:00"},
		{vUUID, "not-a-uuid"},
		{vUUID, "a0eebc999c0b4ef8bb6d6bb9bd380a1"},
		{vBytes, "abc"},
		{vBytes, "zz"},
		{vJSON, "{"},
		{vJSON, "1 2"},
		{vJSON, "{'a':1}"},
		{vIntArray, "{1,2"},
		{vIntArray, "{a}"},
		{vIntArray, `{1,"2}`},
		{vIntArray, "{1},"},
		{vIntArray, `{"x":1}`},
		{vTextArray, "{a,}"},
		{vTextArray, "abc"},
	} {
		if got, err := normalise(c.kind, c.s); err == nil {
			t.Errorf("normalise(%s, %q) = %q, want an error", c.kind, c.s, got)
		}
	}
}

// TestDifferAt: two long texts that share their first bytes are shown
// from where they differ.
func TestDifferAt(t *testing.T) {
	a := strings.Repeat("ab", 100) + "X" + strings.Repeat("c", 100)
	b := strings.Repeat("ab", 100) + "Y" + strings.Repeat("c", 100)
	if got := differAt(a, b, 120); !strings.Contains(got, "byte 200") || !strings.Contains(got, "X") || !strings.Contains(got, "Y") {
		t.Errorf("differAt = %q", got)
	}
	if got := differAt("abc", "abd", 120); got != "" {
		t.Errorf("differAt of short texts = %q, want nothing (showText shows them whole)", got)
	}
	if got := differAt(a, a[:150], 120); !strings.Contains(got, "byte 150") {
		t.Errorf("differAt of a prefix = %q", got)
	}
}
