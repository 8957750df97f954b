package pipelinetest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Observation is what one run of a test saw, whichever runner ran it:
// the events each sink received for the test's inputs, and each target
// table an expect_table names as the run left it. Judge compares it with
// the test, so that every runner speaks one test language.
type Observation struct {
	// Received returns the row events (marks left out) that the named
	// sink received for the test's inputs, in the order it received them.
	Received func(sink string) []change.Event
	// Table returns the target table that et names, as the run left it.
	// It is only called for sinks the pipeline has.
	Table func(et dsl.TestExpectTable) (TableView, error)
}

// TableView is a target table as a run found it.
type TableView struct {
	// Name is the table's name; empty when the sink wrote no table.
	Name string
	// Target says where the rows were read: empty for the in-memory
	// model, else the database that holds them ("mysql", "postgres").
	Target string
	// Key lists the columns that identify a row.
	Key []string
	// Optional lists the columns an expected row may leave out (in mode
	// "append": __op, __position and __commit_time).
	Optional []string
	// Rows are the table's rows, in key order (append mode: in the order
	// written).
	Rows []change.Row
}

// Diff compares the table with the rows a test expects, as Table.Diff
// does.
func (v TableView) Diff(want []change.Row) []string {
	return diffRows(v.Key, v.Optional, want, v.Rows)
}

// View is what one run found for one expectation: the events a sink
// received (for its expect blocks) or a target table (for an
// expect_table). The outcomes of two runners of one test are shown side
// by side through their views.
type View struct {
	// Of names the expectation: `expect "sink.NAME" (FILE:LINE)` (the
	// first expect of that sink) or `expect_table "sink.NAME" (FILE:LINE)`.
	Of string
	// Events are what the sink received, for expect blocks.
	Events []change.Event
	// Table is the target table, for an expect_table; nil for expect
	// blocks.
	Table *TableView
}

// Judge compares what a run observed with the test's expect and
// expect_table blocks (see Run for the rules) and returns the problems,
// one per paragraph, each pointing at the expectation's FILE:LINE, and a
// View of what the run found for each expectation, in the order written.
func Judge(cfg *dsl.Config, t *dsl.Test, obs Observation) ([]string, []View) {
	problems, views := checkExpects(cfg, t, obs)
	for _, et := range t.ExpectTables {
		where := fmt.Sprintf("expect_table %q (%s)", "sink."+et.Sink, lineOf(et.DeclRange.Filename, et.DeclRange.Start.Line))
		if findSink(cfg, et.Sink) == nil {
			problems = append(problems, fmt.Sprintf("%s: the pipeline has no sink %q", where, et.Sink))
			continue
		}
		tv, err := obs.Table(et)
		if err != nil {
			problems = append(problems, where+": "+err.Error())
			continue
		}
		views = append(views, View{Of: where, Table: &tv})
		problems = append(problems, compareTable(where, et, tv)...)
	}
	return problems, views
}

// compareTable compares a target table with an expect_table's rows.
func compareTable(where string, et dsl.TestExpectTable, tv TableView) []string {
	diff := tv.Diff(et.Rows)
	if len(diff) == 0 {
		return nil
	}
	label := "table"
	if tv.Name != "" {
		label = "table " + tv.Name
	}
	if tv.Target != "" {
		label += " (" + tv.Target + ")"
	}
	p := fmt.Sprintf("%s: %s differs:\n  %s", where, label, strings.Join(diff, "\n  "))
	p += "\n  want rows: " + formatRows(et.Rows) + "\n  got rows:  " + formatRows(tv.Rows)
	return []string{p}
}

// checkExpects compares what each sink received with the test's expect
// blocks, and applies the nothing-reaches rule to the sinks it names in
// none (see Run).
func checkExpects(cfg *dsl.Config, t *dsl.Test, obs Observation) ([]string, []View) {
	var problems []string
	var views []View
	bySink := map[string][]dsl.TestExpect{}
	var order []string
	for _, x := range t.Expects {
		if _, seen := bySink[x.Sink]; !seen {
			order = append(order, x.Sink)
		}
		bySink[x.Sink] = append(bySink[x.Sink], x)
	}
	for _, sink := range order {
		first := bySink[sink][0]
		where := fmt.Sprintf("expect %q (%s)", "sink."+sink, lineOf(first.DeclRange.Filename, first.DeclRange.Start.Line))
		if findSink(cfg, sink) == nil {
			problems = append(problems, fmt.Sprintf("%s: the pipeline has no sink %q", where, sink))
			continue
		}
		got := obs.Received(sink)
		views = append(views, View{Of: where, Events: got})
		problems = append(problems, compareEvents(sink, bySink[sink], got)...)
	}
	if len(t.Expects) == 0 && len(t.ExpectTables) > 0 {
		return problems, views
	}
	for _, s := range cfg.Sinks {
		_, expected := bySink[s.Name]
		if expected || slices.ContainsFunc(t.ExpectTables, func(et dsl.TestExpectTable) bool { return et.Sink == s.Name }) {
			continue
		}
		if got := obs.Received(s.Name); len(got) > 0 {
			p := fmt.Sprintf("sink.%s: the test has no expect for it, so nothing may reach it, but %d event(s) did:", s.Name, len(got))
			for i := range got {
				p += "\n  " + Describe(&got[i])
			}
			problems = append(problems, p)
		}
	}
	return problems, views
}

// compareEvents compares one sink's expects with what it received, in
// order.
func compareEvents(sink string, want []dsl.TestExpect, got []change.Event) []string {
	var problems []string
	for i := 0; i < max(len(want), len(got)); i++ {
		switch {
		case i >= len(got):
			problems = append(problems, fmt.Sprintf("expect %q (%s): event %d never reached the sink (it received %d); wanted:\n  %s",
				"sink."+sink, lineOf(want[i].DeclRange.Filename, want[i].DeclRange.Start.Line), i+1, len(got), Describe(&want[i].Event)))
		case i >= len(want):
			problems = append(problems, fmt.Sprintf("sink.%s: unexpected event %d (the test expects %d):\n  %s", sink, i+1, len(want), Describe(&got[i])))
		default:
			if diff := diffEvent(&want[i].Event, &got[i]); len(diff) > 0 {
				problems = append(problems, fmt.Sprintf("expect %q (%s): event %d differs:\n  %s\n  want: %s\n  got:  %s",
					"sink."+sink, lineOf(want[i].DeclRange.Filename, want[i].DeclRange.Start.Line), i+1, strings.Join(diff, "\n  "), Describe(&want[i].Event), Describe(&got[i])))
			}
		}
	}
	return problems
}

// diffEvent compares an event with an expectation: op always; before,
// after and key when the expectation gives them.
func diffEvent(want, got *change.Event) []string {
	var lines []string
	if want.Op != 0 && want.Op != got.Op {
		lines = append(lines, "op: want "+want.Op.String()+", got "+got.Op.String())
	}
	for _, part := range []struct {
		name      string
		want, got change.Row
	}{{"before", want.Before, got.Before}, {"after", want.After, got.After}, {"key", want.Key, got.Key}} {
		switch {
		case part.want.IsZero():
		case part.got.IsZero():
			lines = append(lines, part.name+": want "+Format(part.want)+", got none")
		default:
			lines = append(lines, diffRow(part.name+".", part.want, part.got, false)...)
		}
	}
	return lines
}

// Describe is a one-line view of an event: op, table and the parts it
// has, as a test would write them.
func Describe(e *change.Event) string {
	s := "any op" // an expect may leave op out
	if e.Op != 0 {
		s = e.Op.String()
	}
	if t := e.QualifiedTable(); t != "" {
		s += " " + t
	}
	if !e.Key.IsZero() {
		s += " key = " + Format(e.Key)
	}
	if !e.Before.IsZero() {
		s += " before = " + Format(e.Before)
	}
	if !e.After.IsZero() {
		s += " after = " + Format(e.After)
	}
	return s
}
