package eventexpr

import (
	"strconv"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Rows carry numeric/decimal columns as change.Numeric, exact text that
// expr cannot compare with or compute on. Rather than convert every row of
// every event (numbers lose exactness as float64, and a `set` that copies
// a numeric column must keep it exact), the compiler wraps only the column
// reads that are operands of arithmetic or ordering operators in
// numberOf, so `after.total >= 50` works on a numeric total while
// `set = { t = "after.total" }` passes the exact value through.

// numberOfName is the hidden function the patch calls.
const numberOfName = "__number_of"

var numberOf = expr.Function(numberOfName, func(p ...any) (any, error) {
	return NumberOf(p[0]), nil
}, new(func(any) any))

// NumberOf returns a change.Numeric as int64 when it is a whole number
// that fits, else as float64; other values unchanged.
func NumberOf(v any) any {
	n, ok := v.(change.Numeric)
	if !ok {
		return v
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i
	}
	if f, err := strconv.ParseFloat(string(n), 64); err == nil {
		return f
	}
	return v // NaN and the like stay text, and fail loudly in arithmetic
}

// numericOperators are the binary operators whose operands are numbers.
var numericOperators = map[string]bool{
	"<": true, "<=": true, ">": true, ">=": true, "==": true, "!=": true,
	"+": true, "-": true, "*": true, "/": true, "%": true, "**": true, "^": true,
}

// rowNames are the variables that hold rows.
var rowNames = map[string]bool{"before": true, "after": true, "row": true, "key": true}

// numericOperands wraps column reads (after.total, row["x"]) that are
// operands of numeric operators in numberOf.
type numericOperands struct{}

func (numericOperands) Visit(node *ast.Node) {
	b, ok := (*node).(*ast.BinaryNode)
	if !ok || !numericOperators[b.Operator] {
		return
	}
	if (b.Operator == "==" || b.Operator == "!=") && (isNonNumberLiteral(b.Left) || isNonNumberLiteral(b.Right)) {
		return // `after.status == 'shipped'`: no number involved, no call per event
	}
	for _, side := range []*ast.Node{&b.Left, &b.Right} {
		if isColumnRead(*side) {
			call := &ast.CallNode{Callee: &ast.IdentifierNode{Value: numberOfName}, Arguments: []ast.Node{*side}}
			ast.Patch(side, call)
		}
	}
}

// isColumnRead reports whether n reads a column of a row variable.
func isColumnRead(n ast.Node) bool {
	m, ok := n.(*ast.MemberNode)
	if !ok {
		return false
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	return ok && rowNames[id.Value]
}

// isNonNumberLiteral reports a string, bool or nil literal: an equality
// with one never needs a numeric column converted.
func isNonNumberLiteral(n ast.Node) bool {
	switch n.(type) {
	case *ast.StringNode, *ast.BoolNode, *ast.NilNode:
		return true
	}
	return false
}
