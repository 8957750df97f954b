package sqltabletest

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// docTypeKey names a type as both the page and typeCases spell it: the
// canonical base name, "[]" for arrays.
func docTypeKey(typ string) string {
	t := sqltable.ParseSourceType(typ)
	if t.Array {
		return t.Base + "[]"
	}
	return t.Base
}

// family is a type without its modifiers ("varchar(n)" and "VARCHAR(20)"
// are both varchar, "ENUM('a','b')" is enum), as MySQL's catalog and the
// page spell it.
func family(t string) string {
	t = mysqlType(t)
	t, _, _ = strings.Cut(t, "(")
	return strings.TrimSpace(t)
}

// TestTypeMappingDocIsTested keeps docs/type-mapping.md and the suite in
// step: every PostgreSQL type the mapping table names is a column of the
// auto_create case (typeCases), which creates it on both real targets,
// checks the type each created and reads a value of it back (numerics
// beyond DECIMAL and arrays of every element type have exactCases
// besides); and the type each row documents is the one that case
// expects: the MySQL cell's first type (modifiers aside), and on
// PostgreSQL "same" (the source's own type) or the fallback type named.
// A type added to the page without a case, or a row that says otherwise
// than the case, fails here.
func TestTypeMappingDocIsTested(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/type-mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]typeCase{}
	for _, c := range typeCases {
		if _, ok := cases[docTypeKey(c.typ)]; !ok {
			cases[docTypeKey(c.typ)] = c
		}
	}
	code := regexp.MustCompile("`([^`]+)`")
	rows := 0
	inTable := false
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "| PostgreSQL source type") {
			inTable = true
			continue
		}
		if inTable && !strings.HasPrefix(line, "|") {
			break
		}
		if !inTable || strings.HasPrefix(line, "| ---") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("row %q has not three cells", line)
		}
		first, my, pg := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2]), strings.TrimSpace(cells[3])
		rows++
		myDoc := code.FindStringSubmatch(my)
		pgDoc := code.FindStringSubmatch(pg)
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			c, ok := cases[docTypeKey(m[1])]
			if !ok {
				t.Errorf("docs/type-mapping.md names %s (row %q), which no case of the suite writes: add it to typeCases", m[1], first)
				continue
			}
			if myDoc == nil || family(myDoc[1]) != family(c.myType) {
				t.Errorf("docs/type-mapping.md maps %s to %q on MySQL, the suite's %s expects %s", m[1], my, c.col, c.myType)
			}
			switch {
			case c.pgType == "" && !strings.HasPrefix(pg, "same"):
				t.Errorf("docs/type-mapping.md maps %s to %q on PostgreSQL, the suite's %s expects the source's own type (\"same\")", m[1], pg, c.col)
			case c.pgType != "" && (pgDoc == nil || pgDoc[1] != c.pgType || strings.HasPrefix(pg, "same")):
				t.Errorf("docs/type-mapping.md maps %s to %q on PostgreSQL, the suite's %s expects %s", m[1], pg, c.col, c.pgType)
			}
		}
	}
	if rows < 20 {
		t.Fatalf("read %d rows of the mapping table: the page's layout changed", rows)
	}
}
