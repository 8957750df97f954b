package eventexpr

import (
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"

	"github.com/sluice-cdc/sluice/engine/change"
)

// pred is a predicate compiled to Go, for the shapes a `where` mostly
// takes: tests of op, of a column against a literal, of a row's presence
// or columns, joined with &&, || and !. The VM costs an interpreted
// instruction and a push per node, which for such a predicate is most of
// its cost; pred reads the event directly, without even filling an Env.
//
// It gives the VM's result only for the values it understands: ok is
// false for any other (a column of a type it does not compare, a value
// the VM would fail on), and then the VM runs the program, which gives
// the same result or error it always did. A pred has no side effects, so
// running the VM after it changes nothing.
type pred func(e *change.Event) (value, ok bool)

// fastPredicate compiles src, which Compile compiled as a Predicate, to a
// pred; nil when src is not made only of what pred understands.
func fastPredicate(src string) pred {
	tree, err := parser.Parse(src)
	if err != nil {
		return nil
	}
	return predOf(tree.Node)
}

func predOf(n ast.Node) pred {
	switch n := n.(type) {
	case *ast.BoolNode:
		v := n.Value
		return func(*change.Event) (bool, bool) { return v, true }
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil
		}
		p := predOf(n.Node)
		if p == nil {
			return nil
		}
		return func(e *change.Event) (bool, bool) {
			v, ok := p(e)
			return !v, ok
		}
	case *ast.BinaryNode:
		return binaryPred(n)
	}
	return nil
}

func binaryPred(n *ast.BinaryNode) pred {
	switch n.Operator {
	case "&&", "and", "||", "or":
		l, r := predOf(n.Left), predOf(n.Right)
		if l == nil || r == nil {
			return nil
		}
		// The right side runs only when the VM would run it.
		stop := n.Operator == "||" || n.Operator == "or"
		return func(e *change.Event) (bool, bool) {
			v, ok := l(e)
			if !ok || v == stop {
				return v, ok
			}
			return r(e)
		}
	case "in":
		if name, ok := n.Left.(*ast.StringNode); ok {
			if r, ok := rowOf(n.Right); ok {
				return func(e *change.Event) (bool, bool) { return rowOfEvent(e, r).Has(name.Value), true }
			}
		}
		if isOp(n.Left) {
			if list, ok := n.Right.(*ast.ArrayNode); ok {
				return opTest(list.Nodes, false)
			}
		}
		return nil
	case "==", "!=":
		ne := n.Operator == "!="
		if isOp(n.Left) {
			return opTest([]ast.Node{n.Right}, ne)
		}
		if isOp(n.Right) {
			return opTest([]ast.Node{n.Left}, ne)
		}
		if p := rowNilTest(n.Left, n.Right, ne); p != nil {
			return p
		}
		if p := rowNilTest(n.Right, n.Left, ne); p != nil {
			return p
		}
		if l, r := predOf(n.Left), predOf(n.Right); l != nil && r != nil {
			return func(e *change.Event) (bool, bool) {
				a, ok := l(e)
				if !ok {
					return false, false
				}
				b, ok := r(e)
				return (a == b) != ne, ok
			}
		}
	case "endsWith", "startsWith", "contains":
		c, ok := columnOf(n.Left)
		lit, isString := n.Right.(*ast.StringNode)
		if !ok || !isString {
			return nil
		}
		test := map[string]func(string, string) bool{"endsWith": strings.HasSuffix, "startsWith": strings.HasPrefix, "contains": strings.Contains}[n.Operator]
		return func(e *change.Event) (bool, bool) {
			switch v := c.get(e).(type) {
			case nil:
				return false, true
			case string:
				return test(v, lit.Value), true
			}
			return false, false
		}
	}
	if !comparisons[n.Operator] {
		return nil
	}
	if c, ok := columnOf(n.Left); ok {
		return compare(c, n.Operator, n.Right)
	}
	if c, ok := columnOf(n.Right); ok {
		return compare(c, flipped[n.Operator], n.Left)
	}
	return nil
}

// comparisons are the operators compare handles; flipped gives each with
// its operands swapped.
var (
	comparisons = map[string]bool{"==": true, "!=": true, "<": true, "<=": true, ">": true, ">=": true}
	flipped     = map[string]string{"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
)

// opTest is `op in list` (or, negated, `op not in` it), for a list of
// string literals.
func opTest(list []ast.Node, negate bool) pred {
	var in [256]bool
	for _, n := range list {
		s, ok := n.(*ast.StringNode)
		if !ok {
			return nil
		}
		for o := range in {
			if change.Op(o).String() == s.Value {
				in[o] = true
			}
		}
	}
	return func(e *change.Event) (bool, bool) { return in[e.Op] != negate, true }
}

// rowNilTest is `r == nil` (or `r != nil`) when side names a row and
// other is nil: no row at all, as a nil map was.
func rowNilTest(side, other ast.Node, negate bool) pred {
	r, ok := rowOf(side)
	if _, isNil := other.(*ast.NilNode); !ok || !isNil {
		return nil
	}
	return func(e *change.Event) (bool, bool) { return rowOfEvent(e, r).IsZero() != negate, true }
}

// compare is `c op lit`, as the VM's runtime.Equal, Less and the like
// compute it for the kinds of values rows hold.
func compare(c column, op string, lit ast.Node) pred {
	order := op != "==" && op != "!="
	ne := op == "!="
	switch l := lit.(type) {
	case *ast.IntegerNode:
		return compareNumber(c, op, int64(l.Value), float64(l.Value), true)
	case *ast.FloatNode:
		return compareNumber(c, op, 0, l.Value, false)
	case *ast.UnaryNode:
		if l.Operator != "-" {
			return nil
		}
		switch x := l.Node.(type) {
		case *ast.IntegerNode:
			return compareNumber(c, op, -int64(x.Value), -float64(x.Value), true)
		case *ast.FloatNode:
			return compareNumber(c, op, 0, -x.Value, false)
		}
	case *ast.StringNode:
		s := l.Value
		if order {
			return func(e *change.Event) (bool, bool) {
				v, ok := c.number(e).(string)
				return ok && ordered(strings.Compare(v, s), op), ok
			}
		}
		return func(e *change.Event) (bool, bool) {
			switch v := c.get(e).(type) {
			case nil:
				return ne, true
			case string:
				return (v == s) != ne, true
			}
			return false, false
		}
	case *ast.BoolNode:
		if order {
			return nil
		}
		b := l.Value
		return func(e *change.Event) (bool, bool) {
			v, ok := c.get(e).(bool)
			return ok && (v == b) != ne, ok
		}
	case *ast.NilNode:
		if order {
			return nil
		}
		return func(e *change.Event) (bool, bool) {
			if c.get(e) == nil {
				return !ne, true
			}
			return false, false
		}
	}
	return nil
}

// compareNumber compares a column, through NumberOf, with a number
// literal: an integer one (isInt, i) compares with int64 values as
// integers, a float one (f) as floats, as the VM does.
func compareNumber(c column, op string, i int64, f float64, isInt bool) pred {
	return func(e *change.Event) (bool, bool) {
		switch v := c.number(e).(type) {
		case int64:
			if isInt {
				return ordered(cmpInt(v, i), op), true
			}
			return compareFloat(float64(v), f, op), true
		case float64:
			return compareFloat(v, f, op), true
		}
		return false, false
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// compareFloat compares as Go does, so that a NaN is neither less, nor
// more, nor equal.
func compareFloat(a, b float64, op string) bool {
	switch op {
	case "==":
		return a == b
	case "!=":
		return a != b
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	}
	return a >= b
}

// ordered reports whether the result c of a comparison satisfies op.
func ordered(c int, op string) bool {
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	}
	return c >= 0
}

// column is a read of one column by a constant name: after.email,
// row['total'], key?.id.
type column struct {
	row  rowIndex
	name string
	// chained is an optional read (key?.id), which numericOperands
	// leaves unwrapped
	chained bool
}

func columnOf(n ast.Node) (column, bool) {
	ch, chained := n.(*ast.ChainNode)
	if chained {
		n = ch.Node
	}
	m, ok := n.(*ast.MemberNode)
	if !ok || m.Method {
		return column{}, false
	}
	name, ok := m.Property.(*ast.StringNode)
	if !ok {
		return column{}, false
	}
	r, ok := rowOf(m.Node)
	return column{r, name.Value, chained}, ok
}

// get returns the column's value, nil when the row lacks it, as
// columnReaders does.
func (c column) get(e *change.Event) any { return rowOfEvent(e, c.row).Get(c.name) }

// number returns the column's value as an operand of a numeric operator:
// through NumberOf, where numericOperands wraps the read in it.
func (c column) number(e *change.Event) any {
	if c.chained {
		return c.get(e)
	}
	return NumberOf(c.get(e))
}

// rowOfEvent returns the row r of e, as Env.fill sets it.
func rowOfEvent(e *change.Event, r rowIndex) change.Row {
	switch r {
	case rowBefore:
		return e.Before
	case rowAfter:
		return e.After
	case rowRow:
		return e.Row()
	}
	return e.Key
}
