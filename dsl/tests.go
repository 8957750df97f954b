package dsl

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/sluice-cdc/sluice/engine/change"
)

// eventFields is what input and expect blocks decode into.
type eventFields struct {
	Op                 string
	Before, After, Key change.Row
}

func (f *eventFields) event() change.Event {
	e := change.Event{Before: f.Before, After: f.After, Key: f.Key}
	if f.Op != "" {
		e.Op, _ = change.ParseOp(f.Op) // the spec's enum admits only valid ops
	}
	return e
}

func (l *loader) test(b *hclsyntax.Block, seen map[string]hcl.Range) *Test {
	if !l.labels(b, testSpec) {
		return nil
	}
	t := &Test{Name: b.Labels[0], DeclRange: b.DefRange()}
	if prev, dup := seen[t.Name]; dup {
		l.errorf(b.LabelRanges[0], fmt.Sprintf("The first test %q is at %s. Give each test its own description.", t.Name, where(prev)),
			"duplicate test %q", t.Name)
	}
	seen[t.Name] = b.LabelRanges[0]
	l.decodeBody(b, testSpec)
	for _, nb := range b.Body.Blocks {
		spec := testSpec.block(nb.Type)
		if spec == nil || !l.labels(nb, spec) {
			continue // decodeBody reported the unknown block
		}
		switch nb.Type {
		case "input":
			if in, ok := l.input(nb, spec); ok {
				t.Inputs = append(t.Inputs, in)
			}
		case "expect":
			var f eventFields
			l.decodeBody(nb, spec, &f)
			if sink, ok := l.sinkLabel(nb, false); ok {
				t.Expects = append(t.Expects, TestExpect{Sink: sink, Event: f.event(), DeclRange: nb.DefRange()})
			}
		case "expect_table":
			var f struct {
				Rows  []change.Row
				Table string
			}
			l.decodeBody(nb, spec, &f)
			if sink, ok := l.sinkLabel(nb, true); ok {
				t.ExpectTables = append(t.ExpectTables, TestExpectTable{Sink: sink, Table: f.Table, Rows: f.Rows, DeclRange: nb.DefRange()})
			}
		}
	}
	if !hasBlock(b.Body, "input") {
		l.errorf(b.DefRange(), `Add at least one input "schema.table" { op = "insert", after = { ... } } block.`, "test %q has no input", t.Name)
	}
	return t
}

// input decodes an input block and checks that it describes a possible
// event: the row an op needs is there.
func (l *loader) input(nb *hclsyntax.Block, spec *blockSpec) (TestInput, bool) {
	var f eventFields
	present := l.decodeBody(nb, spec, &f)
	schema, table, ok := strings.Cut(nb.Labels[0], ".")
	if !ok || schema == "" || table == "" || strings.Contains(table, ".") {
		problem, fix := qualifiedTable(nb.Labels[0])
		l.errorf(nb.LabelRanges[0], fix, "input label %q %s", nb.Labels[0], problem)
		return TestInput{}, false
	}
	need := ""
	switch f.Op {
	case "insert", "snapshot", "update":
		if f.After.IsZero() {
			need = "after"
		}
	case "delete":
		if f.Before.IsZero() && f.Key.IsZero() {
			need = "before"
		}
	}
	if need != "" && present["op"] != nil {
		l.errorf(present["op"].Expr.Range(), fmt.Sprintf("Add %s = { ... } with the row's columns.", need), "an input with op = %q needs %s", f.Op, need)
		return TestInput{}, false
	}
	e := f.event()
	e.Schema, e.Table = schema, table
	return TestInput{Event: e, DeclRange: nb.DefRange()}, f.Op != ""
}

// sinkLabel checks the "sink.NAME" label of expect blocks; expect_table
// also needs a sink that writes tables.
func (l *loader) sinkLabel(nb *hclsyntax.Block, table bool) (string, bool) {
	label, at := nb.Labels[0], nb.LabelRanges[0]
	kind, name, ok := strings.Cut(label, ".")
	if !ok || kind != "sink" || name == "" {
		l.errorf(at, fmt.Sprintf(`Name the sink whose events you expect: %s "sink.NAME" { ... }.`, nb.Type), "%s label %q is not \"sink.NAME\"", nb.Type, label)
		return "", false
	}
	var names []string
	for _, s := range l.cfg.Sinks {
		if s.Name != name {
			names = append(names, s.Name)
			continue
		}
		if table && s.MySQL == nil && s.Postgres == nil {
			l.errorf(at, "expect_table checks the rows of a mysql or postgres sink's table; for other sinks use expect blocks.",
				"sink %q is a %s sink, which writes no table", name, s.Type)
			return "", false
		}
		return name, true
	}
	l.errorf(at, didYouMean(name, names, "sinks"), "%s names unknown sink %q", nb.Type, name)
	return "", false
}

func hasBlock(body *hclsyntax.Body, typ string) bool {
	for _, b := range body.Blocks {
		if b.Type == typ {
			return true
		}
	}
	return false
}
