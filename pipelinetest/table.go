package pipelinetest

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// The columns the sinks add to target tables.
const (
	// DeletedColumn is set true by a soft delete and false by every upsert.
	DeletedColumn = "__deleted"
	// OpColumn, PositionColumn and CommitTimeColumn describe each change
	// in append mode: its op name, its position (change.Position.String)
	// and its source commit time (null when unknown).
	OpColumn         = "__op"
	PositionColumn   = "__position"
	CommitTimeColumn = "__commit_time"
)

// Table is an in-memory model of one target table: the rows a sink
// leaves in it after a sequence of events, with the semantics the
// database sinks document:
//
//   - mode "upsert" (default): inserts, updates and snapshot rows are
//     written by key: a new key adds a row, an existing key has the
//     columns present in After overwritten, and columns absent from After
//     (unchanged TOAST values, excluded columns) keep their value. An
//     update whose Before holds another key moves the row: the old key is
//     deleted as a delete would delete it, then the new row is written,
//     keeping the moved row's values of the columns After lacks.
//     The key is the sink's `key`, else the event's Key columns, else "id".
//   - delete "hard" removes the row; "soft" keeps it with __deleted =
//     true (a delete of an unknown key writes Before with __deleted =
//     true), and every upsert sets __deleted = false; "skip" ignores
//     deletes.
//   - mode "append": every change is a new row: its row (After, else
//     Before) plus __op, __position and __commit_time. Deletes are
//     appended too unless delete = "skip".
//   - mode "update": only rows that exist are changed, and only the
//     listed `columns` present in After. Nothing is inserted or deleted.
//     An in-memory table starts empty: rows come from ApplySource, the
//     changes the source database made to a table the pipeline writes
//     back into.
//
// Marks change nothing. A truncate follows the sink's `truncate`:
// "apply" (default) removes every row (soft deletes mark them, append
// mode appends it, update mode ignores it), "skip" ignores it, "fail" is
// an error.
//
// A Table is not safe for concurrent use.
type Table struct {
	Name     string
	mode     string
	delete   string
	truncate string
	key      []string // configured; nil means learned from the first event
	columns  []string // with mode "update"
	rows     map[string]change.Row
	order    []string // keys in first-write order
}

// NewTable returns an empty model of table name written by a sink with
// settings s. A nil s models a sink that writes events rather than rows
// (kafka, webhook, file): every change appended, as in mode "append".
func NewTable(name string, s *dsl.TableSink) *Table {
	t := &Table{Name: name, mode: "append", delete: "hard", rows: map[string]change.Row{}}
	if s != nil {
		t.mode, t.delete, t.truncate, t.key, t.columns = s.Mode, s.Delete, s.Truncate, s.Key, s.Columns
	}
	if t.mode == "" {
		t.mode = "upsert"
	}
	if t.delete == "" {
		t.delete = "hard"
	}
	if t.mode == "append" {
		t.key = []string{PositionColumn}
	}
	return t
}

// Key returns the columns rows are identified by: the configured key, the
// key learned from the first event, or "id".
func (t *Table) Key() []string {
	if t.key == nil {
		return []string{"id"}
	}
	return t.key
}

// Apply changes the table as the sink would for e.
func (t *Table) Apply(e *change.Event) error {
	switch {
	case e.Op == change.Mark:
		return nil
	case e.Op == change.Truncate && t.truncate == "fail":
		return fmt.Errorf("table %s: truncate at position %s: the sink has truncate = \"fail\"", t.Name, e.Position)
	case e.Op == change.Truncate && (t.truncate == "skip" || t.mode == "update"):
		return nil
	case e.Op == change.Truncate && t.mode != "append":
		for _, k := range slices.Clone(t.order) {
			t.remove(k, change.Row{})
		}
		return nil
	case t.mode == "append":
		if e.Op == change.Delete && t.delete == "skip" {
			return nil
		}
		row := e.Row().Clone()
		if row.IsZero() {
			row = change.RowOf(map[string]any{})
		}
		row.Set(OpColumn, e.Op.String())
		row.Set(PositionColumn, e.Position.String())
		row.Set(CommitTimeColumn, nil)
		if !e.Tx.CommitTime.IsZero() {
			row.Set(CommitTimeColumn, e.Tx.CommitTime)
		}
		t.put(fmt.Sprintf("%d", len(t.order)), row)
		return nil
	}
	if t.key == nil {
		t.key = keyColumns(e)
	}
	if e.Op == change.Delete {
		k, err := t.keyOf(e, e.Before)
		if err != nil {
			return err
		}
		if t.mode != "update" {
			t.remove(k, e.Before)
		}
		return nil
	}
	k, err := t.keyOf(e, e.After)
	if err != nil {
		return err
	}
	if t.mode == "update" {
		if row, ok := t.rows[k]; ok {
			for _, c := range t.columns {
				if v, ok := e.After.Lookup(c); ok {
					row.Set(c, v)
				}
			}
			t.rows[k] = row
		}
		return nil
	}
	var moved change.Row // the stored row a primary-key update moves
	if e.Op == change.Update && !e.Before.IsZero() {
		if old, err := t.keyOf(e, e.Before); err == nil && old != k {
			moved = t.rows[old].Clone()
			t.remove(old, e.Before)
		}
	}
	row, ok := t.rows[k]
	if !ok {
		row = change.RowOf(map[string]any{})
		for c, v := range moved.All() {
			row.Set(c, v) // the columns After lacks keep their values
		}
		t.put(k, row)
	}
	for c, v := range e.After.All() {
		row.Set(c, v)
	}
	if t.delete == "soft" {
		row.Set(DeletedColumn, false)
	}
	t.rows[k] = row // a Row is a value: store what Set made
	return nil
}

// ApplySource changes the table as the source database changed it, with
// plain upsert and hard-delete semantics whatever the sink's mode: for a
// pipeline that writes back into the table it reads, the inputs
// themselves are changes of the target table.
func (t *Table) ApplySource(e *change.Event) error {
	mode, del := t.mode, t.delete
	t.mode, t.delete = "upsert", "hard"
	defer func() { t.mode, t.delete = mode, del }()
	return t.Apply(e)
}

// remove deletes the row at key k by the table's delete setting.
func (t *Table) remove(k string, before change.Row) {
	switch t.delete {
	case "skip":
	case "soft":
		row, ok := t.rows[k]
		if !ok {
			row = before.Clone()
			if row.IsZero() {
				row = change.RowOf(map[string]any{})
			}
			t.put(k, row)
		}
		row.Set(DeletedColumn, true)
		t.rows[k] = row
	default:
		delete(t.rows, k)
		if i := slices.Index(t.order, k); i >= 0 {
			t.order = slices.Delete(t.order, i, i+1)
		}
	}
}

func (t *Table) put(k string, row change.Row) {
	t.rows[k] = row
	t.order = append(t.order, k)
}

// keyColumns is the key a table learns from its first event when the
// sink sets none: the event's Key columns, else "id".
func keyColumns(e *change.Event) []string {
	if e.Key.Len() > 0 {
		return e.Key.Names()
	}
	return []string{"id"}
}

// keyOf returns the key text of row (falling back to e.Key for key
// columns row lacks).
func (t *Table) keyOf(e *change.Event, row change.Row) (string, error) {
	parts := make([]string, len(t.key))
	for i, c := range t.key {
		v, ok := row.Lookup(c)
		if !ok {
			v, ok = e.Key.Lookup(c)
		}
		if !ok {
			return "", fmt.Errorf("table %s: the %s at position %s has no value for key column %q: give it in the input, or set key = [...] on the sink to columns the rows have", t.Name, e.Op, e.Position, c)
		}
		parts[i] = keyText(v)
	}
	return strings.Join(parts, "\x00"), nil
}

// Rows returns the table's rows, in key order (append mode: in the order
// written). The rows are the table's own: do not change them.
func (t *Table) Rows() []change.Row {
	out := make([]change.Row, 0, len(t.order))
	keys := slices.Clone(t.order)
	if t.mode != "append" {
		sort.Strings(keys)
	}
	for _, k := range keys {
		out = append(out, t.rows[k])
	}
	return out
}

// Diff compares the table with the rows a test expects, ignoring order:
// rows are matched by the table's key columns. It returns one line per
// difference (a missing row, an extra row, a column that differs), empty
// when they agree. A column absent from a row counts as null, except
// that in append mode an expected row may leave out __op, __position and
// __commit_time (and is then matched to a row by its other columns).
func (t *Table) Diff(want []change.Row) []string { return t.View().Diff(want) }

// View returns the table as an expect_table sees it.
func (t *Table) View() TableView {
	v := TableView{Name: t.Name, Key: t.Key(), Rows: t.Rows()}
	if t.mode == "append" {
		v.Optional = []string{OpColumn, PositionColumn, CommitTimeColumn}
	}
	return v
}

func diffRows(key, optional []string, want, got []change.Row) []string {
	used := make([]bool, len(got))
	var lines []string
	for _, w := range want {
		i := match(key, optional, w, got, used)
		if i < 0 {
			lines = append(lines, "missing row "+keyLabel(key, w)+": "+Format(w))
			continue
		}
		used[i] = true
		for _, d := range diffRow("", w, without(got[i], w, optional), true) {
			lines = append(lines, "row "+keyLabel(key, w)+": column "+d)
		}
	}
	for i, g := range got {
		if !used[i] {
			lines = append(lines, "extra row "+keyLabel(key, g)+": "+Format(g))
		}
	}
	return lines
}

// match finds the unused row of got with w's key, preferring one equal
// to w in every column (keys may repeat, e.g. in an event list). Key
// columns w leaves out do not count.
func match(key, optional []string, w change.Row, got []change.Row, used []bool) int {
	found := -1
	for i, g := range got {
		if used[i] || !sameKey(key, w, g) {
			continue
		}
		if len(diffRow("", w, without(g, w, optional), true)) == 0 {
			return i
		}
		if found < 0 {
			found = i
		}
	}
	return found
}

func sameKey(key []string, w, g change.Row) bool {
	for _, c := range key {
		if v, ok := w.Lookup(c); ok && !Equal(v, g.Get(c)) {
			return false
		}
	}
	return true
}

// without returns g less the optional columns that w leaves out.
func without(g, w change.Row, optional []string) change.Row {
	var out change.Row
	for _, c := range optional {
		if _, given := w.Lookup(c); given {
			continue
		}
		if _, ok := g.Lookup(c); ok {
			if out.IsZero() {
				out = g.Clone()
			}
			out.Delete(c)
		}
	}
	if out.IsZero() {
		return g
	}
	return out
}

func keyLabel(key []string, r change.Row) string {
	parts := make([]string, len(key))
	for i, c := range key {
		parts[i] = c + " = " + Format(r.Get(c))
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}
