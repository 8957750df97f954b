package sqltabletest

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// ddlColumn is one column of the films table of the DDL cases: the
// source column, the value of the first row, and what each target
// creates: PostgreSQL's format_type (the source's own) and MySQL's
// COLUMN_TYPE ("" for a column MySQL does not get; MariaDB's JSON is a
// LONGTEXT with a json_valid CHECK), with MySQL's text of the value.
type ddlColumn struct {
	col      change.Column
	val      any
	pgType   string
	myType   string
	myText   string
	pgNotNil bool // PostgreSQL creates it NOT NULL
}

var (
	yearDomain = &change.TypeDef{Kind: change.TypeDomain, Schema: "public", Name: "year", Base: "integer",
		Checks: []string{"CHECK (((VALUE >= 1901) AND (VALUE <= 2155)))"}}
	ratingLabels = []string{"G", "PG", "PG-13", "R"}
	citextDef    = &change.TypeDef{Kind: change.TypeExtension, Schema: "public", Name: "citext", Extension: "citext"}
)

func ratingEnum(labels ...string) *change.TypeDef {
	return &change.TypeDef{Kind: change.TypeEnum, Schema: "public", Name: "mpaa_rating", Labels: labels}
}

// ddlColumns is the films table: a domain with a CHECK, an enum, arrays
// of both, full-text, range, geometric, network and money types, an
// extension's type, NOT NULL columns with DEFAULTs and a generated one.
func ddlColumns(rating *change.TypeDef) []ddlColumn {
	return []ddlColumn{
		{change.Column{Name: "film_id", Type: "integer", Key: true, NotNull: true}, int64(1), "integer", "int(11)", "1", true},
		{change.Column{Name: "title", Type: "character varying(255)", NotNull: true, Default: "'untitled'::character varying"}, "Academy Dinosaur", "character varying(255)", "varchar(255)", "Academy Dinosaur", true},
		{change.Column{Name: "release_year", Type: "year", TypeDef: yearDomain}, int64(2006), "year", "int(11)", "2006", false},
		{change.Column{Name: "rating", Type: "mpaa_rating", NotNull: true, Default: "'G'::mpaa_rating", TypeDef: rating}, "PG", "mpaa_rating", "enum('G','PG','PG-13','R')", "PG", true},
		{change.Column{Name: "ratings", Type: "mpaa_rating[]", TypeDef: rating}, []any{"G", "R"}, "mpaa_rating[]", "longtext", `["G","R"]`, false},
		{change.Column{Name: "years", Type: "year[]", TypeDef: yearDomain}, []any{int64(1999), int64(2001)}, "year[]", "longtext", "[1999,2001]", false},
		{change.Column{Name: "fulltext", Type: "tsvector"}, "'academi':1 'dinosaur':2", "tsvector", "longtext", "'academi':1 'dinosaur':2", false},
		{change.Column{Name: "lengths", Type: "int4range"}, "[90,120)", "int4range", "longtext", "[90,120)", false},
		{change.Column{Name: "showing", Type: "tstzrange"}, `["2024-01-01 00:00:00+00","2024-02-01 00:00:00+00")`, "tstzrange", "longtext", `["2024-01-01 00:00:00+00","2024-02-01 00:00:00+00")`, false},
		{change.Column{Name: "seat", Type: "point"}, "(1,2)", "point", "longtext", "(1,2)", false},
		{change.Column{Name: "ip", Type: "inet"}, "192.168.0.1/24", "inet", "longtext", "192.168.0.1/24", false},
		{change.Column{Name: "mac", Type: "macaddr"}, "08:00:2b:01:02:03", "macaddr", "longtext", "08:00:2b:01:02:03", false},
		{change.Column{Name: "price", Type: "money", NotNull: true, Default: "0"}, "$4.99", "money", "longtext", "$4.99", true},
		{change.Column{Name: "email", Type: "citext", TypeDef: citextDef}, "Ann@Example.com", "citext", "longtext", "Ann@Example.com", false},
		{change.Column{Name: "copies", Type: "integer", NotNull: true, Default: "3"}, int64(7), "integer", "int(11)", "7", true},
		{change.Column{Name: "double_copies", Type: "integer", Generated: true, Default: "(copies * 2)"}, nil, "integer", "", "", false},
	}
}

func filmsRelation(rating *change.TypeDef, version uint32) *change.Relation {
	r := &change.Relation{Schema: "public", Table: "films", Version: version}
	for _, c := range ddlColumns(rating) {
		r.Columns = append(r.Columns, c.col)
	}
	return r
}

// filmRow returns a new row of cols' values, the caller's to change.
func filmRow(cols []ddlColumn) change.Row {
	row := change.NewRow()
	for _, c := range cols {
		if !c.col.Generated {
			row.Set(c.col.Name, c.val)
		}
	}
	return row
}

// columnDefs reads each column of table as "type|nullable|default",
// the type as format_type (PostgreSQL) or COLUMN_TYPE (MySQL) prints it.
func (e *env) columnDefs(table string) map[string]string {
	e.t.Helper()
	q := "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COALESCE(COLUMN_DEFAULT, '') FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '" + table + "'"
	if e.tg.Name == "postgres" {
		q = `SELECT a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END, COALESCE(pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = '` + table + `'::regclass AND a.attnum > 0 AND NOT a.attisdropped`
	}
	rows, err := e.db.QueryContext(ctx(e.t), q)
	if err != nil {
		e.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, typ, nullable, def string
		if err := rows.Scan(&name, &typ, &nullable, &def); err != nil {
			e.t.Fatal(err)
		}
		out[name] = typ + "|" + nullable + "|" + def
	}
	return out
}

// ddlCases check the tables auto_create makes: PostgreSQL keeps every
// source type (creating domains and enums, adding enum labels before the
// first row that uses them), NOT NULL and DEFAULTs; MySQL gets the
// closest exact type; text keys of any length stay exact.
var ddlCases = []testCase{
	{"auto-created tables keep the source's types, NOT NULL and DEFAULTs; new enum labels arrive before their rows", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		if tg.Name == "postgres" {
			e.exec("CREATE EXTENSION citext")
		}
		cols := ddlColumns(ratingEnum(ratingLabels...))
		var g gen
		e.mustWrite(g.ins(filmsRelation(ratingEnum(ratingLabels...), 1), filmRow(cols)))
		e.flush()
		defs := e.columnDefs("films")
		for _, c := range cols {
			got, ok := defs[c.col.Name]
			typ, _, _ := strings.Cut(got, "|")
			want := c.pgType
			if tg.Name == "mysql" {
				want = c.myType
			}
			switch {
			case want == "" && ok:
				t.Errorf("column %s: created as %s, want none", c.col.Name, got)
			case want != "" && typ != want:
				t.Errorf("column %s: created as %q, want type %s", c.col.Name, got, want)
			}
		}
		wantDefs := map[string]map[string]string{
			"postgres": {"film_id": "integer|NO|", "title": "character varying(255)|NO|'untitled'::character varying",
				"rating": "mpaa_rating|NO|'G'::mpaa_rating", "price": "money|NO|0", "copies": "integer|NO|3",
				"double_copies": "integer|YES|(copies * 2)", "release_year": "year|YES|"},
			"mysql": {"film_id": "int(11)|NO|", "title": "varchar(255)|NO|'untitled'", "rating": "enum('G','PG','PG-13','R')|NO|'G'",
				"price": "longtext|NO|0", "copies": "int(11)|NO|3", "release_year": "int(11)|YES|NULL"},
		}[tg.Name]
		for c, want := range wantDefs {
			if defs[c] != want {
				t.Errorf("column %s: %q, want %q", c, defs[c], want)
			}
		}
		// Every value reads back as the source's text.
		names := make([]string, 0, len(cols))
		var want []string
		for _, c := range cols {
			if c.col.Generated {
				continue
			}
			names = append(names, c.col.Name)
			if tg.Name == "mysql" {
				want = append(want, c.myText)
			} else {
				want = append(want, fmt.Sprint(e.castText(c.val, c.pgType)))
			}
		}
		e.expectRows("films", names, strings.Join(want, "|"))
		if tg.Name == "postgres" {
			e.expectRows("films", []string{"film_id", "double_copies"}, "1|14")
		}
		// The domain's CHECK holds on the target too.
		bad := filmRow(cols)
		bad.Set("film_id", int64(9))
		bad.Set("release_year", int64(1800))
		badEv := g.ins(filmsRelation(ratingEnum(ratingLabels...), 1), bad)
		if err := e.write(badEv); !rejects(err, badEv) {
			t.Errorf("a year of 1800 under CHECK (VALUE >= 1901): %v, want the row rejected", err)
		}
		e.flush()
		// A label added on the source: the source describes the type
		// again (a new Relation version) for the first row using it.
		more := ratingEnum(append(append([]string{}, ratingLabels...), "NC-17")...)
		row := filmRow(cols)
		row.Set("film_id", int64(2))
		row.Set("rating", "NC-17")
		row.Set("ratings", []any{"NC-17"})
		e.mustWrite(g.ins(filmsRelation(more, 2), row))
		e.flush()
		e.expectRows("films", []string{"film_id", "rating"}, "1|PG", "2|NC-17")
		if tg.Name == "mysql" {
			if got := e.columnDefs("films")["rating"]; !strings.HasPrefix(got, "enum('G','PG','PG-13','R','NC-17')|") {
				t.Errorf("rating after the new label: %s", got)
			}
		}
	}},
	{"an enum becomes a VARCHAR as long as its longest label with enums = \"varchar\"", func(t *testing.T, tg Target) {
		if tg.Name != "mysql" {
			t.Skip("a MySQL option")
		}
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true, Enums: "varchar"})
		rel := func(v uint32, labels ...string) *change.Relation {
			return &change.Relation{Schema: "public", Table: "shows", Version: v, Columns: []change.Column{
				{Name: "id", Type: "integer", Key: true, NotNull: true},
				{Name: "rating", Type: "mpaa_rating", TypeDef: ratingEnum(labels...)}}}
		}
		var g gen
		e.mustWrite(g.ins(rel(1, ratingLabels...), change.RowOf(map[string]any{"id": int64(1), "rating": "PG-13"})))
		e.flush()
		if got := e.columnDefs("shows")["rating"]; !strings.HasPrefix(got, "varchar(5)|") {
			t.Errorf("rating: %s, want varchar(5)", got)
		}
		e.mustWrite(g.ins(rel(2, append(append([]string{}, ratingLabels...), "NOT RATED YET")...), change.RowOf(map[string]any{"id": int64(2), "rating": "NOT RATED YET"})))
		e.flush()
		e.expectRows("shows", []string{"id", "rating"}, "1|PG-13", "2|NOT RATED YET")
	}},
	{"a type of an extension the target lacks stops the sink, naming the extension", func(t *testing.T, tg Target) {
		if tg.Name != "postgres" {
			t.Skip("MySQL maps extension types to text")
		}
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		rel := &change.Relation{Schema: "public", Table: "people", Version: 1, Columns: []change.Column{
			{Name: "id", Type: "integer", Key: true, NotNull: true},
			{Name: "email", Type: "citext", TypeDef: citextDef}}}
		var g gen
		err := e.write(g.ins(rel, change.RowOf(map[string]any{"id": int64(1), "email": "a@b"})))
		if !engine.IsPermanent(err) || !strings.Contains(fmt.Sprint(err), "CREATE EXTENSION \"citext\"") {
			t.Errorf("Write: %v, want a permanent error saying to create extension citext", err)
		}
	}},
	{"a domain the target cannot create becomes its base type", func(t *testing.T, tg Target) {
		if tg.Name != "postgres" {
			t.Skip("MySQL maps every domain to its base type")
		}
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		odd := &change.TypeDef{Kind: change.TypeDomain, Schema: "public", Name: "odd", Base: "integer",
			Checks: []string{"CHECK (is_odd(VALUE))"}} // a function only the source has
		rel := &change.Relation{Schema: "public", Table: "nums", Version: 1, Columns: []change.Column{
			{Name: "id", Type: "integer", Key: true, NotNull: true},
			{Name: "n", Type: "odd", TypeDef: odd}, {Name: "ns", Type: "odd[]", TypeDef: odd}}}
		var g gen
		e.mustWrite(g.ins(rel, change.RowOf(map[string]any{"id": int64(1), "n": int64(3), "ns": []any{int64(5)}})))
		e.flush()
		defs := e.columnDefs("nums")
		if !strings.HasPrefix(defs["n"], "integer|") || !strings.HasPrefix(defs["ns"], "integer[]|") {
			t.Errorf("columns of the domain: %v, want integer and integer[]", defs)
		}
		e.expectRows("nums", []string{"id", "n", "ns"}, "1|3|{5}")
	}},
	{"text keys of 1000 characters and keys differing only by case are distinct rows", func(t *testing.T, tg Target) {
		e := newEnv(t, tg, dsl.TableSink{AutoCreate: true})
		rel := relation("codes", "code text key", "v text")
		keys := []string{strings.Repeat("a", 1000), strings.Repeat("A", 1000), strings.Repeat("a", 999) + "A",
			strings.Repeat("é", 1000), "abc", "ABC", "abc "}
		var g gen
		for i, k := range keys {
			e.mustWrite(g.ins(rel, code(k, fmt.Sprint(i))))
		}
		e.flush()
		e.mustWrite(g.upd(rel, code(keys[1], "1"), code(keys[1], "one")), g.del(rel, code(keys[5], "5")))
		e.flush()
		var want []string
		for i, k := range keys {
			switch i {
			case 1:
				want = append(want, k+"|one")
			case 5:
			default:
				want = append(want, k+"|"+fmt.Sprint(i))
			}
		}
		sort.Strings(want)
		e.expectSorted("codes", codeCols, want...)
	}},
}

// castText is PostgreSQL's text of value v cast to typ, on the target:
// what the source prints for it.
func (e *env) castText(v any, typ string) string {
	e.t.Helper()
	var lit string
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, el := range v {
			parts[i] = fmt.Sprint(el)
		}
		lit = "{" + strings.Join(parts, ",") + "}"
	default:
		lit = fmt.Sprint(v)
	}
	var out string
	if err := e.db.QueryRowContext(ctx(e.t), "SELECT CAST($1::text AS "+typ+")::text", lit).Scan(&out); err != nil {
		e.t.Fatalf("cast %q to %s: %v", lit, typ, err)
	}
	return out
}
