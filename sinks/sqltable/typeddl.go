package sqltable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Querier reads a target's catalog: a *sql.DB or the sink's open
// *sql.Tx.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SourceTypes is implemented by dialects that map a source column by
// its whole definition (change.Column.TypeDef: the enum's labels, the
// domain's base type and CHECKs, the extension that owns it) rather
// than by its type name alone: PostgreSQL recreates the source's types,
// MySQL picks the closest exact type.
type SourceTypes interface {
	// SourceColumnType returns the target type of source column c
	// (key: it is part of the key), and false where ColumnType's mapping
	// of its name applies.
	SourceColumnType(c change.Column, key bool) (string, bool)
	// TypeStatements returns the statements that create, on the target
	// q reads, the types column c needs and the target lacks, in order.
	// A type that cannot be created (an extension the target lacks) is
	// an error saying what to do.
	TypeStatements(ctx context.Context, q Querier, c change.Column) ([]string, error)
	// LabelStatements returns the statements that make target column
	// col of table (quoted; def its definition) accept every label of
	// c's enum, in the source's order; none when it does already. They
	// run outside the sink's transaction (see Sink.syncLabels).
	LabelStatements(ctx context.Context, q Querier, table, col string, def ColumnDef, c change.Column) ([]string, error)
	// GeneratedColumn returns the definition clause that makes a column
	// computed from the source's generation expression (c.Default), and
	// false where the target cannot reuse it: the column is then left
	// out, as the source never sends its values.
	GeneratedColumn(c change.Column) (string, bool)
}

// Defaulter is implemented by dialects that can take more of a source
// column's DEFAULT than its constant (PostgreSQL takes the expression
// itself).
type Defaulter interface {
	// DefaultExpr returns the DEFAULT clause's expression for source
	// column c, and false where the column gets none.
	DefaultExpr(c change.Column) (string, bool)
}

// columnDefault is the DEFAULT of the target column of source column c:
// the dialect's (Defaulter), else a constant's literal (constDefault).
func (s *Sink) columnDefault(c change.Column) (string, bool) {
	if c.Default == "" || c.Generated {
		return "", false
	}
	if df, ok := s.d.(Defaulter); ok {
		return df.DefaultExpr(c)
	}
	return constDefault(s.d, c.Default)
}

// KeyFitter is implemented by dialects whose indexes bound the key's
// total size (InnoDB: 3072 bytes), so that the types of a composite key
// are chosen together.
type KeyFitter interface {
	// FitKey returns the types of the key columns (in key order, as
	// ColumnType or SourceColumnType chose them alone) resized to fit
	// one index together.
	FitKey(types []string) []string
}

// enumDef returns the enum c holds, through domains, or nil.
func enumDef(c change.Column) *change.TypeDef {
	td := c.TypeDef
	for td != nil && td.Kind == change.TypeDomain {
		td = td.BaseDef
	}
	if td == nil || td.Kind != change.TypeEnum {
		return nil
	}
	return td
}

// sourceColumnType is the target type of source column c.
func (s *Sink) sourceColumnType(c change.Column, key bool) string {
	if td := c.TypeDef; td != nil && td.Kind == change.TypeDomain && s.baseDomains[td.Schema+"."+td.Name] {
		base := change.Column{Name: c.Name, Type: td.Base, TypeDef: td.BaseDef}
		if ParseSourceType(c.Type).Array {
			base.Type += "[]"
		}
		return s.sourceColumnType(base, key)
	}
	if st, ok := s.d.(SourceTypes); ok {
		if typ, ok := st.SourceColumnType(c, key); ok {
			return typ
		}
	}
	return s.d.ColumnType(ParseSourceType(c.Type), key)
}

// typeStatements lists the statements creating the types rel's columns
// need on the target, each once.
func (s *Sink) typeStatements(ctx context.Context, q Querier, cols []change.Column) ([]string, error) {
	st, ok := s.d.(SourceTypes)
	if !ok {
		return nil, nil
	}
	var out []string
	for _, c := range cols {
		if c.TypeDef == nil {
			continue
		}
		stmts, err := st.TypeStatements(ctx, q, c)
		if err != nil {
			return nil, engine.Permanent(fmt.Errorf("%s sink %q: column %q: %w", s.d.Name(), s.name, c.Name, err))
		}
		for _, stmt := range stmts {
			if !slices.Contains(out, stmt) {
				out = append(out, stmt)
			}
		}
	}
	return out, nil
}

// createTypes runs typeStatements on their own connection, committed
// before the table that uses them: PostgreSQL lets a transaction use an
// enum label only once the label is committed, unless the enum was
// created by that transaction, and later labels are added the same way.
// A domain the target refuses to create (a CHECK calling a function it
// lacks, no CREATE privilege on the schema) is replaced by its base type
// in the columns of this sink, with a warning.
func (s *Sink) createTypes(ctx context.Context, cols []change.Column) error {
	done := map[string]bool{}
	for _, c := range cols {
		stmts, err := s.typeStatements(ctx, s.tx, []change.Column{c})
		if err != nil {
			return err
		}
		for _, stmt := range stmts {
			if done[stmt] {
				continue
			}
			done[stmt] = true
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				if td := c.TypeDef; td != nil && td.Kind == change.TypeDomain && strings.HasPrefix(stmt, "CREATE DOMAIN") {
					if s.baseDomains == nil {
						s.baseDomains = map[string]bool{}
					}
					s.baseDomains[td.Schema+"."+td.Name] = true
					s.log.Warn("the target refused to create the source's domain: its columns get the base type, without the domain's constraints",
						"domain", td.Schema+"."+td.Name, "base", td.Base, "column", c.Name, "statement", stmt, "error", s.redact(err).Error())
					break
				}
				return &statementError{query: stmt, err: err}
			}
			s.log.Info("created type on the target", "statement", stmt)
		}
	}
	return nil
}

// syncLabels makes the target columns of enum columns of cur accept
// every label the source has, before the first row that uses one: the
// source describes its types again when a row holds a label newer than
// the relation (a new Relation version, which brings the sink here).
// Columns whose labels did not change since prev are skipped.
func (s *Sink) syncLabels(ctx context.Context, t *table, prev, cur *change.Relation) error {
	st, ok := s.d.(SourceTypes)
	if !ok {
		return nil
	}
	var stmts []string
	for _, c := range cur.Columns {
		td := enumDef(c)
		if td == nil || c.Generated {
			continue
		}
		if prev != nil {
			if p, ok := prev.Column(c.Name); ok {
				if pd := enumDef(p); pd != nil && slices.Equal(pd.Labels, td.Labels) {
					continue
				}
			}
		}
		name, ok := s.targetColumn(t, c.Name)
		if !ok {
			continue
		}
		def, err := s.columnDef(ctx, t, name)
		if err != nil {
			return err
		}
		more, err := st.LabelStatements(ctx, s.tx, t.name.quoted(s.d), name, def, c)
		if err != nil {
			return &statementError{query: "select enum labels", err: err}
		}
		stmts = append(stmts, more...)
	}
	var replay error
	for _, stmt := range stmts {
		s.log.Info("adding the source's new enum labels to the target", "table", t.name.String(), "statement", stmt)
		if s.d.TransactionalDDL() {
			// ALTER TYPE ... ADD VALUE commits on its own connection: a
			// label added inside the open transaction could not be used
			// before it commits.
			if _, err := s.db.ExecContext(ctx, stmt); err != nil {
				return &statementError{query: stmt, err: err}
			}
			continue
		}
		if err := s.ddl(ctx, true, stmt); errors.Is(err, errReplay) {
			replay = err
		} else if err != nil {
			return err
		}
	}
	if replay != nil {
		return replay
	}
	if len(stmts) > 0 {
		cols, err := s.columns(ctx, t.name)
		if err != nil {
			return &statementError{query: "select columns", err: err}
		}
		s.setColumns(t, cols)
	}
	return nil
}
