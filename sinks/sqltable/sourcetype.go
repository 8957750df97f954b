package sqltable

import (
	"strconv"
	"strings"
)

// SourceType is a source column's type name (change.Column.Type) taken
// apart, so that each target can map it without parsing strings again.
type SourceType struct {
	// Base is the canonical lower-case PostgreSQL name without modifiers
	// or array brackets: "integer", "numeric", "character varying",
	// "timestamp with time zone", ... Aliases (int4, varchar, timestamptz)
	// are folded into their canonical name. A name that is not a built-in
	// type (an enum, a domain) is kept as written, lower-cased; "" means
	// unknown.
	Base string
	// Args are the type modifiers: numeric(12,2) has [12 2], varchar(40)
	// has [40].
	Args []int
	// Array reports an array type ("text[]" or "_text").
	Array bool
}

// aliases folds the spellings PostgreSQL accepts into the names
// format_type prints.
var aliases = map[string]string{
	"int2": "smallint", "smallserial": "smallint", "serial2": "smallint",
	"int": "integer", "int4": "integer", "serial": "integer", "serial4": "integer",
	"int8": "bigint", "bigserial": "bigint", "serial8": "bigint",
	"decimal": "numeric",
	"float4":  "real", "float8": "double precision", "float": "double precision",
	"bool":    "boolean",
	"varchar": "character varying", "char": "character", "bpchar": "character",
	"timestamptz": "timestamp with time zone", "timestamp without time zone": "timestamp",
	"timetz": "time with time zone", "time without time zone": "time",
}

// builtin lists the PostgreSQL types both targets map specifically;
// anything else is treated as text (see docs/type-mapping.md).
var builtin = map[string]bool{
	"smallint": true, "integer": true, "bigint": true, "numeric": true, "real": true,
	"double precision": true, "text": true, "character varying": true, "character": true,
	"boolean": true, "date": true, "time": true, "time with time zone": true, "timestamp": true,
	"timestamp with time zone": true, "interval": true, "uuid": true, "json": true,
	"jsonb": true, "bytea": true, "money": true, "inet": true, "cidr": true, "macaddr": true,
	"xml": true, "oid": true,
}

// ParseSourceType parses a PostgreSQL type name as format_type prints it,
// e.g. "numeric(12,2)", "character varying(40)", "timestamp(3) with time
// zone", "text[]", "_int4", "mood".
func ParseSourceType(s string) SourceType {
	s = strings.ToLower(strings.TrimSpace(s))
	var t SourceType
	for strings.HasSuffix(s, "[]") {
		t.Array = true
		s = strings.TrimSpace(strings.TrimSuffix(s, "[]"))
	}
	if strings.HasPrefix(s, "_") {
		t.Array = true
		s = s[1:]
	}
	if open := strings.IndexByte(s, '('); open >= 0 {
		if end := strings.IndexByte(s[open:], ')'); end > 0 {
			for _, a := range strings.Split(s[open+1:open+end], ",") {
				if n, err := strconv.Atoi(strings.TrimSpace(a)); err == nil {
					t.Args = append(t.Args, n)
				}
			}
			s = s[:open] + s[open+end+1:]
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if a, ok := aliases[s]; ok {
		s = a
	}
	t.Base = s
	return t
}

// Builtin reports whether Base is a built-in type the targets map
// specifically (as opposed to an enum, a domain or an unknown name).
func (t SourceType) Builtin() bool { return builtin[t.Base] }

// Arg returns the i-th modifier and whether it is present.
func (t SourceType) Arg(i int) (int, bool) {
	if i < len(t.Args) {
		return t.Args[i], true
	}
	return 0, false
}
