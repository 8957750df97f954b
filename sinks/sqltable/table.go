package sqltable

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// table is what the sink knows of one target table.
type table struct {
	name Name
	key  []string          // the columns rows are matched by (empty in append mode without a key)
	cols map[string]string // column → lower-case type, as the dialect reports it
	// rel is the source table's shape as of the last event written, to
	// tell a schema change when the next event has another (see evolve).
	rel *change.Relation
	// texts are the statements built for t by shape (stmtcache.go), and
	// arrays whether a column set travels as array parameters.
	texts  map[shape]string
	arrays map[string]bool
}

// extraColumns are the reserved columns the configured mode and delete
// option write, with the types they get when created.
func (s *Sink) extraColumns() (names []string, types []string) {
	d := s.d
	switch {
	case s.opts.mode == ModeAppend:
		return []string{OpColumn, PositionColumn, CommitTimeColumn},
			[]string{d.ValueType("", true), d.ValueType("", true), d.ValueType(time.Time{}, false)}
	case s.opts.mode == ModeUpsert && s.opts.delete == DeleteSoft:
		return []string{DeletedColumn}, []string{d.ValueType(false, false) + " NOT NULL DEFAULT false"}
	}
	return nil, nil
}

// tableFor returns the target table of e's source table, creating it or
// adding columns as configured, and checks that it can take e.
func (s *Sink) tableFor(ctx context.Context, e *change.Event) (*table, error) {
	src := e.QualifiedTable()
	t := s.tables[src]
	if t == nil {
		unlock := s.lockSchema()
		var err error
		t, err = s.loadTable(ctx, e)
		unlock()
		if err != nil {
			return nil, err
		}
		if s.tables == nil {
			s.tables = map[string]*table{}
		}
		s.tables[src] = t
	}
	if s.opts.mode == ModeUpdate {
		return t, nil // checked once in loadTable: update never alters the table
	}
	if rel := e.Relation; rel != nil && rel != t.rel {
		// A new shape of the source table, or the first this sink sees
		// since it opened: a type changed while the sink was not looking
		// (stopped, or its transaction rolled back) shows as a target
		// column narrower than the source's.
		if t.rel == nil || t.rel.Version != rel.Version {
			unlock := s.lockSchema()
			err := s.evolve(ctx, t, t.rel, rel, e)
			unlock()
			if err != nil {
				return nil, err
			}
		}
		t.rel = rel
	}
	var missing []string
	for c := range e.Row().All() {
		if _, ok := t.cols[c]; !ok && !s.foldedColumn(t, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		unlock := s.lockSchema()
		err := s.addColumns(ctx, t, e, missing)
		unlock()
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (s *Sink) loadTable(ctx context.Context, e *change.Event) (*table, error) {
	name := s.opts.table
	if name.Table == "" {
		name = Name{Table: e.Table}
	}
	if name.Table == "" {
		return nil, engine.Permanent(fmt.Errorf("%s sink %q: an event at position %s names no source table: set table = \"...\"",
			s.d.Name(), s.name, e.Position.String()))
	}
	t := &table{name: name, key: s.opts.key}
	if len(t.key) == 0 {
		if e.Relation != nil {
			t.key = e.Relation.KeyNames()
		}
		if len(t.key) == 0 {
			t.key = e.Key.Names()
		}
	}
	if len(t.key) == 0 && s.opts.mode != ModeAppend {
		return nil, engine.Permanent(fmt.Errorf("%s sink %q: source table %s has no primary key to match rows of %s by: set key = [\"COLUMN\", ...]",
			s.d.Name(), s.name, e.QualifiedTable(), name))
	}
	cols, err := s.columns(ctx, name)
	if err != nil {
		return nil, &statementError{query: "select columns", err: err}
	}
	if len(cols) == 0 {
		if !s.opts.create || s.opts.mode == ModeUpdate {
			return nil, engine.Permanent(fmt.Errorf("%s sink %q: target table %s does not exist: create it, or set auto_create = true (not with mode = \"update\", which only writes existing rows)",
				s.d.Name(), s.name, name))
		}
		if err := s.createTable(ctx, t, e); err != nil {
			return nil, err
		}
		if cols, err = s.columns(ctx, name); err != nil {
			return nil, &statementError{query: "select columns", err: err}
		}
	}
	t.cols = cols
	if s.opts.mode != ModeAppend {
		for _, k := range t.key {
			if _, ok := cols[k]; !ok {
				return nil, engine.Permanent(fmt.Errorf("%s sink %q: key column %q is not a column of target table %s: set key = [...] to columns it has, or add the column",
					s.d.Name(), s.name, k, name))
			}
		}
	}
	s.warnInexactKeys(ctx, t)
	if s.opts.mode == ModeUpsert {
		if err := s.checkUnique(ctx, t); err != nil {
			return nil, err
		}
	}
	if s.opts.mode == ModeUpdate {
		for _, c := range s.opts.columns {
			if slices.Contains(t.key, c) {
				return nil, engine.Permanent(fmt.Errorf("%s sink %q: column %q of columns is part of the key of %s, which mode = \"update\" finds rows by and cannot change: remove it from columns",
					s.d.Name(), s.name, c, name))
			}
			if _, ok := cols[c]; !ok {
				return nil, engine.Permanent(fmt.Errorf("%s sink %q: column %q of columns is not a column of target table %s: add it to the table (mode = \"update\" never alters it) or remove it from columns",
					s.d.Name(), s.name, c, name))
			}
		}
	}
	extra, _ := s.extraColumns()
	var missing []string
	for _, c := range extra {
		if _, ok := cols[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		if err := s.addColumns(ctx, t, e, missing); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// columnType is the target type for column c of e's table: mapped from
// the source schema when the event carries one, else from the value.
func (s *Sink) columnType(e *change.Event, c string, key bool) string {
	if extra, types := s.extraColumns(); len(extra) > 0 {
		for i, x := range extra {
			if x == c {
				return types[i]
			}
		}
	}
	if e.Relation != nil {
		if col, ok := e.Relation.Column(c); ok && col.Type != "" {
			return s.sourceColumnType(col, key)
		}
	}
	return s.d.ValueType(e.Row().Get(c), key)
}

// createTable creates t from e's row as CreateStatements says, after
// the types its columns need (createTypes). The first statement the
// target takes is run: without the source's defaults and generated
// columns when the target refuses them.
func (s *Sink) createTable(ctx context.Context, t *table, e *change.Event) error {
	if e.Relation != nil {
		if err := s.createTypes(ctx, e.Relation.Columns); err != nil {
			return err
		}
	}
	stmts, err := s.createStatements(t, e)
	if err != nil {
		return err
	}
	i, err := s.ddlFirst(ctx, false, stmts...)
	if err != nil {
		return err
	}
	if i > 0 {
		s.log.Warn("the target refused the source's column defaults or generated columns: created the table without them",
			"table", t.name.String(), "refused", stmts[0])
	}
	s.log.Info("created target table", "table", t.name.String(), "source", e.QualifiedTable())
	return nil
}

// createStatements returns the CREATE TABLE for t from e's row, and its
// fallbacks: its columns in the source's order (without a source schema
// the key first), then computed ones sorted, typed by the documented
// mapping (sourceColumnType), NOT NULL where the source column is, the
// source's constant DEFAULTs, generated columns where the dialect can
// compute them (SourceTypes.GeneratedColumn), the key as primary key,
// and the reserved columns of the mode. The fallbacks leave out the
// generated columns, then the defaults too.
func (s *Sink) createStatements(t *table, e *change.Event) ([]string, error) {
	row := e.Row()
	var names []string
	seen := map[string]bool{}
	var generated []change.Column
	if e.Relation == nil {
		// Without the source's column order, the key comes first.
		for _, k := range t.key {
			if _, ok := row.Lookup(k); ok && !seen[k] {
				names = append(names, k)
				seen[k] = true
			}
		}
	} else {
		for _, c := range e.Relation.Columns {
			if _, ok := row.Lookup(c.Name); ok || c.Generated {
				names = append(names, c.Name)
				seen[c.Name] = true
			}
			if c.Generated {
				generated = append(generated, c)
			}
		}
	}
	for _, c := range row.Names() {
		if !seen[c] {
			names = append(names, c)
		}
	}
	isKey := map[string]bool{}
	if s.opts.mode != ModeAppend {
		for _, k := range t.key {
			if _, ok := row.Lookup(k); !ok {
				return nil, engine.Permanent(fmt.Errorf("%s sink %q: key column %q is not in the rows of %s, so auto_create cannot make it the key of %s: set key = [...] to columns the rows have",
					s.d.Name(), s.name, k, e.QualifiedTable(), t.name))
			}
			isKey[k] = true
		}
	}
	extra, _ := s.extraColumns()
	names = append(names, extra...)
	st, _ := s.d.(SourceTypes)
	keyTypes := map[string]string{}
	if kf, ok := s.d.(KeyFitter); ok && len(isKey) > 0 {
		types := make([]string, len(t.key))
		for i, k := range t.key {
			types[i] = s.columnType(e, k, true)
		}
		for i, typ := range kf.FitKey(types) {
			keyTypes[t.key[i]] = typ
		}
	}
	build := func(withGenerated, withDefaults bool) (string, bool) {
		defs := make([]string, 0, len(names)+1)
		changed := false
		for _, c := range names {
			var col change.Column
			if e.Relation != nil {
				col, _ = e.Relation.Column(c)
			}
			if col.Generated {
				if !withGenerated || st == nil {
					changed = true
					continue
				}
				clause, ok := st.GeneratedColumn(col)
				if !ok {
					continue
				}
				defs = append(defs, s.d.Quote(c)+" "+s.columnType(e, c, false)+" "+clause)
				continue
			}
			typ, ok := keyTypes[c]
			if !ok {
				typ = s.columnType(e, c, isKey[c])
			}
			def := s.d.Quote(c) + " " + typ
			if isKey[c] || (col.NotNull && s.opts.mode != ModeAppend) {
				def += " NOT NULL"
			}
			if col.Default != "" && s.opts.mode != ModeAppend {
				if lit, ok := s.columnDefault(col); ok {
					if withDefaults {
						def += " DEFAULT " + lit
					} else {
						changed = true
					}
				}
			}
			defs = append(defs, def)
		}
		if len(isKey) > 0 {
			defs = append(defs, "PRIMARY KEY ("+s.quoteAll(t.key)+")")
		}
		return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s)%s", t.name.quoted(s.d), strings.Join(defs, ", "), s.d.TableOptions()), changed
	}
	full, _ := build(true, true)
	stmts := []string{full}
	if len(generated) > 0 {
		if noGen, changed := build(false, true); changed {
			stmts = append(stmts, noGen)
		}
	}
	if bare, changed := build(false, false); changed && bare != stmts[len(stmts)-1] {
		stmts = append(stmts, bare)
	}
	return stmts, nil
}

// addColumns handles a schema change: columns of e's row that t lacks.
func (s *Sink) addColumns(ctx context.Context, t *table, e *change.Event, missing []string) error {
	extra, _ := s.extraColumns()
	for _, c := range missing {
		reserved := false
		for _, x := range extra {
			reserved = reserved || x == c
		}
		if s.opts.schema == SchemaFail {
			what := fmt.Sprintf("source table %s has column %q", e.QualifiedTable(), c)
			if reserved {
				what = fmt.Sprintf("the sink's mode needs column %q", c)
			}
			return engine.Permanent(fmt.Errorf("%s sink %q: %s, which target table %s lacks, and schema_changes = \"fail\": add the column to %s (ALTER TABLE ... ADD COLUMN) or set schema_changes = \"add_columns\"",
				s.d.Name(), s.name, what, t.name, t.name))
		}
		if e.Relation != nil {
			if col, ok := e.Relation.Column(c); ok {
				if err := s.createTypes(ctx, []change.Column{col}); err != nil {
					return err
				}
			}
		}
		ddl := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", t.name.quoted(s.d), s.d.Quote(c), s.columnType(e, c, false))
		stmts := []string{ddl}
		if e.Relation != nil {
			// With the source's default, the rows that existed before show
			// it in the target as they do in the source, where adding the
			// column wrote no change of them. A target that refuses the
			// default gets the column without it.
			if col, ok := e.Relation.Column(c); ok && col.Default != "" && !col.Generated {
				if lit, ok := constDefault(s.d, col.Default); ok {
					stmts = []string{ddl + " DEFAULT (" + lit + ")", ddl}
				} else {
					s.log.Warn("source column's default is not a constant: rows that existed before it was added have NULL in the target, not the value the source gave them; re-copy the table to fill them",
						"table", t.name.String(), "column", c, "default", col.Default)
				}
			}
		}
		if err := s.ddl(ctx, true, stmts...); err != nil {
			return err
		}
		s.log.Info("added column to target table", "table", t.name.String(), "column", c, "source", e.QualifiedTable())
	}
	cols, err := s.columns(ctx, t.name)
	if err != nil {
		return &statementError{query: "select columns", err: err}
	}
	s.setColumns(t, cols)
	return nil
}

// errReplay is returned (retriable) after the sink rolled back its
// transaction to run DDL that the target cannot run inside it.
var errReplay = fmt.Errorf("the open transaction was rolled back to alter the table; reopen the sink to replay from its checkpoint")

// ddl runs a CREATE or ALTER TABLE: the first of stmts the target takes
// (the others are fallbacks, tried in order). Where DDL is transactional
// it runs in the open transaction, so that it commits with the rows that
// need it. Elsewhere it runs on another connection; an ALTER of a table
// the open transaction may hold locks on first rolls that transaction
// back and the call returns a retriable error, so the engine replays from
// the checkpoint into the altered table: never half a source transaction
// committed by MySQL's implicit commit.
func (s *Sink) ddl(ctx context.Context, alter bool, stmts ...string) error {
	_, err := s.ddlFirst(ctx, alter, stmts...)
	return err
}

// ddlFirst is ddl, also returning the index of the statement that ran.
func (s *Sink) ddlFirst(ctx context.Context, alter bool, stmts ...string) (int, error) {
	if s.d.TransactionalDDL() && !s.shared() {
		var err error
		for i, stmt := range stmts {
			if i > 0 {
				// The failed statement aborted the transaction: undo it
				// alone, keeping the rows written before.
				if err := s.exec(ctx, "ROLLBACK TO SAVEPOINT sluice_ddl"); err != nil {
					return i, err
				}
			}
			if len(stmts) > 1 {
				if err := s.exec(ctx, "SAVEPOINT sluice_ddl"); err != nil {
					return i, err
				}
			}
			if err = s.exec(ctx, stmt); err == nil {
				return i, nil
			}
		}
		return 0, err
	}
	rolledBack := false
	if alter && s.dirty {
		_ = s.tx.Rollback()
		s.endTx()
		s.forgetTables()
		rolledBack = true
	}
	var err error
	used := 0
	for i, stmt := range stmts {
		if _, err = s.db.ExecContext(ctx, stmt); err == nil {
			used = i
			break
		}
	}
	if err != nil {
		if rolledBack {
			return 0, fmt.Errorf("%s sink %q: %s: %w", s.d.Name(), s.name, stmts[0], err)
		}
		return 0, &statementError{query: stmts[0], err: err}
	}
	if rolledBack {
		return used, fmt.Errorf("%s sink %q: %s: %w", s.d.Name(), s.name, stmts[0], errReplay)
	}
	return used, nil
}

func (s *Sink) quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = s.d.Quote(n)
	}
	return strings.Join(q, ", ")
}

// columns returns the target table's columns and their lower-case types;
// an empty map means the table does not exist. It reads inside the open
// transaction, which sees the DDL the transaction ran.
func (s *Sink) columns(ctx context.Context, t Name) (map[string]string, error) {
	var schema any
	if t.Schema != "" {
		schema = t.Schema
	}
	if s.tx == nil {
		return nil, fmt.Errorf("no open transaction")
	}
	rows, err := s.tx.QueryContext(ctx, s.d.ColumnsQuery(), schema, t.Table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		cols[name] = strings.ToLower(typ)
	}
	return cols, rows.Err()
}

// checkUnique makes sure an upsert can find rows by t's key: without a
// primary key or unique index on exactly those columns, MySQL would
// insert duplicates and PostgreSQL refuse every statement.
func (s *Sink) checkUnique(ctx context.Context, t *table) error {
	var schema any
	if t.name.Schema != "" {
		schema = t.name.Schema
	}
	rows, err := s.tx.QueryContext(ctx, s.d.UniqueKeysQuery(), schema, t.name.Table)
	if err != nil {
		return &statementError{query: "select unique keys", err: err}
	}
	defer rows.Close()
	want := strings.Join(sortedCopy(t.key), ",")
	found := false
	var others []string
	for rows.Next() {
		var cols string
		if err := rows.Scan(&cols); err != nil {
			return &statementError{query: "select unique keys", err: err}
		}
		if strings.Join(sortedCopy(strings.Split(cols, ",")), ",") == want {
			found = true
		} else {
			others = append(others, "("+cols+")")
		}
	}
	if err := rows.Err(); err != nil {
		return &statementError{query: "select unique keys", err: err}
	}
	if found {
		if len(others) > 0 && s.d.UpsertsOnAnyUniqueKey() {
			s.log.Warn("target table has unique keys besides the sink's: a row colliding on one of them updates the row holding that value instead of failing",
				"table", t.name.String(), "key", strings.Join(t.key, ","), "other_unique_keys", strings.Join(others, " "))
		}
		return nil
	}
	return engine.Permanent(fmt.Errorf("%s sink %q: target table %s has no primary key or unique index on (%s), so upserts cannot find its rows: add one (ALTER TABLE %s ADD PRIMARY KEY (%s)) or set key = [...] to the columns of one",
		s.d.Name(), s.name, t.name, strings.Join(t.key, ", "), t.name, strings.Join(t.key, ", ")))
}

func sortedCopy(list []string) []string {
	out := append([]string(nil), list...)
	sort.Strings(out)
	return out
}

// foldedColumn reports whether c names an existing column under the
// dialect's case folding, and then records it under c's spelling.
func (s *Sink) foldedColumn(t *table, c string) bool {
	if !s.d.FoldsCase() {
		return false
	}
	for name, typ := range t.cols {
		if strings.EqualFold(name, c) {
			t.cols[c] = typ
			return true
		}
	}
	return false
}
