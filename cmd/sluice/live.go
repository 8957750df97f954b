package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/dsl/eventexpr"
	"github.com/sluice-cdc/sluice/engine/change"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
)

// liveProblems checks each PostgreSQL source of cfg against its live
// database (`sluice validate --live`): the server, tables, keys and
// replica identity, excluded columns, slot and publication (the source's
// CheckLive), and then every column the transforms that read the source
// name — in select, exclude, mask, rename and in expressions — with a
// hint where an expression compares a column with a literal of the wrong
// kind. Then it checks the existing tables of each MySQL sink those
// sources feed (mysqlProblems). Each problem points at the attribute that
// causes it.
func liveProblems(ctx context.Context, cfg *dsl.Config) dsl.Diagnostics {
	var diags dsl.Diagnostics
	described := map[string][]*change.Relation{} // by source name
	for _, s := range cfg.Sources {
		if s.Postgres == nil {
			continue
		}
		pg := pgsource.WithDefaults(s.Postgres, cfg.Pipeline.Name)
		for _, f := range append(pgsource.CheckLive(ctx, pg), pgsource.CheckRetention(ctx, pg)...) {
			subject, ok := pg.Ranges[f.Attribute]
			if !ok {
				subject = s.DeclRange
			}
			diags = append(diags, dsl.Problem(f.Severity == pgsource.Warning, subject, f.Message, f.Fix))
		}
		rels, err := pgsource.Describe(ctx, pg)
		if err != nil {
			if !diags.HasErrors() { // else CheckLive has said why already
				diags = append(diags, dsl.Problem(false, s.DeclRange, fmt.Sprintf("source %q: %v", s.Name, err), ""))
			}
			continue
		}
		described[s.Name] = rels
		for _, t := range cfg.Transforms {
			if readsSource(t, s.Name) {
				diags = append(diags, checkTransformColumns(t, scoped(t, rels))...)
			}
		}
	}
	for _, s := range cfg.Sinks {
		if s.MySQL != nil {
			diags = append(diags, mysqlProblems(ctx, cfg, s, described)...)
		}
	}
	return diags
}

// mysqlProblems checks the existing target tables of MySQL sink s for
// what would make them differ from the source: key columns whose
// collation is not byte for byte (rows collapse), DECIMAL columns
// narrower than the source's numeric (rows refused). The tables are those
// of the PostgreSQL sources s reads, directly or through transforms, as
// described; transforms that rename tables or columns are not followed.
// Problems are warnings: the pipeline runs, and these say what it will do.
func mysqlProblems(ctx context.Context, cfg *dsl.Config, s *dsl.Sink, described map[string][]*change.Relation) dsl.Diagnostics {
	var tables []mysqlsink.TargetTable
	for _, src := range feedingSources(cfg, s.From, map[string]bool{}) {
		for _, r := range described[src] {
			t := mysqlsink.TargetTable{Name: r.Table, Key: s.MySQL.Key, Columns: map[string]string{}}
			if s.MySQL.Table != "" {
				t.Name = s.MySQL.Table
			}
			if len(t.Key) == 0 {
				t.Key = r.KeyNames()
			}
			for _, c := range r.Columns {
				t.Columns[c.Name] = c.Type
			}
			tables = append(tables, t)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	// Warnings point at the sink's dsn (connection) or at what picks the
	// key and table, else at the block (ranges, not hcl, in this package).
	dsnAt, keyAt := s.DeclRange, s.DeclRange
	if r, ok := s.MySQL.Ranges["dsn"]; ok {
		dsnAt, keyAt = r, r
	}
	for _, a := range []string{"table", "key"} {
		if r, ok := s.MySQL.Ranges[a]; ok {
			keyAt = r
		}
	}
	findings, err := mysqlsink.CheckTargets(ctx, s.MySQL.DSN, s.MySQL.TLS, tables)
	var diags dsl.Diagnostics
	if err != nil {
		diags = append(diags, dsl.Problem(true, dsnAt, fmt.Sprintf("sink %q: could not check the target tables: %v", s.Name, redactDSN(err, s.MySQL.DSN)), ""))
	}
	seen := map[string]bool{}
	for _, f := range findings {
		if seen[f.Message] { // several source tables into one target
			continue
		}
		seen[f.Message] = true
		diags = append(diags, dsl.Problem(true, keyAt, fmt.Sprintf("sink %q: %s", s.Name, f.Message), f.Fix))
	}
	return diags
}

// feedingSources returns the sources that refs read, directly or through
// transforms.
func feedingSources(cfg *dsl.Config, refs []dsl.Ref, seen map[string]bool) []string {
	var out []string
	for _, r := range refs {
		key := string(r.Kind) + "." + r.Name
		if seen[key] {
			continue
		}
		seen[key] = true
		switch r.Kind {
		case dsl.SourceRef:
			out = append(out, r.Name)
		case dsl.TransformRef:
			for _, t := range cfg.Transforms {
				if t.Name == r.Name {
					out = append(out, feedingSources(cfg, t.From, seen)...)
				}
			}
		}
	}
	return out
}

// redactDSN removes the DSN's password from an error's text.
func redactDSN(err error, dsn string) string {
	msg := err.Error()
	if cfg, perr := mysqlsink.ParseDSN(dsn); perr == nil && cfg.Passwd != "" {
		msg = strings.ReplaceAll(msg, cfg.Passwd, "***")
	}
	return msg
}

func readsSource(t *dsl.Transform, source string) bool {
	for _, r := range t.From {
		if r.Kind == dsl.SourceRef && r.Name == source {
			return true
		}
	}
	return false
}

// scoped returns the relations a transform applies to.
func scoped(t *dsl.Transform, rels []*change.Relation) []*change.Relation {
	if len(t.Tables) == 0 {
		return rels
	}
	var out []*change.Relation
	for _, r := range rels {
		for _, name := range t.Tables {
			schema, table, _ := strings.Cut(name, ".")
			if r.Schema == schema && (table == "*" || r.Table == table) {
				out = append(out, r)
				break
			}
		}
	}
	return out
}

// checkTransformColumns reports columns a transform names that none of
// its tables has.
func checkTransformColumns(t *dsl.Transform, rels []*change.Relation) dsl.Diagnostics {
	if len(rels) == 0 {
		return nil
	}
	types := map[string]string{} // column → type, of any scoped table
	var tables []string
	for _, r := range rels {
		tables = append(tables, r.Schema+"."+r.Table)
		for _, c := range r.Columns {
			types[c.Name] = c.Type
		}
	}
	known := func(col string) bool { _, ok := types[col]; return ok }
	var computed []string
	for _, s := range t.Set {
		computed = append(computed, s.Column)
	}
	var diags dsl.Diagnostics
	missing := func(attr, col string) {
		diags = append(diags, dsl.Problem(false, t.Ranges[attr],
			fmt.Sprintf("transform %q: %s names column %q, which %s does not have", t.Name, attr, col, strings.Join(tables, " and ")),
			"Its columns are: "+strings.Join(sortedColumns(types), ", ")+"."))
	}
	afterSet := func(attr string, cols []string) {
		for _, c := range cols {
			if !known(c) && !slices.Contains(computed, c) {
				missing(attr, c)
			}
		}
	}
	afterSet("select", t.Select)
	afterSet("exclude", t.Exclude)
	var masked []string
	for _, m := range t.Mask {
		masked = append(masked, m.Column)
	}
	afterSet("mask", masked)
	var renamed []string
	for _, r := range t.Rename {
		renamed = append(renamed, r.From)
	}
	afterSet("rename", renamed)

	var exprs []expression
	if t.Where != nil {
		exprs = append(exprs, expression{"where", t.Where.Source, t.Where.Columns()})
	}
	for _, s := range t.Set {
		exprs = append(exprs, expression{"set", s.Expr.Source, s.Expr.Columns()})
	}
	for _, e := range exprs {
		for _, ref := range e.columns {
			typ, ok := types[ref.Column]
			if !ok {
				missing(e.attr, ref.Column)
				continue
			}
			if hint := typeHint(ref.ComparedWith, typ); hint != "" {
				diags = append(diags, dsl.Problem(true, t.Ranges[e.attr],
					fmt.Sprintf("transform %q: %q compares column %s (%s) with a %s", t.Name, e.source, ref.Column, typ, ref.ComparedWith), hint))
			}
		}
	}
	return diags
}

// expression is one compiled expression of a transform, for reporting.
type expression struct {
	attr, source string
	columns      []eventexpr.ColumnRef
}

func sortedColumns(types map[string]string) []string {
	cols := make([]string, 0, len(types))
	for c := range types {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	return cols
}

// typeHint says what to write when a column of PostgreSQL type typ is
// compared with a literal of kind lit ("number", "string", "bool").
func typeHint(lit, typ string) string {
	numeric := strings.HasPrefix(typ, "integer") || strings.HasPrefix(typ, "bigint") || strings.HasPrefix(typ, "smallint") ||
		strings.HasPrefix(typ, "numeric") || strings.HasPrefix(typ, "real") || strings.HasPrefix(typ, "double")
	text := strings.HasPrefix(typ, "text") || strings.HasPrefix(typ, "character") || strings.HasPrefix(typ, "uuid")
	switch {
	case lit == "number" && text:
		return "The column holds text, so this comparison is never true. Quote the value ('50'), or compare a number column."
	case lit == "string" && numeric:
		return "The column holds numbers, so this comparison is never true. Write the value without quotes (50)."
	case lit == "bool" && typ != "boolean":
		return "The column is not boolean. Compare it with a value of its own type."
	}
	return ""
}
