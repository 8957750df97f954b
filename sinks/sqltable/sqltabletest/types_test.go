package sqltabletest

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// TestTypeMappingDocIsTested keeps docs/type-mapping.md and the suite in
// step: every PostgreSQL type the mapping table names is a column of the
// auto_create case (typeCases), which writes a value of it into both
// targets and reads it back as the target renders it (numerics beyond
// DECIMAL and arrays of every element type have exactCases besides). A
// type added to the page without a case fails here.
func TestTypeMappingDocIsTested(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/type-mapping.md")
	if err != nil {
		t.Fatal(err)
	}
	covered := map[string]bool{}
	for _, c := range typeCases {
		covered[sqltable.ParseSourceType(c.typ).Base] = true
	}
	// Words in the first column that are not types.
	prose := map[string]bool{"a column that is NULL with no schema": true, "enums, domains, any other type": true}
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
		first := strings.TrimSpace(strings.Split(line, "|")[1])
		rows++
		if prose[first] {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(first, -1) {
			base := sqltable.ParseSourceType(m[1])
			if !covered[base.Base] {
				t.Errorf("docs/type-mapping.md names %s (row %q), which no case of the suite writes: add it to typeCases", m[1], first)
			}
		}
	}
	if rows < 20 {
		t.Fatalf("read %d rows of the mapping table: the page's layout changed", rows)
	}
}
