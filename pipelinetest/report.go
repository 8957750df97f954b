package pipelinetest

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// The runners of a test.
const (
	// Memory runs a test with no database or network (Run).
	Memory = "memory"
	// Live runs a test against the real databases of the pipeline's
	// source and sinks, in scratch copies (`sluice test --live`).
	Live = "live"
)

// Outcome is how one runner's run of a test went.
type Outcome struct {
	Runner string // Memory or Live
	Passed bool
	// Failure says why the run failed, one problem per paragraph, each
	// pointing at the expectation's FILE:LINE and showing expected against
	// actual; empty when it passed.
	Failure string
	// Views are what the run found for each expectation, in the order
	// written (see Judge).
	Views []View
	// Notes are what a reader of a failure should know besides: what ran
	// live and what did not, what the components warned of.
	Notes   []string
	Elapsed time.Duration
}

// Result is the outcome of one test block over every run of it: in
// memory always, and against real databases too with `sluice test
// --live`. Passed and Failure sum the runs up: a test passes when every
// run passes, and when the runs disagree Failure shows what each found
// side by side, naming the first row that differs.
type Result struct {
	Name string
	// Pos is where the test block is written, "FILE:LINE".
	Pos    string
	Passed bool
	// Failure says why the test failed (see Outcome.Failure; with several
	// runs, each run's failure under its runner's name and the runs side
	// by side); empty when the test passed.
	Failure string
	// Runs are the runs of the test, the in-memory one first.
	Runs []Outcome
}

// NewResult returns the result of test t from the outcomes of its runs.
func NewResult(t *dsl.Test, runs ...Outcome) Result {
	r := Result{Name: t.Name, Pos: lineOf(t.DeclRange.Filename, t.DeclRange.Start.Line)}
	for _, o := range runs {
		r = r.With(o)
	}
	return r
}

// With returns r with the outcome of one more run of the test added.
func (r Result) With(o Outcome) Result {
	r.Runs = append(r.Runs[:len(r.Runs):len(r.Runs)], o)
	r.Passed, r.Failure = true, ""
	for _, run := range r.Runs {
		r.Passed = r.Passed && run.Passed
	}
	if r.Passed {
		return r
	}
	if len(r.Runs) == 1 {
		r.Failure = r.Runs[0].Failure
		return r
	}
	var parts []string
	first := r.Runs[0]
	for _, run := range r.Runs {
		if run.Passed {
			parts = append(parts, "passes "+runnerPhrase(run.Runner))
		} else {
			parts = append(parts, "fails "+runnerPhrase(run.Runner))
		}
	}
	var b strings.Builder
	b.WriteString(strings.Join(parts, ", ") + ":")
	for _, run := range r.Runs {
		if !run.Passed {
			fmt.Fprintf(&b, "\n%s:\n%s", runnerPhrase(run.Runner), indent(run.Failure, "  "))
		}
	}
	for _, run := range r.Runs[1:] {
		if side := SideBySide(first, run); side != "" {
			fmt.Fprintf(&b, "\n%s and %s side by side:\n%s", first.Runner, run.Runner, indent(side, "  "))
		}
	}
	for _, run := range r.Runs {
		if !run.Passed && len(run.Notes) > 0 {
			fmt.Fprintf(&b, "\nnotes of the %s run:\n%s", run.Runner, indent(strings.Join(run.Notes, "\n"), "  "))
		}
	}
	r.Failure = b.String()
	return r
}

func runnerPhrase(runner string) string {
	if runner == Memory {
		return "in memory"
	}
	return runner
}

// Elapsed is the time all runs of the test took.
func (r Result) Elapsed() time.Duration {
	var d time.Duration
	for _, o := range r.Runs {
		d += o.Elapsed
	}
	return d
}

// String is "PASS NAME" (with several runs "PASS NAME (memory, live)")
// or "FAIL NAME (FILE:LINE)" followed by the failure, indented.
func (r Result) String() string {
	if r.Passed {
		if len(r.Runs) > 1 {
			names := make([]string, len(r.Runs))
			for i, o := range r.Runs {
				names[i] = o.Runner
			}
			return "PASS " + r.Name + " (" + strings.Join(names, ", ") + ")"
		}
		return "PASS " + r.Name
	}
	return "FAIL " + r.Name + " (" + r.Pos + ")\n" + indent(r.Failure, "    ")
}

// Count returns how many results passed and failed.
func Count(results []Result) (passed, failed int) {
	for _, r := range results {
		if r.Passed {
			passed++
		} else {
			failed++
		}
	}
	return passed, failed
}

// SideBySide shows, for each expectation where two runs of a test found
// different things, what each found in two columns: a table row by row
// (matched by key), events one by one; the first line that differs is
// named, and every differing line is marked "≠". Values compare as
// Equal does, and a null column is the same as an absent one. It is
// empty when the runs found the same.
func SideBySide(a, b Outcome) string {
	var out []string
	for _, va := range a.Views {
		vb, ok := findView(b.Views, va.Of)
		if !ok {
			continue
		}
		var lines []pair
		if va.Table != nil && vb.Table != nil {
			lines = pairRows(*va.Table, *vb.Table)
		} else {
			lines = pairEvents(va.Events, vb.Events)
		}
		first := slices.IndexFunc(lines, func(p pair) bool { return p.differ })
		if first < 0 {
			continue
		}
		head := va.Of
		if va.Table != nil && va.Table.Name != "" {
			head += ", table " + va.Table.Name
		}
		head += ": the first that differs is " + lines[first].label
		out = append(out, head+"\n"+indent(columns(a.Runner, b.Runner+targetOf(vb), lines), "  "))
	}
	return strings.Join(out, "\n")
}

func targetOf(v View) string {
	if v.Table != nil && v.Table.Target != "" {
		return " (" + v.Table.Target + ")"
	}
	return ""
}

func findView(views []View, of string) (View, bool) {
	for _, v := range views {
		if v.Of == of {
			return v, true
		}
	}
	return View{}, false
}

// pair is one line of a side-by-side view: what each run has there.
type pair struct {
	left, right string
	differ      bool
	label       string // which row or event: "row { id = 1 }", "event 2"
}

// noRow and noEvent stand for the side that has none.
const (
	noRow   = "(no row)"
	noEvent = "(no event)"
)

// pairRows lines up two views of one table: rows with the same key side
// by side (append mode, whose positions differ between runs: in order),
// without the columns an expectation may leave out, nulls left out.
func pairRows(a, b TableView) []pair {
	key := a.Key
	if len(key) == 0 {
		key = b.Key
	}
	clean := func(v TableView, r change.Row) change.Row {
		r = r.Clone()
		for _, c := range v.Optional {
			r.Delete(c)
		}
		for c, x := range r.All() {
			if x == nil {
				r.Delete(c) // absent and null are the same in a table
			}
		}
		return r
	}
	line := func(label string, ra, rb change.Row) pair {
		p := pair{left: noRow, right: noRow, label: label}
		if !ra.IsZero() {
			p.left = Format(ra)
		}
		if !rb.IsZero() {
			p.right = Format(rb)
		}
		p.differ = ra.IsZero() || rb.IsZero() || len(diffRow("", ra, rb, true)) > 0
		return p
	}
	var lines []pair
	if len(a.Optional) > 0 || len(b.Optional) > 0 {
		for i := 0; i < max(len(a.Rows), len(b.Rows)); i++ {
			var ra, rb change.Row
			if i < len(a.Rows) {
				ra = clean(a, a.Rows[i])
			}
			if i < len(b.Rows) {
				rb = clean(b, b.Rows[i])
			}
			lines = append(lines, line(fmt.Sprintf("row %d", i+1), ra, rb))
		}
		return lines
	}
	keyOf := func(r change.Row) string {
		parts := make([]string, len(key))
		for i, c := range key {
			parts[i] = keyText(r.Get(c))
		}
		return strings.Join(parts, "\x00")
	}
	var order []string
	rowsA, rowsB := map[string]change.Row{}, map[string]change.Row{}
	for _, r := range a.Rows {
		k := keyOf(r)
		if _, dup := rowsA[k]; !dup {
			order = append(order, k)
		}
		rowsA[k] = clean(a, r)
	}
	for _, r := range b.Rows {
		k := keyOf(r)
		_, inA := rowsA[k]
		if _, dup := rowsB[k]; !inA && !dup {
			order = append(order, k)
		}
		rowsB[k] = clean(b, r)
	}
	for _, k := range order {
		ra, rb := rowsA[k], rowsB[k]
		named := ra
		if named.IsZero() {
			named = rb
		}
		lines = append(lines, line("row "+keyLabel(key, named), ra, rb))
	}
	return lines
}

// pairEvents lines up what a sink received in two runs, event by event,
// each shown by its op, table, before and after (the key is left out: it
// is the source's, and a live source may key a table otherwise).
func pairEvents(a, b []change.Event) []pair {
	var lines []pair
	for i := 0; i < max(len(a), len(b)); i++ {
		p := pair{left: noEvent, right: noEvent, label: fmt.Sprintf("event %d", i+1), differ: true}
		var ea, eb change.Event
		if i < len(a) {
			ea = a[i]
			ea.Key = change.Row{}
			p.left = Describe(&ea)
		}
		if i < len(b) {
			eb = b[i]
			eb.Key = change.Row{}
			p.right = Describe(&eb)
		}
		if i < len(a) && i < len(b) {
			p.differ = ea.Op != eb.Op || ea.QualifiedTable() != eb.QualifiedTable() ||
				len(diffRow("", ea.Before, eb.Before, true)) > 0 || len(diffRow("", ea.After, eb.After, true)) > 0
		}
		lines = append(lines, p)
	}
	return lines
}

// columns prints the pairs under their runners' names, in two columns
// when the left one is narrow enough, else one side under the other;
// lines whose sides differ start with "≠".
func columns(headA, headB string, lines []pair) string {
	width := utf8.RuneCountInString(headA)
	for _, l := range lines {
		width = max(width, utf8.RuneCountInString(l.left))
	}
	mark := func(p pair) string {
		if p.differ {
			return "≠ "
		}
		return "  "
	}
	var b strings.Builder
	if width <= 60 {
		pad := func(s string) string { return s + strings.Repeat(" ", width-utf8.RuneCountInString(s)) }
		fmt.Fprintf(&b, "  %s | %s", pad(headA), headB)
		for _, p := range lines {
			fmt.Fprintf(&b, "\n%s%s | %s", mark(p), pad(p.left), p.right)
		}
		return b.String()
	}
	wa, wb := utf8.RuneCountInString(headA), utf8.RuneCountInString(headB)
	w := max(wa, wb)
	for i, p := range lines {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s%s:%s %s\n  %s:%s %s", mark(p), headA, strings.Repeat(" ", w-wa), p.left, headB, strings.Repeat(" ", w-wb), p.right)
	}
	return b.String()
}
