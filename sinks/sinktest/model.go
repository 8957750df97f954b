package sinktest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// text is how the cases' values read back as text: they are integers and
// ASCII strings only, which every target prints the same way.
func text(v any) string {
	switch v := v.(type) {
	case nil:
		return Null
	case int64:
		return strconv.FormatInt(v, 10)
	case string:
		return v
	case change.Numeric:
		return string(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprint(v)
}

// rowText is r's sent columns as text; nil for the zero Row.
func rowText(r change.Row) Row {
	if r.IsZero() {
		return nil
	}
	out := Row{}
	for c, v := range r.All() {
		out[c] = text(v)
	}
	return out
}

// tableModel is what a Table target must hold after events: rows by key,
// with the columns the events had (a column the table gained later is
// NULL in the rows written before).
type tableModel struct {
	cols []string
	rows map[string]Row
}

func newTableModel(events []change.Event, trunc Truncation) *tableModel {
	m := &tableModel{rows: map[string]Row{}}
	for i := range events {
		e := &events[i]
		if e.Table != table {
			continue
		}
		if e.Op.IsRow() {
			for _, name := range e.Row().Columns().Names() {
				if !slices.Contains(m.cols, name) {
					m.cols = append(m.cols, name)
				}
			}
		}
		switch e.Op {
		case change.Insert, change.Update, change.Snapshot:
			k := text(e.Key.Get("id"))
			r := m.rows[k]
			if r == nil {
				r = Row{}
				m.rows[k] = r
			}
			for c, v := range e.After.All() { // Unsent columns keep their value
				r[c] = text(v)
			}
		case change.Delete:
			delete(m.rows, text(e.Key.Get("id")))
		case change.Truncate:
			if trunc == TruncateEmpties {
				clear(m.rows)
			}
		}
	}
	return m
}

// want is the model's rows, each with every column, sorted by key.
func (m *tableModel) want() []string {
	var out []string
	for _, r := range m.rows {
		out = append(out, m.format(r))
	}
	sortByKey(out)
	return out
}

// format prints a row's model columns, in model order: id=1 name=x.
func (m *tableModel) format(r Row) string {
	parts := make([]string, len(m.cols))
	for i, c := range m.cols {
		v, ok := r[c]
		if !ok {
			v = Null
		}
		parts[i] = c + "=" + v
	}
	return strings.Join(parts, " ")
}

// sortByKey sorts formatted rows by their leading id, numerically.
func sortByKey(rows []string) {
	id := func(s string) int {
		f, _, _ := strings.Cut(strings.TrimPrefix(s, "id="), " ")
		n, _ := strconv.Atoi(f)
		return n
	}
	sort.SliceStable(rows, func(i, j int) bool { return id(rows[i]) < id(rows[j]) })
}

// messagesOf is what a Log target must hold after events, in order:
// one message per row change, a truncate as trunc says, no Marks; with
// keyless, messages carry no key.
func messagesOf(events []change.Event, trunc Truncation, keyless bool) []Message {
	var out []Message
	for i := range events {
		e := &events[i]
		switch {
		case e.Op.IsRow():
			m := Message{Op: e.Op.String(), Table: e.Table, Key: rowText(e.Key), Row: rowText(e.After)}
			if e.Op == change.Delete {
				m.Row = rowText(e.Before)
				if m.Row == nil {
					m.Row = m.Key
				}
			}
			if keyless {
				m.Key = nil
			}
			out = append(out, m)
		case e.Op == change.Truncate && trunc == TruncateMessage:
			out = append(out, Message{Op: "truncate", Table: e.Table})
		}
	}
	return out
}

// String prints a message on one line: insert items {"id":"1"} {...}.
func (m Message) String() string {
	k, _ := json.Marshal(m.Key)
	r, _ := json.Marshal(m.Row)
	return fmt.Sprintf("%s %s key=%s row=%s", m.Op, m.Table, k, r)
}

func formatMessages(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// firstOccurrences drops each message that repeats an earlier one.
func firstOccurrences(ms []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

// diff lists got and want one per line for a failure message.
func diff(got, want []string) string {
	var b strings.Builder
	b.WriteString("\n got:")
	for _, g := range got {
		b.WriteString("\n  " + g)
	}
	if len(got) == 0 {
		b.WriteString(" (nothing)")
	}
	b.WriteString("\nwant:")
	for _, w := range want {
		b.WriteString("\n  " + w)
	}
	if len(want) == 0 {
		b.WriteString(" (nothing)")
	}
	return b.String()
}
