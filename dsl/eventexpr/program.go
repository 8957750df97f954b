package eventexpr

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Kind says what an expression must produce.
type Kind int

const (
	// Predicate expressions (`where`) must be boolean.
	Predicate Kind = iota
	// Value expressions (values of `set`) may produce anything.
	Value
)

// Program is a compiled expression. It is immutable and safe to share.
type Program struct {
	Source  string
	program *vm.Program
	// usesPosition reports that the expression reads `position`, the one
	// name whose value costs a formatting per event; Bind leaves it unset
	// until such a program runs.
	usesPosition bool
	// maps are the rows whose map the expression reads, because it uses
	// them whole (keys(row), after[name]); reads of single columns and
	// the like go to the change.Row itself (see rowAccess). Bind leaves
	// the maps unset until such a program runs.
	maps    rowMask
	columns []ColumnRef
	// fast, when set, decides most events of a Predicate without the VM
	// (see pred).
	fast pred
}

// ColumnRef is a column an expression reads from a row (after.email,
// row["total"]), and what it is compared with, for checks against a live
// table: the column must exist, and comparing a text column with a number
// (or a number with text) is a likely mistake.
type ColumnRef struct {
	Column string
	// Offset is the byte offset of the read in the expression's text.
	Offset int
	// ComparedWith is "number", "string" or "bool" when the column is an
	// operand of a comparison with a literal of that kind, else "".
	ComparedWith string
}

// Columns returns the columns the expression reads, in order.
func (p *Program) Columns() []ColumnRef { return p.columns }

// Error is a compile error at a place inside the expression text.
type Error struct {
	Offset  int // byte offset of the error in the expression's text
	Message string
}

func (e *Error) Error() string { return e.Message }

// Compile compiles src once. Errors are *Error with the byte offset of the
// mistake: syntax errors, unknown names, type errors, and a comparison of
// `op` with a value it never takes.
func Compile(src string, kind Kind) (*Program, error) {
	return compile(src, kind, true)
}

// compile is Compile; direct false leaves out rowAccess, so that the
// program reads every row through its map as it used to (for tests that
// compare the two).
func compile(src string, kind Kind, direct bool) (*Program, error) {
	opts := []expr.Option{expr.Env(Env{}), expr.Optimize(true)}
	opts = append(opts, functions...)
	opts = append(opts, numberOf)
	if kind == Predicate {
		opts = append(opts, expr.AsBool())
	}
	checker := &opChecker{}
	uses := &nameUse{}
	cols := &columnReads{}
	// The patches run in this order, each over the whole tree: those
	// that inspect the expression as written first, rowAccess, which
	// rewrites the reads of the environment, last but for rowUse, which
	// looks at what it left.
	opts = append(opts, expr.Patch(checker), expr.Patch(uses), expr.Patch(cols), expr.Patch(numericOperands{}))
	rows := &rowUse{maps: allRows}
	if direct {
		rows.maps = 0
		opts = append(opts, expr.Patch(&rowAccess{}), expr.Patch(rows))
	}
	p, err := expr.Compile(src, opts...)
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, &Error{Offset: runeToByte(src, fe.From), Message: explain(fe.Message)}
		}
		return nil, &Error{Message: err.Error()}
	}
	if checker.err != nil {
		checker.err.Offset = runeToByte(src, checker.err.Offset)
		return nil, checker.err
	}
	for i := range cols.refs {
		cols.refs[i].Offset = runeToByte(src, cols.refs[i].Offset)
	}
	maps := rows.maps
	if uses.env {
		maps = allRows // $env.after, or the whole $env
	}
	prog := &Program{Source: src, program: p, usesPosition: uses.position || uses.env, maps: maps, columns: cols.refs}
	if direct && kind == Predicate {
		prog.fast = fastPredicate(src)
	}
	return prog, nil
}

// columnReads collects the columns an expression reads from row
// variables and the kind of literal each is compared with. It runs before
// numericOperands wraps the reads.
type columnReads struct {
	refs     []ColumnRef
	nodes    []ast.Node // the MemberNode of each ref
	compared map[ast.Node]string
}

func (c *columnReads) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BinaryNode); ok && numericOperators[b.Operator] {
		if c.compared == nil {
			c.compared = map[ast.Node]string{}
		}
		if k := literalKind(b.Right); k != "" {
			c.compared[b.Left] = k
		}
		if k := literalKind(b.Left); k != "" {
			c.compared[b.Right] = k
		}
		// children are visited before their parent: mark the reads seen
		for i, n := range c.nodes {
			if k := c.compared[n]; k != "" && c.refs[i].ComparedWith == "" {
				c.refs[i].ComparedWith = k
			}
		}
		return
	}
	m, ok := (*node).(*ast.MemberNode)
	if !ok || !isColumnRead(m) {
		return
	}
	name, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	c.refs = append(c.refs, ColumnRef{Column: name.Value, Offset: m.Node.Location().From})
	c.nodes = append(c.nodes, m)
}

func literalKind(n ast.Node) string {
	switch n.(type) {
	case *ast.IntegerNode, *ast.FloatNode:
		return "number"
	case *ast.StringNode:
		return "string"
	case *ast.BoolNode:
		return "bool"
	}
	return ""
}

// nameUse records which costly names an expression reads: position, and
// $env, through which it may read any name.
type nameUse struct{ position, env bool }

func (u *nameUse) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		switch id.Value {
		case "position", "Position":
			u.position = true
		case "$env":
			u.env = true
		}
	}
}

// explain adds what to write to expr-lang's terser messages.
func explain(msg string) string {
	if strings.HasPrefix(msg, "unknown name ") {
		return msg + "; an expression can use " + strings.Join(Names, ", ") + " and functions"
	}
	return msg
}

func runeToByte(s string, runeOffset int) int {
	n := 0
	for i := range s {
		if n == runeOffset {
			return i
		}
		n++
	}
	return len(s)
}

// opChecker finds comparisons of `op` with a string it can never equal,
// such as op == 'insrt' or op in ['created'].
type opChecker struct{ err *Error }

func (c *opChecker) Visit(node *ast.Node) {
	if c.err != nil {
		return
	}
	b, ok := (*node).(*ast.BinaryNode)
	if !ok {
		return
	}
	if !isOp(b.Left) && !isOp(b.Right) {
		return
	}
	other := b.Right
	if isOp(b.Right) {
		other = b.Left
	}
	switch b.Operator {
	case "==", "!=":
		c.check(other)
	case "in", "not in":
		if arr, ok := other.(*ast.ArrayNode); ok {
			for _, n := range arr.Nodes {
				c.check(n)
			}
		}
	}
}

func (c *opChecker) check(n ast.Node) {
	s, ok := n.(*ast.StringNode)
	if !ok || c.err != nil || slices.Contains(Ops, s.Value) {
		return
	}
	c.err = &Error{
		Offset:  n.Location().From,
		Message: fmt.Sprintf("op is never %q; it is one of %s", s.Value, strings.Join(Ops, ", ")),
	}
}

func isOp(n ast.Node) bool {
	id, ok := n.(*ast.IdentifierNode)
	return ok && id.Value == "op"
}

// Evaluator runs programs against events, reusing one VM and environment.
// It is not safe for concurrent use: give each goroutine its own.
type Evaluator struct {
	vm  vm.VM
	env Env
	// event is the bound event, from which env is filled when a program
	// first runs on the VM: a Predicate decided by its pred needs no Env.
	event    *change.Event
	filled   bool    // env describes event, but for Position and the maps
	position bool    // env.Position describes event
	maps     rowMask // the maps of env that describe event
}

// Bind prepares the evaluator for e; call it before Bool or Value. e must
// not change until the next Bind.
func (ev *Evaluator) Bind(e *change.Event) {
	ev.event, ev.filled, ev.position, ev.maps = e, false, false, 0
}

func (ev *Evaluator) run(p *Program) (any, error) {
	if !ev.filled {
		ev.env.fill(ev.event)
		ev.filled = true
	}
	if p.usesPosition && !ev.position {
		ev.env.Position = ev.event.Position.String()
		ev.position = true
	}
	if need := p.maps &^ ev.maps; need != 0 {
		ev.env.fillMaps(need)
		ev.maps |= need
	}
	return ev.vm.Run(p.program, &ev.env)
}

// Bool runs a Predicate program against the bound event.
func (ev *Evaluator) Bool(p *Program) (bool, error) {
	if p.fast != nil {
		if v, ok := p.fast(ev.event); ok {
			return v, nil
		}
	}
	out, err := ev.run(p)
	if err != nil {
		return false, err
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("where %q gave %T, want a bool", p.Source, out)
	}
	return b, nil
}

// Value runs a Value program against the bound event.
func (ev *Evaluator) Value(p *Program) (any, error) {
	return ev.run(p)
}
