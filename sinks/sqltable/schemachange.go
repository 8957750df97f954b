package sqltable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// ColumnDef is one target column's definition as ColumnDefQuery reads it,
// which a dialect restates where its ALTER replaces the whole definition
// (MySQL's MODIFY COLUMN).
type ColumnDef struct {
	Type      string         // the full type, e.g. "int(11)", "varchar(50)"
	Nullable  bool           // no NOT NULL constraint
	Default   sql.NullString // the DEFAULT expression as the server renders it
	Collation sql.NullString // text columns' collation, where the server has them
}

// evolve brings target table t in line with a source table whose columns
// changed from prev to cur (a new Relation version), before the first
// event of the new shape is written. Columns the source added are added
// by tableFor as they appear in rows; this handles the rest:
//   - a type that widened (integer → bigint, varchar(n) → varchar(m > n)
//     or text, numeric precision up, real → double precision) alters the
//     target column to the type the new source type maps to;
//   - a type that narrowed needs nothing: the target column holds every
//     value of the narrower type (logged);
//   - any other type change stops the pipeline, naming table, column, old
//     and new type and the fix, before a value the target cannot hold;
//   - a column the source dropped is made nullable in the target (its
//     stored values stay), so later rows that lack it never fail; with
//     schema_changes = "drop_columns" it is dropped instead.
//
// A renamed column arrives as a dropped one and an added one: the target
// keeps the old column (nullable) with the values written before, and
// gains the new one, filled from then on.
func (s *Sink) evolve(ctx context.Context, t *table, prev, cur *change.Relation, e *change.Event) error {
	if err := s.syncLabels(ctx, t, prev, cur); err != nil {
		return err
	}
	key := func(c string) bool { return slices.Contains(t.key, c) }
	type alter struct {
		col, typ string // typ "" makes col nullable
	}
	var alters []alter
	for _, c := range cur.Columns {
		name, ok := s.targetColumn(t, c.Name)
		if !ok || c.Generated {
			continue
		}
		to := ParseSourceType(c.Type)
		var from SourceType
		p, seen := change.Column{}, false
		if prev != nil {
			p, seen = prev.Column(c.Name)
		}
		if seen {
			if p.Type == c.Type {
				continue
			}
			from = ParseSourceType(p.Type)
		} else if from, ok = s.d.SourceTypeOf(t.cols[name]); !ok || !sameFamily(from, to) {
			continue // first sight: only widen within a family (see tableFor)
		}
		if have, ok := s.d.SourceTypeOf(t.cols[name]); seen && ok && widens(to, have) {
			continue // the target column holds it already (altered before a replay)
		}
		switch {
		case widens(to, from):
			if seen {
				s.log.Info("source column type narrowed; the target column holds every value and is left as it is",
					"table", t.name.String(), "column", name, "to", c.Type)
			}
			continue
		case !widens(from, to):
			return engine.Permanent(fmt.Errorf("%s sink %q: column %q of source table %s changed type from %s to %s, which is not a widening sluice can apply to target table %s: alter the target column so that it holds every %s value (ALTER TABLE %s ...), then restart the pipeline",
				s.d.Name(), s.name, c.Name, e.QualifiedTable(), from.Base, c.Type, t.name, c.Type, t.name))
		case s.opts.schema == SchemaFail:
			return engine.Permanent(fmt.Errorf("%s sink %q: column %q of source table %s widened to %s and schema_changes = \"fail\": alter column %q of target table %s to %s, or set schema_changes = \"add_columns\"",
				s.d.Name(), s.name, c.Name, e.QualifiedTable(), c.Type, name, t.name, s.d.ColumnType(to, key(name))))
		}
		alters = append(alters, alter{name, s.d.ColumnType(to, key(name))})
	}
	if prev != nil {
		for _, p := range prev.Columns {
			if _, ok := cur.Column(p.Name); ok || p.Generated {
				continue
			}
			name, ok := s.targetColumn(t, p.Name)
			if !ok || key(name) {
				continue
			}
			if s.opts.schema == SchemaFail {
				return engine.Permanent(fmt.Errorf("%s sink %q: source table %s dropped column %q and schema_changes = \"fail\": drop it from target table %s or make it nullable, or set schema_changes = \"add_columns\"",
					s.d.Name(), s.name, e.QualifiedTable(), p.Name, t.name))
			}
			alters = append(alters, alter{col: name})
		}
	}
	// Read every definition first: on MySQL the first ALTER ends the
	// open transaction.
	var stmts []string
	for _, a := range alters {
		if a.typ == "" && s.opts.schema == SchemaDropColumns {
			s.log.Info("dropping the target column the source dropped", "table", t.name.String(), "column", a.col)
			stmts = append(stmts, fmt.Sprintf("ALTER TABLE %s DROP COLUMN %s", t.name.quoted(s.d), s.d.Quote(a.col)))
			continue
		}
		def, err := s.columnDef(ctx, t, a.col)
		if err != nil {
			return err
		}
		if a.typ == "" {
			if def.Nullable {
				continue
			}
			s.log.Info("the source dropped a column: making the target column nullable; its values stay", "table", t.name.String(), "column", a.col)
		} else {
			s.log.Info("widening target column", "table", t.name.String(), "column", a.col, "from", def.Type, "to", a.typ)
		}
		stmts = append(stmts, s.d.AlterColumn(t.name.quoted(s.d), a.col, a.typ, a.typ == "" || def.Nullable, def))
	}
	var replay error
	for _, stmt := range stmts {
		if err := s.ddl(ctx, true, stmt); errors.Is(err, errReplay) {
			replay = err // the rest run on their own connection too
		} else if err != nil {
			return err
		}
	}
	if replay != nil || len(stmts) == 0 {
		return replay
	}
	cols, err := s.columns(ctx, t.name)
	if err != nil {
		return &statementError{query: "select columns", err: err}
	}
	s.setColumns(t, cols)
	return nil
}

// sameFamily reports whether a and b are both integers, both numerics,
// both floating point or both varchar of a known length: the families
// in which a target column found narrower than its source column (when
// the sink has not seen the change happen) is widened.
func sameFamily(a, b SourceType) bool {
	family := func(t SourceType) string {
		switch t.Base {
		case "smallint", "integer", "bigint":
			return "int"
		case "real", "double precision":
			return "float"
		case "numeric":
			if _, ok := t.Arg(0); ok {
				return "numeric"
			}
		case "character varying":
			if _, ok := t.Arg(0); ok {
				return "varchar"
			}
		}
		return ""
	}
	return family(a) != "" && family(a) == family(b)
}

// targetColumn returns the target's name of source column c, if t has it.
func (s *Sink) targetColumn(t *table, c string) (string, bool) {
	if _, ok := t.cols[c]; ok {
		return c, true
	}
	if s.d.FoldsCase() {
		for name := range t.cols {
			if strings.EqualFold(name, c) {
				return name, true
			}
		}
	}
	return "", false
}

// columnDef reads the definition of column col of t.
func (s *Sink) columnDef(ctx context.Context, t *table, col string) (ColumnDef, error) {
	var schema any
	if t.name.Schema != "" {
		schema = t.name.Schema
	}
	var d ColumnDef
	err := s.tx.QueryRowContext(ctx, s.d.ColumnDefQuery(), schema, t.name.Table, col).Scan(&d.Type, &d.Nullable, &d.Default, &d.Collation)
	if err != nil {
		return d, &statementError{query: "select column definition", table: t.name.String(), err: err}
	}
	return d, nil
}

// widens reports whether every value of source type from is a value of
// type to, within one family whose target types convert in place.
func widens(from, to SourceType) bool {
	if from.Base == to.Base && from.Array == to.Array && slices.Equal(from.Args, to.Args) {
		return true
	}
	if from.Array || to.Array {
		return false
	}
	rank := map[string]int{"smallint": 1, "integer": 2, "bigint": 3}
	if a, b := rank[from.Base], rank[to.Base]; a > 0 && b > 0 {
		return a <= b
	}
	textual := func(t SourceType) bool { return t.Base == "character varying" || t.Base == "text" }
	switch {
	case from.Base == "real" && to.Base == "double precision":
		return true
	case textual(from) && to.Base == "text":
		return true
	case from.Base == "character varying" && to.Base == "character varying":
		n, okFrom := from.Arg(0)
		m, okTo := to.Arg(0)
		return !okTo || (okFrom && n <= m)
	case from.Base == "character" && to.Base == "character":
		n, _ := from.Arg(0)
		m, _ := to.Arg(0)
		return n == m
	case rank[from.Base] > 0 && (to.Base == "numeric" || to.Base == "text"):
		p, ok := to.Arg(0)
		s, _ := to.Arg(1)
		return to.Base == "text" || !ok || p-s >= 19
	case from.Base == "numeric" && to.Base == "numeric":
		p, okFrom := from.Arg(0)
		q, okTo := to.Arg(0)
		if !okTo {
			return true
		}
		if !okFrom {
			return false
		}
		s, _ := from.Arg(1)
		r, _ := to.Arg(1)
		return r >= s && q-r >= p-s
	}
	return false
}

// constDefault returns the literal of a source DEFAULT expression that is
// a constant ('x'::text, 42, -1.5, true, NULL::integer), as SQL both
// targets read, and false for anything else (now(), nextval(...)), whose
// value the rows that existed before the column was added got at the
// source and no target could reproduce.
func constDefault(d Dialect, expr string) (string, bool) {
	m := constExpr.FindStringSubmatch(strings.TrimSpace(expr))
	if m == nil {
		return "", false
	}
	switch {
	case m[1] != "":
		return d.Literal(strings.ReplaceAll(m[1][1:len(m[1])-1], "''", "'")), true
	case m[2] != "":
		return m[2], true
	}
	return strings.ToUpper(m[3]), true
}

// constExpr matches a literal, optionally parenthesised, with casts:
// a quoted string (1), a number (2), or true/false/NULL (3).
var constExpr = regexp.MustCompile(`^\(*(?:('(?:[^']|'')*')|(-?[0-9]+(?:\.[0-9]+)?)|(true|false|NULL))\)*(?:::[a-z_ ."]+(?:\([0-9, ]+\))?(?:\[\])?)*$`)
