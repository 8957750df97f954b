package sqltable

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sluice-cdc/sluice/engine/change"
)

// TablePlan is what the sink would do to the target table of one source
// table before its first row: the statements auto_create and schema
// changes would run, in order, and how an existing table differs from
// the one sluice would create.
type TablePlan struct {
	Source      string   `json:"source"` // schema.table
	Target      string   `json:"target"`
	Exists      bool     `json:"exists"`
	Statements  []string `json:"statements"`
	Differences []string `json:"differences"`
}

// TypeComparer is implemented by dialects whose catalog spells a type
// otherwise than ColumnType writes it (MySQL's "int(11)" for INT), so
// that a plan can tell an existing column of the mapped type.
type TypeComparer interface {
	// SameType reports whether column definition def is of type want,
	// as ColumnType or SourceColumnType wrote it.
	SameType(want string, def ColumnDef) bool
}

// PlanDDL connects to the target and returns, for each of rels, the
// statements auto_create and schema changes would run before its first
// row, and what differs in an existing table (type, nullability,
// default, key, key collation). It changes nothing: it reads the
// catalog in a transaction it rolls back. The sink must not be open.
func (s *Sink) PlanDDL(ctx context.Context, rels []*change.Relation) ([]TablePlan, error) {
	db, err := s.tgt.Connect()
	if err != nil {
		return nil, s.wrap(err, "connect")
	}
	defer db.Close()
	s.db = db
	defer func() { s.db, s.tx = nil, nil }()
	if err := s.learnServer(ctx); err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, s.wrap(err, "begin")
	}
	defer tx.Rollback()
	s.tx = tx
	var out []TablePlan
	for _, rel := range rels {
		p, err := s.planTable(ctx, rel)
		if err != nil {
			return out, s.wrap(s.redact(err), "plan "+rel.Schema+"."+rel.Table)
		}
		out = append(out, p)
	}
	return out, nil
}

func (s *Sink) planTable(ctx context.Context, rel *change.Relation) (TablePlan, error) {
	name := s.opts.table
	if name.Table == "" {
		name = Name{Table: rel.Table}
	}
	p := TablePlan{Source: rel.Schema + "." + rel.Table, Target: name.String(), Statements: []string{}, Differences: []string{}}
	t := &table{name: name, key: s.opts.key}
	if len(t.key) == 0 {
		t.key = rel.KeyNames()
	}
	// The event auto_create would see: a whole row of the source table.
	var names []string
	for _, c := range rel.Columns {
		if !c.Generated {
			names = append(names, c.Name)
		}
	}
	row := change.MakeRow(change.NewColumns(names...), make([]any, len(names)))
	e := &change.Event{Op: change.Insert, Schema: rel.Schema, Table: rel.Table, Relation: rel, After: row}
	cols, err := s.columns(ctx, name)
	if err != nil {
		return p, err
	}
	if len(cols) == 0 {
		if !s.opts.create || s.opts.mode == ModeUpdate {
			p.Differences = append(p.Differences, "the table does not exist and auto_create is off: the first row stops the pipeline")
			return p, nil
		}
		if len(t.key) == 0 && s.opts.mode != ModeAppend {
			p.Differences = append(p.Differences, "the source table has no primary key: set key = [...]")
			return p, nil
		}
		types, err := s.typeStatements(ctx, s.tx, rel.Columns)
		if err != nil {
			// A type the target cannot have (an extension it lacks): the
			// first row would stop the pipeline with this.
			p.Differences = append(p.Differences, s.redact(err).Error())
			return p, nil
		}
		stmts, err := s.createStatements(t, e)
		if err != nil {
			return p, err
		}
		p.Statements = append(append(p.Statements, types...), stmts[0])
		return p, nil
	}
	p.Exists = true
	t.cols = cols
	st, _ := s.d.(SourceTypes)
	for _, c := range rel.Columns {
		if c.Generated {
			continue
		}
		col, ok := s.targetColumn(t, c.Name)
		key := slices.Contains(t.key, c.Name)
		if !ok {
			if s.opts.schema == SchemaFail {
				p.Differences = append(p.Differences, fmt.Sprintf("column %s is missing, and schema_changes = \"fail\" stops the pipeline at the first row", c.Name))
				continue
			}
			types, err := s.typeStatements(ctx, s.tx, []change.Column{c})
			if err != nil {
				p.Differences = append(p.Differences, s.redact(err).Error())
				continue
			}
			ddl := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", name.quoted(s.d), s.d.Quote(c.Name), s.sourceColumnType(c, false))
			if lit, ok := constDefault(s.d, c.Default); ok && c.Default != "" {
				ddl += " DEFAULT (" + lit + ")"
			}
			p.Statements = append(append(p.Statements, types...), ddl)
			continue
		}
		def, err := s.columnDef(ctx, t, col)
		if err != nil {
			return p, err
		}
		want := s.sourceColumnType(c, key)
		if !s.sameType(want, def) {
			p.Differences = append(p.Differences, fmt.Sprintf("column %s: type %s, sluice creates %s for source type %s", col, def.Type, want, c.Type))
		}
		switch {
		case c.NotNull && def.Nullable && !key:
			p.Differences = append(p.Differences, fmt.Sprintf("column %s: nullable, NOT NULL at the source", col))
		case !c.NotNull && !def.Nullable && !key:
			p.Differences = append(p.Differences, fmt.Sprintf("column %s: NOT NULL, nullable at the source: a NULL from the source is a rejected row", col))
		}
		if lit, ok := s.columnDefault(c); ok && !sameDefault(lit, def.Default) {
			have := "none"
			if def.Default.Valid {
				have = def.Default.String
			}
			p.Differences = append(p.Differences, fmt.Sprintf("column %s: default %s, %s at the source", col, have, c.Default))
		}
		if st != nil && enumDef(c) != nil {
			more, err := st.LabelStatements(ctx, s.tx, name.quoted(s.d), col, def, c)
			if err != nil {
				return p, err
			}
			p.Statements = append(p.Statements, more...)
		}
	}
	for c := range cols {
		if _, ok := rel.Column(c); !ok && !s.reserved(c) && !s.foldedIn(rel, c) {
			p.Differences = append(p.Differences, fmt.Sprintf("column %s is not in the source table: left as it is (NULL or its default in new rows)", c))
		}
	}
	if s.opts.mode == ModeUpsert {
		if err := s.checkUnique(ctx, t); err != nil {
			p.Differences = append(p.Differences, err.Error())
		}
	}
	p.Differences = append(p.Differences, s.inexactKeys(ctx, t)...)
	return p, nil
}

// reserved reports whether c is a column of the mode (__deleted, ...).
func (s *Sink) reserved(c string) bool {
	extra, _ := s.extraColumns()
	return slices.Contains(extra, c)
}

// foldedIn reports whether target column c is a column of rel under the
// dialect's case folding.
func (s *Sink) foldedIn(rel *change.Relation, c string) bool {
	if !s.d.FoldsCase() {
		return false
	}
	for _, rc := range rel.Columns {
		if strings.EqualFold(rc.Name, c) {
			return true
		}
	}
	return false
}

// sameType compares a column's type with the one sluice would create.
func (s *Sink) sameType(want string, def ColumnDef) bool {
	if tc, ok := s.d.(TypeComparer); ok {
		return tc.SameType(want, def)
	}
	return strings.EqualFold(want, def.Type)
}

// castSuffix strips the casts PostgreSQL renders defaults with.
var castSuffix = regexp.MustCompile(`::[a-z_ ."]+(\([0-9, ]+\))?(\[\])?$`)

// sameDefault compares the literal sluice would give a column with the
// default the target renders ('x'::text, 'x', x for numbers).
func sameDefault(lit string, have sql.NullString) bool {
	if !have.Valid {
		return false
	}
	h := strings.TrimSpace(have.String)
	if h == lit {
		return true
	}
	for {
		stripped := castSuffix.ReplaceAllString(strings.TrimSuffix(strings.TrimPrefix(h, "("), ")"), "")
		if stripped == h {
			break
		}
		h = stripped
	}
	return h == lit || strings.Trim(h, "'") == strings.Trim(lit, "'")
}

// inexactKeys lists the key columns of t whose collation compares text
// otherwise than PostgreSQL (KeyCollations).
func (s *Sink) inexactKeys(ctx context.Context, t *table) []string {
	kc, ok := s.d.(KeyCollations)
	if !ok || len(t.key) == 0 || s.opts.mode == ModeAppend {
		return nil
	}
	var schema any
	if t.name.Schema != "" {
		schema = t.name.Schema
	}
	rows, err := s.tx.QueryContext(ctx, kc.CollationsQuery(), schema, t.name.Table)
	if err != nil {
		return []string{"could not read the key columns' collations: " + s.redact(err).Error()}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var col, collation string
		if err := rows.Scan(&col, &collation); err != nil {
			return append(out, "could not read the key columns' collations: "+s.redact(err).Error())
		}
		if !slices.Contains(t.key, col) {
			continue
		}
		if why := kc.InexactCollation(t.cols[col], collation); why != "" {
			out = append(out, fmt.Sprintf("key column %s has collation %s, which %s: fix with %s", col, collation, why,
				kc.ExactKey(t.name.quoted(s.d), s.d.Quote(col), t.cols[col])))
		}
	}
	return out
}
