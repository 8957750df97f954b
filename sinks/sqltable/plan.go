package sqltable

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// plan turns one event into row operations on the batcher.
func (s *Sink) plan(ctx context.Context, b *batcher, e *change.Event) error {
	if e.Op == change.Truncate {
		return s.planTruncate(ctx, b, e)
	}
	if !e.Op.IsRow() {
		return engine.Permanent(fmt.Errorf("%s sink %q: event at position %s of %s has op %s, which no sink applies", s.d.Name(), s.name, e.Position.String(), e.QualifiedTable(), e.Op))
	}
	t, err := s.tableFor(ctx, e)
	if err != nil {
		return err
	}
	switch s.opts.mode {
	case ModeAppend:
		if e.Op == change.Delete && s.opts.delete == DeleteSkip {
			return nil
		}
		var commit any
		if !e.Tx.CommitTime.IsZero() {
			commit = e.Tx.CommitTime.UTC()
		}
		return b.add(ctx, e, opInsert, t, e.Row(), nil, []any{e.Op.String(), positionText(e.Position), commit}, "")
	case ModeUpdate:
		if e.After.IsZero() {
			return nil // update mode changes existing rows; a delete changes none
		}
		return s.planUpdate(ctx, b, t, e)
	}
	if e.Op == change.Delete {
		return s.planDelete(ctx, b, t, e, e.Before)
	}
	key, err := keyValues(t, e.After, e)
	if err != nil {
		return err
	}
	var extra []any
	if s.opts.delete == DeleteSoft {
		extra = []any{false}
	}
	whole := !partial(e, e.After)
	if e.Op == change.Update && !e.Before.IsZero() {
		if old, err := keyValues(t, e.Before, e); err == nil && keyString(old) != keyString(key) {
			// A primary-key update. After lacks the columns the source did
			// not send (unchanged TOASTed values): the stored row moves to
			// the new key with them before the old key goes.
			if !whole {
				if err := s.planMove(ctx, b, t, e, old, extra); err != nil {
					return err
				}
			}
			// The old key goes as a delete would.
			if err := s.planDelete(ctx, b, t, e, e.Before); err != nil {
				return err
			}
		}
	}
	if !whole {
		// Never an INSERT that needs the values the event lacks: the
		// existing row is updated, and only a row the target lacks is
		// inserted with what the event has.
		return b.add(ctx, e, opPatch, t, e.After, patchColumns(t, e.After), extra, keyString(key))
	}
	return b.add(ctx, e, opUpsert, t, e.After, nil, extra, keyString(key))
}

// planTruncate applies a source TRUNCATE as the truncate option says:
// the target table is emptied in the open transaction, so it commits
// with the source transaction's other changes. It is a DELETE, not a
// TRUNCATE: MySQL's TRUNCATE TABLE commits on its own, and PostgreSQL's
// locks every reader of the replica out until the commit, where a DELETE
// lets them read the rows as they were. Soft deletes mark
// every row; append mode records the truncate as a row; update mode,
// which never removes rows, leaves the table as it is.
func (s *Sink) planTruncate(ctx context.Context, b *batcher, e *change.Event) error {
	switch {
	case s.opts.truncate == TruncateSkip || s.opts.mode == ModeUpdate:
		return nil
	case s.opts.truncate == TruncateFail:
		return engine.Permanent(fmt.Errorf("%s sink %q: source table %s was truncated (at position %s) and truncate = \"fail\": empty the target table yourself and set truncate = \"skip\" to carry on past it, or set truncate = \"apply\"",
			s.d.Name(), s.name, e.QualifiedTable(), e.Position.String()))
	}
	if s.tables[e.QualifiedTable()] == nil {
		name := s.opts.table
		if name.Table == "" {
			name = Name{Table: e.Table}
		}
		cols, err := s.columns(ctx, name)
		if err != nil {
			return &statementError{query: "select columns", err: err}
		}
		if len(cols) == 0 {
			return nil // no target table yet: nothing to empty
		}
	}
	t, err := s.tableFor(ctx, e)
	if err != nil {
		return err
	}
	if s.opts.mode == ModeAppend {
		var commit any
		if !e.Tx.CommitTime.IsZero() {
			commit = e.Tx.CommitTime.UTC()
		}
		return b.add(ctx, e, opInsert, t, change.NewRow(), nil, []any{e.Op.String(), positionText(e.Position), commit}, "")
	}
	if err := b.execQueued(ctx); err != nil { // keep the order of statements
		return err
	}
	s.dirty = true
	if s.opts.delete == DeleteSoft {
		deleted, err := s.d.Value(true, t.cols[DeletedColumn])
		if err != nil {
			return err
		}
		q := fmt.Sprintf("UPDATE %s SET %s = %s", t.name.quoted(s.d), s.d.Quote(DeletedColumn), s.d.Placeholder(1))
		return onTable(s.exec(ctx, q, deleted), t)
	}
	return onTable(s.exec(ctx, "DELETE FROM "+t.name.quoted(s.d)), t)
}

// partial reports whether row lacks a column of e's source table: a value
// the source did not send (an unchanged TOASTed value, or the columns
// besides the key in a delete under the default replica identity). A
// partial row can update a stored row but not make a whole one. Events
// without a Relation (file and Kafka sources) are taken as whole, and
// generated columns, whose values no event carries, do not count.
func partial(e *change.Event, row change.Row) bool {
	if e.Relation == nil || row.Len() >= len(e.Relation.Columns) {
		return false // a row's columns are its Relation's
	}
	for _, c := range e.Relation.Columns {
		if _, ok := row.Lookup(c.Name); !ok && !c.Generated {
			return true
		}
	}
	return false
}

// patchColumns lists t's key columns, then row's other columns sorted:
// the column order of opPatch and opUpdate statements.
func patchColumns(t *table, row change.Row) []string {
	cols := append(make([]string, 0, row.Len()), t.key...)
	for _, c := range row.Names() {
		if !slices.Contains(t.key, c) {
			cols = append(cols, c)
		}
	}
	return cols
}

// planMove copies the stored row at key old to After's key, taking the
// columns After lacks from the stored row and the others from After, in
// one INSERT ... SELECT (an upsert, should the new key exist). When the
// target has no row at old, it copies nothing, and the opPatch that
// follows writes what After has.
func (s *Sink) planMove(ctx context.Context, b *batcher, t *table, e *change.Event, old []any, extra []any) error {
	if err := b.execQueued(ctx); err != nil { // keep the order of statements
		return err
	}
	d := s.d
	n := e.After.Len()
	cols := make([]string, 0, n+len(extra))
	vals := make([]any, 0, n+len(extra)+len(old))
	for c, v := range e.After.Sorted() {
		cv, err := d.Value(v, t.cols[c])
		if err != nil {
			return &engine.RejectError{Event: *e, Err: fmt.Errorf("column %q: %w", c, err)}
		}
		cols = append(cols, c)
		vals = append(vals, cv)
	}
	names, _ := s.extraColumns()
	for i, v := range extra {
		cv, err := d.Value(v, t.cols[names[i]])
		if err != nil {
			return &engine.RejectError{Event: *e, Err: err}
		}
		vals = append(vals, cv)
		cols = append(cols, names[i])
	}
	var absent []string
	for _, c := range e.Relation.Columns {
		if _, ok := e.After.Lookup(c.Name); ok || c.Generated || slices.Contains(cols, c.Name) {
			continue
		}
		if _, ok := t.cols[c.Name]; ok || s.foldedColumn(t, c.Name) {
			absent = append(absent, c.Name)
		}
	}
	// v holds After's values and, as __sluice_old_K, the old key.
	vcols := append([]string(nil), cols...)
	types := make([]string, 0, len(cols)+len(t.key))
	for _, c := range cols {
		types = append(types, t.cols[c])
	}
	match := make([]string, len(t.key))
	for i, k := range t.key {
		alias := "__sluice_old_" + k
		vcols = append(vcols, alias)
		types = append(types, t.cols[k])
		match[i] = "o." + d.Quote(k) + " = v." + d.Quote(alias)
		v, err := d.Value(old[i], t.cols[k])
		if err != nil {
			return &engine.RejectError{Event: *e, Err: fmt.Errorf("column %q: %w", k, err)}
		}
		vals = append(vals, v)
	}
	sel := make([]string, 0, len(cols)+len(absent))
	for _, c := range cols {
		sel = append(sel, "v."+d.Quote(c))
	}
	for _, c := range absent {
		sel = append(sel, "o."+d.Quote(c))
	}
	all := append(append([]string(nil), cols...), absent...)
	var update []string
	for _, c := range all {
		if !slices.Contains(t.key, c) {
			update = append(update, c)
		}
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s, %s AS o WHERE %s%s", t.name.quoted(d), s.quoteAll(all),
		strings.Join(sel, ", "), d.RowsSource(vcols, types, 1), t.name.quoted(d), strings.Join(match, " AND "), d.OnConflict(t.key, update))
	s.dirty = true
	return onTable(s.exec(ctx, q, vals...), t)
}

// planDelete removes the row keyed by row (or by e.Key where row lacks
// key columns) as the delete option says.
func (s *Sink) planDelete(ctx context.Context, b *batcher, t *table, e *change.Event, row change.Row) error {
	if s.opts.delete == DeleteSkip {
		return nil
	}
	for _, k := range t.key {
		if _, ok := row.Lookup(k); !ok {
			row = mergeKey(row, e.Key)
			break
		}
	}
	key, err := keyValues(t, row, e)
	if err != nil {
		return s.planDeleteBySourceKey(ctx, b, t, e, row, err)
	}
	if s.opts.delete == DeleteSoft {
		if partial(e, row) {
			// Only the key (default replica identity): mark the stored
			// row, which keeps its values; there is none to make.
			return b.add(ctx, e, opUpdate, t, row, t.key, []any{true}, keyString(key))
		}
		return b.add(ctx, e, opUpsert, t, row, nil, []any{true}, keyString(key))
	}
	return b.add(ctx, e, opDelete, t, row, t.key, nil, keyString(key))
}

// planDeleteBySourceKey handles a delete whose row lacks a column of the
// sink's key. Under PostgreSQL's default replica identity a delete carries
// only the source's primary key, so a sink keyed by other columns (the
// pasta example: key = ["name"]) cannot name the row by its own key; it
// finds it by the source key instead, when the target has those columns.
// Otherwise the delete is rejected, saying what to change.
func (s *Sink) planDeleteBySourceKey(ctx context.Context, b *batcher, t *table, e *change.Event, row change.Row, cause error) error {
	src := e.Key.Names()
	ok := len(src) > 0 && (s.opts.delete != DeleteSoft || len(src) == len(t.key))
	vals := make([]any, len(src))
	for i, c := range src {
		v, present := row.Lookup(c)
		_, inTarget := t.cols[c]
		ok = ok && present && v != nil && inTarget
		vals[i] = v
	}
	if !ok {
		return &engine.RejectError{Event: *e, Err: fmt.Errorf("%v: the delete carries only the source table's key; run ALTER TABLE %s REPLICA IDENTITY FULL on the source so that deletes carry every column, or key the sink by the source's primary key", cause, e.QualifiedTable())}
	}
	key := "source key " + keyString(vals)
	if s.opts.delete == DeleteSoft {
		// UPDATE ... SET __deleted = true matching the source key columns
		return b.add(ctx, e, opUpdate, t, row, src, []any{true}, key)
	}
	return b.add(ctx, e, opDelete, t, row, src, nil, key)
}

// planUpdate queues the configured columns present in e.After for the
// existing row with After's key. Rows of one column set share a multi-row
// UPDATE that writes a row only where one of them differs.
func (s *Sink) planUpdate(ctx context.Context, b *batcher, t *table, e *change.Event) error {
	key, err := keyValues(t, e.After, e)
	if err != nil {
		return err
	}
	cols := make([]string, 0, len(t.key)+len(s.opts.columns))
	cols = append(cols, t.key...)
	for _, c := range s.opts.columns {
		if _, ok := e.After.Lookup(c); ok {
			cols = append(cols, c) // absent ones are left as they are
		}
	}
	if len(cols) == len(t.key) {
		return nil
	}
	return b.add(ctx, e, opUpdate, t, e.After, cols, nil, keyString(key))
}

// onTable names t in a statement error.
func onTable(err error, t *table) error {
	var se *statementError
	if errors.As(err, &se) {
		se.table = t.name.String()
	}
	return err
}

// keyValues returns row's values of t's key columns, or a RejectError
// when the row lacks one.
func keyValues(t *table, row change.Row, e *change.Event) ([]any, error) {
	vals := make([]any, len(t.key))
	for i, k := range t.key {
		v, ok := row.Lookup(k)
		if !ok || v == nil {
			return nil, &engine.RejectError{Event: *e, Err: fmt.Errorf("the row has no value for key column %q of %s", k, t.name)}
		}
		vals[i] = v
	}
	return vals, nil
}

// mergeKey returns row with key's columns added, key's values winning
// (a new row; rows are shared). It is never the zero Row.
func mergeKey(row, key change.Row) change.Row {
	n := row.Len() + key.Len()
	names := make([]string, 0, n)
	vals := make([]any, 0, n)
	for c, v := range row.All() {
		if !key.Has(c) {
			names = append(names, c)
			vals = append(vals, v)
		}
	}
	for c, v := range key.All() {
		names = append(names, c)
		vals = append(vals, v)
	}
	return change.MakeRow(change.NewColumns(names...), vals)
}

// keyString identifies a key within a statement, so that one statement
// never touches a row twice.
func keyString(vals []any) string {
	var b []byte
	for _, v := range vals {
		switch v := v.(type) {
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case string:
			b = append(b, v...)
		default:
			b = fmt.Append(b, v)
		}
		b = append(b, 0)
	}
	return string(b)
}

// positionText is the __position value of append mode: OFFSET.INDEX,
// prefixed by the partition for partitioned sources.
func positionText(p change.Position) string {
	if p.Partition == "" {
		return p.String()
	}
	return p.Partition + "@" + p.String()
}

type opKind uint8

const (
	opUpsert opKind = iota + 1 // INSERT ... ON CONFLICT/DUPLICATE KEY UPDATE
	opInsert                   // plain INSERT (append mode)
	opDelete                   // DELETE ... WHERE key IN (...)
	opUpdate                   // UPDATE ... FROM rows WHERE key matches and a value differs (update mode)
	// opPatch writes partial rows: UPDATE ... FROM rows WHERE key
	// matches, then INSERT ... SELECT the rows whose key the table lacks.
	opPatch
)

// batcher gathers consecutive rows of one table, one kind and one column
// set, with distinct keys, into one multi-row statement; anything else
// ends the statement, so the order of changes per key is kept.
type batcher struct {
	s     *Sink
	kind  opKind
	t     *table
	cols  []string // statement columns: the row's (sorted), then the reserved ones
	nrow  int      // how many of cols come from the row
	args  []any
	rows  int
	max   int
	keys  map[string]struct{}
	extra int
	bytes int // approximate size of args
	// cur is the index of the event being planned; first that of the
	// event that started the queued statement.
	cur, first int
	// colsKey is cols as a statement shape names them.
	colsKey string
	// pos holds where cols[:nrow] sit in the values of rows of Columns
	// posCols (-1: such rows lack the column), when posSet: rows of one
	// source table shape share their Columns, so a row's values are read
	// by position rather than looked up by name, column by column.
	pos     []int
	posCols *change.Columns
	posSet  bool
}

// add queues one row of e. only, when set, lists the columns taken from
// row (a delete's key); otherwise all of row's columns are written.
// extra are the values of the mode's reserved columns.
func (b *batcher) add(ctx context.Context, e *change.Event, kind opKind, t *table, row change.Row, only []string, extra []any, key string) error {
	if !b.fits(kind, t, row, only, len(extra), key) {
		if err := b.execQueued(ctx); err != nil {
			return err
		}
		b.start(kind, t, row, only, len(extra))
	}
	mark := len(b.args)
	pos := b.positions(row)
	for i, c := range b.cols[:b.nrow] {
		var rv any // NULL where the row lacks c: callers passing only check their rows have it
		if p := pos[i]; p >= 0 {
			rv, _ = row.Value(p)
		}
		v, err := b.s.d.Value(rv, t.cols[c])
		if err != nil {
			b.args = b.args[:mark]
			return &engine.RejectError{Event: *e, Err: fmt.Errorf("column %q: %w", c, err)}
		}
		b.args = append(b.args, v)
	}
	for i, v := range extra {
		cv, err := b.s.d.Value(v, t.cols[b.cols[b.nrow+i]])
		if err != nil {
			b.args = b.args[:mark]
			return &engine.RejectError{Event: *e, Err: err}
		}
		b.args = append(b.args, cv)
	}
	for _, v := range b.args[mark:] {
		switch v := v.(type) {
		case string:
			b.bytes += len(v)
		case []byte:
			b.bytes += len(v)
		default:
			b.bytes += 8
		}
	}
	b.rows++
	if key != "" {
		b.keys[key] = struct{}{}
	}
	if b.rows >= b.max || b.bytes >= MaxStatementBytes {
		return b.execQueued(ctx)
	}
	return nil
}

func (b *batcher) fits(kind opKind, t *table, row change.Row, only []string, extra int, key string) bool {
	if b.rows == 0 || b.kind != kind || b.t != t || b.extra != extra {
		return false
	}
	if _, dup := b.keys[key]; dup && key != "" {
		return false
	}
	if only != nil {
		if len(only) != b.nrow {
			return false
		}
		for i, c := range only {
			if b.cols[i] != c {
				return false
			}
		}
		return true
	}
	// The row has each of the statement's columns, and no other.
	for _, p := range b.positions(row) {
		if p < 0 {
			return false
		}
		if _, ok := row.Value(p); !ok {
			return false
		}
	}
	if cols := row.Columns(); cols == nil || cols.Len() != b.nrow {
		return row.Len() == b.nrow
	}
	return true
}

// positions returns where the statement's row columns, cols[:nrow], sit
// in row's values: -1 where row lacks the column, else an index for
// row.Value, which may still say the column was not sent. They are
// computed once per Columns.
func (b *batcher) positions(row change.Row) []int {
	cols := row.Columns()
	if b.posSet && cols == b.posCols {
		return b.pos
	}
	b.pos = b.pos[:0]
	for _, c := range b.cols[:b.nrow] {
		i := -1
		if cols != nil {
			i = cols.Index(c)
		}
		b.pos = append(b.pos, i)
	}
	b.posCols, b.posSet = cols, true
	return b.pos
}

func (b *batcher) start(kind opKind, t *table, row change.Row, only []string, extra int) {
	b.kind, b.t, b.extra, b.rows, b.first = kind, t, extra, 0, b.cur
	if only != nil {
		b.cols = append(b.cols[:0], only...)
	} else {
		b.cols = append(b.cols[:0], row.Names()...)
	}
	b.nrow = len(b.cols)
	b.posCols, b.posSet = nil, false
	if extra > 0 {
		names, _ := b.s.extraColumns()
		b.cols = append(b.cols, names[:extra]...)
	}
	b.colsKey = colsKey(b.cols)
	b.max = MaxStatementRows
	if m := b.s.d.MaxParams() / max(len(b.cols), 1); m < b.max {
		b.max = max(m, 1)
	}
	if b.keys == nil {
		b.keys = map[string]struct{}{}
	} else {
		clear(b.keys)
	}
	b.args = b.args[:0]
	b.bytes = 0
}

// execQueued executes the queued statement, if any. Its text is built once
// per table and shape (the kind, the columns and, unless the columns
// travel as arrays, the row count) and prepared once it repeats.
func (b *batcher) execQueued(ctx context.Context) error {
	if b.rows == 0 {
		return nil
	}
	var rowArgs []any // the arguments row by row, before arrays replace them
	if b.kind == opPatch {
		rowArgs = slices.Clone(b.args)
	}
	k := shape{kind: b.kind, cols: b.colsKey, rows: b.rows}
	if b.arrayArgs() {
		k.rows = 0
	}
	if b.kind == opPatch {
		return b.patch(ctx, k, rowArgs)
	}
	q := b.t.text(k, func() string { return b.statement(b.kind, b.rows, k.rows == 0) })
	b.s.dirty = true
	err := b.exec(ctx, q)
	b.reset()
	return err
}

// statement writes the statement of kind over rows queued rows (opPatch:
// its UPDATE), with one array parameter per column when byArray.
func (b *batcher) statement(kind opKind, rows int, byArray bool) string {
	s, d := b.s, b.s.d
	var q strings.Builder
	q.Grow(rows*len(b.cols)*4 + 128)
	switch {
	case kind == opUpdate || kind == opPatch:
		return b.updateFrom(b.rowsSource(rows, byArray), kind == opUpdate)
	case byArray && kind == opDelete:
		fmt.Fprintf(&q, "DELETE FROM %s WHERE (%s) IN (%s)", b.t.name.quoted(d), s.quoteAll(b.cols), b.unnest())
	case byArray:
		fmt.Fprintf(&q, "INSERT INTO %s (%s) %s", b.t.name.quoted(d), s.quoteAll(b.cols), b.unnest())
	case kind == opDelete:
		fmt.Fprintf(&q, "DELETE FROM %s WHERE ", b.t.name.quoted(d))
		if len(b.cols) == 1 {
			q.WriteString(d.Quote(b.cols[0]) + " IN (")
		} else {
			q.WriteString("(" + s.quoteAll(b.cols) + ") IN (")
		}
		b.placeholders(&q, rows, len(b.cols) > 1)
		q.WriteByte(')')
	default:
		fmt.Fprintf(&q, "INSERT INTO %s (%s) VALUES ", b.t.name.quoted(d), s.quoteAll(b.cols))
		b.placeholders(&q, rows, true)
	}
	if kind == opUpsert {
		update := make([]string, 0, len(b.cols))
		for _, c := range b.cols {
			if !slices.Contains(b.t.key, c) {
				update = append(update, c)
			}
		}
		q.WriteString(d.OnConflict(b.t.key, update))
	}
	return q.String()
}

// placeholders writes rows tuples of one placeholder per column,
// comma-separated, each in parentheses when paren.
func (b *batcher) placeholders(q *strings.Builder, rows int, paren bool) {
	n := 0
	for r := 0; r < rows; r++ {
		if r > 0 {
			q.WriteString(", ")
		}
		if paren {
			q.WriteByte('(')
		}
		for c := range b.cols {
			if c > 0 {
				q.WriteString(", ")
			}
			n++
			q.WriteString(b.s.d.Placeholder(n))
		}
		if paren {
			q.WriteByte(')')
		}
	}
}

// rowsSource is the derived table v of the queued rows.
func (b *batcher) rowsSource(rows int, byArray bool) string {
	if byArray {
		return "(" + b.unnest() + ") AS v (" + b.s.quoteAll(b.cols) + ")"
	}
	types := make([]string, len(b.cols))
	for i, c := range b.cols {
		types[i] = b.t.cols[c]
	}
	return b.s.d.RowsSource(b.cols, types, rows)
}

// patch executes the queued partial rows (opPatch): it updates the
// stored rows from the derived table of them, then inserts those whose
// key the table lacks, with the values they have. It asks the target
// which keys those are rather than leaving it to a single
// INSERT ... SELECT ... WHERE NOT EXISTS, which MySQL refuses outright
// when a column the rows lack is NOT NULL without a default, even if
// every row exists. k is the UPDATE's shape; rowArgs are the queued
// values row by row.
func (b *batcher) patch(ctx context.Context, k shape, rowArgs []any) error {
	s, d := b.s, b.s.d
	defer b.reset()
	s.dirty = true
	if err := b.exec(ctx, b.t.text(k, func() string { return b.statement(opPatch, b.rows, k.rows == 0) })); err != nil {
		return err
	}
	nkey, ncol := len(b.t.key), len(b.cols)
	args := make([]any, 0, b.rows*(nkey+1))
	for r := 0; r < b.rows; r++ {
		args = append(args, rowArgs[r*ncol:r*ncol+nkey]...)
		args = append(args, int64(r))
	}
	q := b.t.text(shape{kind: opPatch, part: 1, rows: b.rows}, func() string {
		keys := append(append([]string(nil), b.t.key...), "__sluice_row")
		types := make([]string, 0, len(keys))
		for _, k := range b.t.key {
			types = append(types, b.t.cols[k])
		}
		types = append(types, d.ValueType(int64(0), false))
		match := make([]string, nkey)
		for i, k := range b.t.key {
			match[i] = "x." + d.Quote(k) + " = v." + d.Quote(k)
		}
		return fmt.Sprintf("SELECT v.%s FROM %s WHERE NOT EXISTS (SELECT 1 FROM %s AS x WHERE %s)",
			d.Quote("__sluice_row"), d.RowsSource(keys, types, b.rows), b.t.name.quoted(d), strings.Join(match, " AND "))
	})
	missing, err := s.rowNumbers(ctx, q, args)
	if err != nil {
		var se *statementError
		if errors.As(err, &se) {
			se.first = b.first
		}
		return onTable(err, b.t)
	}
	if len(missing) == 0 {
		return nil
	}
	b.args = b.args[:0]
	for _, r := range missing {
		b.args = append(b.args, rowArgs[r*ncol:(r+1)*ncol]...)
	}
	ins := b.t.text(shape{kind: opInsert, cols: b.colsKey, rows: len(missing)}, func() string {
		return b.statement(opInsert, len(missing), false)
	})
	return b.exec(ctx, ins)
}

// reset empties the queued statement.
func (b *batcher) reset() {
	b.rows, b.bytes = 0, 0
	b.args = b.args[:0]
	clear(b.keys)
}

// exec runs one statement over the queued rows' arguments; a failure
// names the table and the first event of the statement.
func (b *batcher) exec(ctx context.Context, query string) error {
	err := onTable(b.s.execCached(ctx, query, b.args...), b.t)
	var se *statementError
	if errors.As(err, &se) {
		se.first = b.first
	}
	return err
}

// updateFrom writes the UPDATE of the queued rows from the derived table
// src of them: key columns first, then the columns to set. onlyChanged
// writes a row only where a value differs (update mode).
func (b *batcher) updateFrom(src string, onlyChanged bool) string {
	d := b.s.d
	nkey := len(b.t.key)
	match := make([]string, nkey)
	for i, k := range b.cols[:nkey] {
		match[i] = "t." + d.Quote(k) + " = v." + d.Quote(k)
	}
	changed := "1 = 1"
	if onlyChanged {
		same := make([]string, 0, len(b.cols)-nkey)
		for _, c := range b.cols[nkey:] {
			same = append(same, d.NotDistinct("t."+d.Quote(c), "v."+d.Quote(c)))
		}
		changed = "NOT (" + strings.Join(same, " AND ") + ")"
	}
	return d.UpdateFrom(b.t.name.quoted(d), src, strings.Join(match, " AND "), changed, b.cols[nkey:])
}

// arrayArgs replaces the queued arguments by one array parameter per
// column, where the dialect can (ArrayInserter), and reports whether it
// did. Array parameters keep the statement text the same for every
// row count.
func (b *batcher) arrayArgs() bool {
	if !b.t.arrayable(b.s.d, b.colsKey, b.cols) {
		return false
	}
	ai := b.s.d.(ArrayInserter)
	n := len(b.cols)
	arrays := make([]any, n)
	col := make([]any, b.rows)
	for i := range b.cols {
		for r := 0; r < b.rows; r++ {
			col[r] = b.args[r*n+i]
		}
		p, err := ai.ArrayParam(col)
		if err != nil {
			return false // the statement with one parameter per value reports it
		}
		arrays[i] = p
	}
	b.args = append(b.args[:0], arrays...)
	return true
}

// unnest is "SELECT * FROM unnest($1::T1[], ...)", one array parameter
// per column.
func (b *batcher) unnest() string {
	ai := b.s.d.(ArrayInserter)
	var q strings.Builder
	q.WriteString("SELECT * FROM unnest(")
	for i, c := range b.cols {
		if i > 0 {
			q.WriteString(", ")
		}
		t, _ := ai.ArrayType(b.t.cols[c])
		q.WriteString(b.s.d.Placeholder(i+1) + "::" + t)
	}
	q.WriteString(")")
	return q.String()
}
