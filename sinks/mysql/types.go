package mysql

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

var _ sqltable.SourceTypes = dialect{}

// SourceColumnType maps the source types ColumnType cannot tell by
// name: an enum becomes an ENUM of its labels in their order, compared
// byte for byte (utf8mb4_bin), or with enums = "varchar" (or labels an
// ENUM cannot keep: trailing spaces, which MySQL strips from ENUM
// members) a VARCHAR as long as the longest label; a domain maps as its
// base type does, with its CHECKs where MySQL can state them (see
// checkClause). Arrays stay JSON, other types ColumnType's text.
func (d dialect) SourceColumnType(c change.Column, key bool) (string, bool) {
	td := c.TypeDef
	if td == nil || sqltable.ParseSourceType(c.Type).Array {
		return "", false
	}
	switch td.Kind {
	case change.TypeEnum:
		return d.enumType(td.Labels, key), true
	case change.TypeDomain:
		base := change.Column{Name: c.Name, Type: td.Base, TypeDef: td.BaseDef}
		typ, ok := d.SourceColumnType(base, key)
		if !ok {
			typ = d.ColumnType(sqltable.ParseSourceType(td.Base), key)
		}
		if checks := d.domainChecks(c.Name, td); checks != "" {
			typ += checks
		}
		return typ, true
	}
	return "", false
}

// enumType is the column type of an enum with labels.
func (d dialect) enumType(labels []string, key bool) string {
	longest := 1
	asEnum := d.enums != "varchar" && len(labels) > 0 && len(labels) <= 65535
	for _, l := range labels {
		longest = max(longest, utf8.RuneCountInString(l))
		if strings.TrimRight(l, " ") != l {
			asEnum = false
		}
	}
	if asEnum {
		quoted := make([]string, len(labels))
		for i, l := range labels {
			quoted[i] = d.Literal(l)
		}
		return "ENUM(" + strings.Join(quoted, ", ") + ") CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	}
	typ := fmt.Sprintf("VARCHAR(%d)", longest)
	if key {
		return d.keyText(typ)
	}
	return typ
}

// domainChecks returns " CHECK (...)" for each CHECK of domain td (and
// of the domains it is over) that checkClause can state for column col.
func (d dialect) domainChecks(col string, td *change.TypeDef) string {
	var out string
	for ; td != nil && td.Kind == change.TypeDomain; td = td.BaseDef {
		for _, c := range td.Checks {
			if clause, ok := checkClause(d.Quote(col), c); ok {
				out += " CHECK " + clause // pg_get_constraintdef parenthesises it
			}
		}
	}
	return out
}

var (
	// checkCast matches the casts PostgreSQL writes into a CHECK's
	// literals ('a'::text, 1901::integer).
	checkCast = regexp.MustCompile(`::(?:[a-z_]+(?: [a-z_]+)*)(?:\([0-9, ]+\))?(?:\[\])?`)
	// checkToken is one token of a CHECK MySQL evaluates as PostgreSQL
	// does: VALUE, a literal, a comparison, AND/OR/NOT, IS [NOT] NULL,
	// parentheses.
	checkToken = regexp.MustCompile(`^(?:\s+|VALUE\b|'(?:[^'\\]|'')*'|-?[0-9]+(?:\.[0-9]+)?|>=|<=|<>|!=|=|<|>|\(|\)|AND\b|OR\b|NOT\b|IS\b|NULL\b|TRUE\b|FALSE\b)`)
)

// checkClause translates a domain's CHECK as pg_get_constraintdef
// renders it ("CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))") into a
// column CHECK on col, where it uses only comparisons of VALUE with
// literals; false for anything else (functions, regular expressions,
// ANY(ARRAY[...])), which MySQL would evaluate differently or not at all.
func checkClause(col, check string) (string, bool) {
	expr, ok := strings.CutPrefix(strings.TrimSpace(check), "CHECK ")
	if !ok {
		return "", false
	}
	expr = checkCast.ReplaceAllString(expr, "")
	var b strings.Builder
	for rest := expr; rest != ""; {
		m := checkToken.FindString(rest)
		if m == "" {
			return "", false
		}
		if m == "VALUE" {
			b.WriteString(col)
		} else {
			b.WriteString(m)
		}
		rest = rest[len(m):]
	}
	return strings.TrimSpace(b.String()), true
}

// TypeStatements is empty: MySQL has no types to create.
func (dialect) TypeStatements(context.Context, sqltable.Querier, change.Column) ([]string, error) {
	return nil, nil
}

// LabelStatements gives an ENUM column the source's labels it lacks (in
// the source's order, then any the target has besides), or widens a
// VARCHAR column (enums = "varchar") to the longest label.
func (d dialect) LabelStatements(_ context.Context, _ sqltable.Querier, table, col string, def sqltable.ColumnDef, c change.Column) ([]string, error) {
	td := c.TypeDef
	for td != nil && td.Kind == change.TypeDomain {
		td = td.BaseDef
	}
	if td == nil || td.Kind != change.TypeEnum || sqltable.ParseSourceType(c.Type).Array {
		return nil, nil
	}
	cur := strings.ToLower(def.Type)
	switch {
	case strings.HasPrefix(cur, "enum("):
		have := enumLabels(def.Type)
		labels := slices.Clone(td.Labels)
		missing := false
		for _, l := range labels {
			missing = missing || !slices.Contains(have, l)
		}
		if !missing {
			return nil, nil
		}
		for _, l := range have {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
		typ := d.enumType(labels, false)
		if !strings.HasPrefix(typ, "ENUM(") {
			return nil, nil
		}
		return []string{d.AlterColumn(table, col, typ, def.Nullable, def)}, nil
	case strings.HasPrefix(cur, "varchar("):
		var n int
		if _, err := fmt.Sscanf(cur, "varchar(%d)", &n); err != nil {
			return nil, nil
		}
		longest := 0
		for _, l := range td.Labels {
			longest = max(longest, utf8.RuneCountInString(l))
		}
		if longest <= n {
			return nil, nil
		}
		return []string{d.AlterColumn(table, col, fmt.Sprintf("VARCHAR(%d)", longest), def.Nullable, def)}, nil
	}
	return nil, nil
}

// enumLabels reads the labels of a COLUMN_TYPE "enum('a','b”c')".
func enumLabels(colType string) []string {
	s := colType[strings.IndexByte(colType, '(')+1:]
	var out []string
	for {
		start := strings.IndexByte(s, '\'')
		if start < 0 {
			return out
		}
		s = s[start+1:]
		var b strings.Builder
		for len(s) > 0 {
			if s[0] == '\'' {
				if len(s) > 1 && s[1] == '\'' {
					b.WriteByte('\'')
					s = s[2:]
					continue
				}
				s = s[1:]
				break
			}
			if s[0] == '\\' && len(s) > 1 {
				b.WriteByte(s[1])
				s = s[2:]
				continue
			}
			b.WriteByte(s[0])
			s = s[1:]
		}
		out = append(out, b.String())
	}
}

// GeneratedColumn is false: PostgreSQL's generation expressions are not
// MySQL's. The column is left out.
func (dialect) GeneratedColumn(change.Column) (string, bool) { return "", false }

var _ sqltable.KeyFitter = dialect{}

// keyBytes is what InnoDB counts of a key column of type typ (utf8mb4
// text four bytes a character), generously where it is not text.
func keyBytes(typ string) int {
	t := strings.ToLower(typ)
	var n int
	for _, f := range []string{"varbinary(%d)", "binary(%d)"} {
		if _, err := fmt.Sscanf(t, f, &n); err == nil {
			return n
		}
	}
	for _, f := range []string{"varchar(%d)", "char(%d)"} {
		if _, err := fmt.Sscanf(t, f, &n); err == nil {
			return 4 * n
		}
	}
	if strings.HasPrefix(t, "enum(") {
		return 2
	}
	return 32 // numbers, dates, DECIMAL(65,30) at most
}

// FitKey shares InnoDB's 3072 bytes of one index among a composite
// key's long text columns (textKey): each gets what the others leave.
func (dialect) FitKey(types []string) []string {
	long, fixed := 0, 0
	for _, t := range types {
		if t == textKey {
			long++
		} else {
			fixed += keyBytes(t)
		}
	}
	if long == 0 || (long == 1 && fixed == 0) {
		return types
	}
	share := max((3072-fixed)/long, 1)
	out := slices.Clone(types)
	for i, t := range out {
		if t == textKey {
			out[i] = fmt.Sprintf("VARBINARY(%d)", share)
		}
	}
	return out
}

var _ sqltable.TypeComparer = dialect{}

var (
	intWidth   = regexp.MustCompile(`^(tinyint|smallint|mediumint|int|bigint)\([0-9]+\)`)
	typeTail   = regexp.MustCompile(`(?i) (character set|collate) [a-z0-9_]+`)
	collateArg = regexp.MustCompile(`(?i) collate ([a-z0-9_]+)`)
)

// SameType reads COLUMN_TYPE as ColumnType writes types: integers
// without display width, BOOLEAN as tinyint(1), JSON as MariaDB's
// longtext, ENUM labels compared exactly; a collation ColumnType names
// must be the column's.
func (dialect) SameType(want string, def sqltable.ColumnDef) bool {
	if m := collateArg.FindStringSubmatch(want); m != nil && (!def.Collation.Valid || !strings.EqualFold(def.Collation.String, m[1])) {
		return false
	}
	want, _, _ = strings.Cut(want, " CHECK ")
	want = strings.ReplaceAll(typeTail.ReplaceAllString(want, ""), "', '", "','")
	have := intWidth.ReplaceAllString(strings.ToLower(def.Type), "$1")
	name, rest, _ := strings.Cut(want, "(")
	hname, hrest, _ := strings.Cut(have, "(")
	switch w := strings.ToLower(want); {
	case w == "boolean":
		return have == "tinyint(1)"
	case w == "json":
		return have == "json" || have == "longtext"
	case strings.EqualFold(name, "enum"):
		return hname == "enum" && rest == def.Type[strings.IndexByte(def.Type, '(')+1:]
	}
	return strings.EqualFold(name, hname) && strings.EqualFold(rest, hrest)
}
