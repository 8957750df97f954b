package pipelinetest

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Run runs every test block of cfg in memory: for each test it compiles
// the pipeline's transforms with reg (sources and sinks are never
// opened), turns each input into a change event, routes it through the
// graph and compares what reaches each sink with the test's `expect` and
// `expect_table` blocks. Tests are independent: each gets a new graph.
//
// Inputs become events as a source would deliver them:
//   - each input is its own source transaction (a Boundary) at the next
//     position of the stream of the first postgres source whose `tables`
//     match the input's table, else of the first other source; the
//     columns that source `exclude`s are removed, as PostgreSQL would
//     never send them;
//   - Key, when the input gives none, is taken from the row (After, else
//     Before): the `key` columns of the first sink downstream that sets
//     one the row has, else "id" when the row has it;
//   - Changed is every column of After for inserts and snapshots, and the
//     columns whose value differs from Before for updates.
//
// What reaches a sink is compared, Marks left out, with its `expect`
// blocks in order (op always; before, after and key when the expect gives
// them). A sink the test names in no expect and no expect_table must
// receive nothing, unless the test's only expectations are expect_table
// blocks (then it is about final tables, and says nothing of other
// sinks). A transform failure fails the test.
//
// expect_table compares the rows a Table model holds after every input.
// When the sink writes back into the table its source reads (a postgres
// sink on the source's dsn, e.g. an online backfill in mode "update"),
// the model starts from that table: each input is applied to it as the
// source database applied it before what the sink received for it.
//
// Tests are hermetic: the "hash" mask is keyed by MaskKey, never by the
// pipeline's mask_key or SLUICE_MASK_KEY (see Hermetic).
func Run(cfg *dsl.Config, reg components.Kinds) []Result {
	cfg = Hermetic(cfg)
	results := make([]Result, 0, len(cfg.Tests))
	for _, t := range cfg.Tests {
		results = append(results, runTest(cfg, reg, t))
	}
	return results
}

// MaskKey is the key of the "hash" mask in every test, whatever the
// pipeline's mask_key or the SLUICE_MASK_KEY environment variable say:
// the hashes a test expects are then the same on every machine, a CI job
// with secrets included (HMAC-SHA256 of the value keyed by MaskKey).
const MaskKey = "sluice-test-mask-key"

// Hermetic returns a shallow copy of cfg as tests run it: its mask key
// is MaskKey. cfg itself is not changed.
func Hermetic(cfg *dsl.Config) *dsl.Config {
	c := *cfg
	c.Pipeline.MaskKey = dsl.Secret(MaskKey)
	return &c
}

func runTest(cfg *dsl.Config, reg components.Kinds, t *dsl.Test) Result {
	start := time.Now()
	problems, views := check(cfg, reg, t)
	return NewResult(t, Outcome{Runner: Memory, Passed: len(problems) == 0, Failure: strings.Join(problems, "\n"), Views: views, Elapsed: time.Since(start)})
}

// delivery is one event a sink received and the input it came from.
type delivery struct {
	event change.Event
	input int // index into trace.inputs
}

// trace is what happened in one test: the inputs as their sources
// delivered them, and what each sink received.
type trace struct {
	inputs   []change.Event
	sources  []*dsl.Source // per input
	received map[string][]delivery
}

// events returns what sink received, in order.
func (tr *trace) events(sink string) []change.Event {
	ds := tr.received[sink]
	out := make([]change.Event, len(ds))
	for i, d := range ds {
		out[i] = d.event
	}
	return out
}

// check runs one test in memory and returns its problems and what it
// found for each expectation.
func check(cfg *dsl.Config, reg components.Kinds, t *dsl.Test) ([]string, []View) {
	g, err := components.Compile(cfg, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		return []string{"the pipeline does not build: " + err.Error()}, nil
	}
	tr := &trace{received: map[string][]delivery{}}
	var problems []string
	next := map[string]uint64{} // per source, the last position used
	for i, in := range t.Inputs {
		where := InputLabel(i, &in)
		src, err := SourceFor(cfg, &in.Event)
		if err != nil {
			return append(problems, where+": "+err.Error()), nil
		}
		next[src.Name]++
		e := InputEvent(cfg, g, src, &in.Event, next[src.Name])
		tr.inputs, tr.sources = append(tr.inputs, e), append(tr.sources, src)
		perSink, failed := g.Route(src.Name, []change.Event{e})
		for _, f := range failed {
			problems = append(problems, where+": "+f.Err.Error())
		}
		for sink, events := range perSink {
			for _, ev := range events {
				if ev.Op != change.Mark {
					tr.received[sink] = append(tr.received[sink], delivery{ev, i})
				}
			}
		}
	}
	found, views := Judge(cfg, t, Observation{
		Received: func(sink string) []change.Event { return tr.events(sink) },
		Table:    func(et dsl.TestExpectTable) (TableView, error) { return modelTable(cfg, et, tr) },
	})
	return append(problems, found...), views
}

// InputLabel names input i (0-based) of a test in problems: "input N
// (FILE:LINE)".
func InputLabel(i int, in *dsl.TestInput) string {
	return fmt.Sprintf("input %d (%s)", i+1, lineOf(in.DeclRange.Filename, in.DeclRange.Start.Line))
}

// SourceFor picks the source an input arrives from: the first postgres
// source that publishes its table, else the first source that names no
// tables (kafka, file).
func SourceFor(cfg *dsl.Config, e *change.Event) (*dsl.Source, error) {
	var other *dsl.Source
	for _, s := range cfg.Sources {
		if s.Postgres == nil {
			if other == nil {
				other = s
			}
			continue
		}
		for _, pattern := range s.Postgres.Tables {
			if pattern == e.QualifiedTable() || pattern == e.Schema+".*" {
				return s, nil
			}
		}
	}
	if other != nil {
		return other, nil
	}
	var names []string
	for _, s := range cfg.Sources {
		if s.Postgres != nil {
			names = append(names, s.Name+" ("+strings.Join(s.Postgres.Tables, ", ")+")")
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("the pipeline has no source for table %s to come from", e.QualifiedTable())
	}
	return nil, fmt.Errorf("no source reads table %s: the sources read %s; add the table to a source's tables or fix the input's label", e.QualifiedTable(), strings.Join(names, "; "))
}

// InputEvent completes a test input into the event src would deliver at
// offset n of its stream (see Run): position, transaction, boundary, the
// columns src excludes removed, Key and Changed filled in where the input
// leaves them out. g is the compiled pipeline (for the sinks downstream
// of src, whose key gives the Key).
func InputEvent(cfg *dsl.Config, g *engine.Graph, src *dsl.Source, in *change.Event, n uint64) change.Event {
	e := *in
	e.Position = change.Position{Source: src.Name, Offset: n}
	e.Tx = change.Tx{ID: n}
	e.Boundary = true
	if src.Postgres != nil {
		prefix := e.QualifiedTable() + "."
		for _, x := range src.Postgres.Exclude {
			if col, ok := strings.CutPrefix(x, prefix); ok {
				e.Before, e.After, e.Key = without1(e.Before, col), without1(e.After, col), without1(e.Key, col)
			}
		}
	}
	if e.Key.IsZero() {
		e.Key = inputKey(cfg, g.SinksOf(src.Name), e.Row())
	}
	if e.Changed == nil {
		e.Changed = changed(&e)
	}
	return e
}

// without1 returns r less column c, copied if it had it.
func without1(r change.Row, c string) change.Row {
	if _, ok := r.Lookup(c); !ok {
		return r
	}
	r = r.Clone()
	r.Delete(c)
	return r
}

// inputKey is the Key of a row whose input gives none: the key columns
// of the first downstream sink that sets some the row has, else "id".
func inputKey(cfg *dsl.Config, sinks []string, row change.Row) change.Row {
	for _, name := range sinks {
		cols := sinkKey(findSink(cfg, name))
		if len(cols) == 0 {
			continue
		}
		key := change.RowOf(map[string]any{})
		for _, c := range cols {
			if v, ok := row.Lookup(c); ok {
				key.Set(c, v)
			}
		}
		if key.Len() == len(cols) {
			return key
		}
	}
	if v, ok := row.Lookup("id"); ok {
		return change.RowOf(map[string]any{"id": v})
	}
	return change.Row{}
}

// sinkKey is the `key` a sink sets (nil when it sets none).
func sinkKey(s *dsl.Sink) []string {
	switch {
	case s == nil:
	case tableSink(s) != nil:
		return tableSink(s).Key
	case s.Kafka != nil:
		return s.Kafka.Key
	}
	return nil
}

// tableSink is a mysql or postgres sink's settings, nil for other sinks.
func tableSink(s *dsl.Sink) *dsl.TableSink {
	if s.MySQL != nil {
		return s.MySQL
	}
	return s.Postgres
}

func findSink(cfg *dsl.Config, name string) *dsl.Sink {
	for _, s := range cfg.Sinks {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func changed(e *change.Event) []string {
	switch e.Op {
	case change.Insert, change.Snapshot:
		return e.After.Names()
	case change.Update:
		var names []string
		for _, c := range e.After.Names() {
			if v, ok := e.Before.Lookup(c); !ok || !Equal(v, e.After.Get(c)) {
				names = append(names, c)
			}
		}
		return names
	}
	return nil
}

// modelTable models the target tables of one sink from what it received
// and returns the one the expect_table names.
//
// A sink that writes back into a table its own source reads (a postgres
// sink with the source's dsn, writing the input's table, as in an
// expand/backfill migration) starts from that table's rows: each input is
// first applied to the model as the source database applied it, then
// what the sink received for it.
func modelTable(cfg *dsl.Config, et dsl.TestExpectTable, tr *trace) (TableView, error) {
	s := findSink(cfg, et.Sink)
	ts := tableSink(s)
	tables := map[string]*Table{}
	var names []string
	table := func(e *change.Event) *Table {
		name := e.Table
		if ts != nil && ts.Table != "" {
			name = ts.Table
		}
		t, ok := tables[name]
		if !ok {
			t = NewTable(name, ts)
			tables[name] = t
			names = append(names, name)
		}
		return t
	}
	got := tr.received[et.Sink]
	for i := range tr.inputs {
		if in := &tr.inputs[i]; writesBack(s, tr.sources[i], in) {
			if err := table(in).ApplySource(in); err != nil {
				return TableView{}, err
			}
		}
		for ; len(got) > 0 && got[0].input == i; got = got[1:] {
			if err := table(&got[0].event).Apply(&got[0].event); err != nil {
				return TableView{}, err
			}
		}
	}
	var t *Table
	switch {
	case et.Table != "":
		t = tables[et.Table]
		if t == nil {
			t = NewTable(et.Table, ts)
		}
	case len(names) == 0:
		t = NewTable("", ts)
	case len(names) == 1:
		t = tables[names[0]]
	default:
		return TableView{}, fmt.Errorf("the sink wrote tables %s: say which one with table = \"...\"", strings.Join(names, ", "))
	}
	return t.View(), nil
}

// writesBack reports whether sink s writes into the very table that
// src delivered e from: a postgres sink on the source's dsn whose table
// is e's (by default it is). An append-mode sink writes a history, never
// its source table.
func writesBack(s *dsl.Sink, src *dsl.Source, e *change.Event) bool {
	if s.Postgres == nil || src.Postgres == nil || s.Postgres.DSN != src.Postgres.DSN || s.Postgres.Mode == "append" {
		return false
	}
	t := s.Postgres.Table
	return t == "" || t == e.Table || t == e.QualifiedTable()
}

func formatRows(rows []change.Row) string {
	if len(rows) == 0 {
		return "[]"
	}
	parts := make([]string, len(rows))
	for i, r := range rows {
		parts[i] = Format(r)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// lineOf formats where a block is written as FILE:LINE. It takes the
// range's parts so that this package need not import HCL (only dsl does).
func lineOf(filename string, line int) string {
	return fmt.Sprintf("%s:%d", filename, line)
}

func indent(s, prefix string) string {
	if s == "" {
		return ""
	}
	return prefix + strings.ReplaceAll(s, "\n", "\n"+prefix)
}
