package eventexpr

import (
	"reflect"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
)

// rowAccess is the last patch: it turns the reads of the environment that
// would cost per event into calls of the functions of env.go, which the VM
// makes without reflection or allocation:
//
//   - a read of one column by a constant name (after.email, row["total"],
//     key?.id) becomes columnReaders[r]($env, "email"), which reads the
//     change.Row itself; wrapped in numberOf by numericOperands, it becomes
//     numberReaders[r]($env, "total"); the chain of an optional read
//     (before?.id.x) becomes `before == nil ? <nil map> : chain`, which is
//     what the chain did on a nil map;
//   - `after == nil` and `after != nil` (either way round) test the
//     change.Row for no row at all, `'email' in after` (a constant name)
//     and len(after) ask it;
//   - op, schema and table, which expr-lang would copy to the heap on each
//     read, become boxReaders[b]($env), typed string like the names;
//   - other calls of numberOf become calls of numberOfTyped.
//
// Any other use of a row (keys(row), after[name], name in after) is left
// alone and reads the map of the row, which the Evaluator makes only for
// programs that keep such a use (see rowUse). The patches that inspect
// the tree as written (opChecker, nameUse, columnReads, numericOperands)
// run before this one.
type rowAccess struct {
	// reads maps each column read it made to its row and column, for
	// fusing with an enclosing numberOf.
	reads map[*ast.CallNode]columnRead
	// optional are the column reads it made of optional ones (after?.x),
	// for their chain.
	optional map[*ast.CallNode]rowIndex
	// boxes are the calls it made in place of op, schema and table, with
	// the identifier each replaced.
	boxes map[*ast.CallNode]*ast.IdentifierNode
}

type columnRead struct {
	row  rowIndex
	name string
}

var stringType = reflect.TypeOf("")

func (a *rowAccess) Visit(node *ast.Node) {
	// ast.Walk visits the children of a node before the node itself.
	switch n := (*node).(type) {
	case *ast.MemberNode:
		r, ok := rowOf(n.Node)
		name, isString := n.Property.(*ast.StringNode)
		if !ok || !isString || n.Method {
			return
		}
		call := typedCall(n.Location(), columnReaders[r], stringNode(n.Location(), name.Value))
		if a.reads == nil {
			a.reads = map[*ast.CallNode]columnRead{}
		}
		a.reads[call] = columnRead{r, name.Value}
		if n.Optional {
			if a.optional == nil {
				a.optional = map[*ast.CallNode]rowIndex{}
			}
			a.optional[call] = r
		}
		ast.Patch(node, call)

	case *ast.ChainNode:
		// When the row was nil (a nil map), the optional read jumped to
		// the end of the chain with the nil map, which the chain turns
		// into nil but leaves to an enclosing ?? as it is. The read starts
		// the chain: it is at the end of its spine.
		r, ok := a.optionalRead(n.Node)
		if !ok {
			return
		}
		cond := &ast.ConditionalNode{Cond: typedCall(n.Location(), nilTests[r]), Exp1: typedCall(n.Location(), nilMapReader), Exp2: n.Node}
		cond.SetLocation(n.Location())
		n.Node = cond

	case *ast.CallNode:
		if box, ok := n.Callee.(*ast.CallNode); ok && a.boxes[box] != nil {
			// `op()`: leave the callee as written, for the checker's
			// message.
			n.Callee = a.boxes[box]
			return
		}
		id, ok := n.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != numberOfName || len(n.Arguments) != 1 {
			return
		}
		if arg, ok := n.Arguments[0].(*ast.CallNode); ok {
			if c, ok := a.reads[arg]; ok {
				ast.Patch(node, typedCall(n.Location(), numberReaders[c.row], stringNode(n.Location(), c.name)))
				return
			}
		}
		callee := &ast.ConstantNode{Value: numberOfTyped}
		callee.SetType(reflect.TypeOf(numberOfTyped))
		callee.SetLocation(id.Location())
		n.Callee = callee

	case *ast.BuiltinNode:
		if n.Name != "len" || len(n.Arguments) != 1 {
			return
		}
		if r, ok := rowOf(n.Arguments[0]); ok {
			ast.Patch(node, typedCall(n.Location(), lenReaders[r]))
		}

	case *ast.BinaryNode:
		if n.Operator == "in" {
			name, isString := n.Left.(*ast.StringNode)
			if r, ok := rowOf(n.Right); ok && isString {
				ast.Patch(node, typedCall(n.Location(), hasTests[r], stringNode(n.Location(), name.Value)))
			}
			return
		}
		if n.Operator != "==" && n.Operator != "!=" {
			return
		}
		side := n.Left
		if _, isNil := side.(*ast.NilNode); isNil {
			side = n.Right
		} else if _, isNil := n.Right.(*ast.NilNode); !isNil {
			return
		}
		r, ok := rowOf(side)
		if !ok {
			return
		}
		fn := nilTests[r]
		if n.Operator == "!=" {
			fn = notNilTests[r]
		}
		ast.Patch(node, typedCall(n.Location(), fn))

	case *ast.IdentifierNode:
		b, ok := boxVars[n.Value]
		if !ok {
			return
		}
		call := typedCall(n.Location(), boxReaders[b])
		// The function returns any; the checker is told the truth about
		// the value, a string, and keeps checking `op + 1` and the like
		// as before.
		call.SetType(stringType)
		if a.boxes == nil {
			a.boxes = map[*ast.CallNode]*ast.IdentifierNode{}
		}
		a.boxes[call] = n
		ast.Patch(node, call)
	}
}

// optionalRead returns the row of the optional column read that starts
// the chain of n, if it is one.
func (a *rowAccess) optionalRead(n ast.Node) (rowIndex, bool) {
	for {
		switch m := n.(type) {
		case *ast.MemberNode:
			n = m.Node
		case *ast.CallNode:
			if r, ok := a.optional[m]; ok {
				return r, true
			}
			n = m.Callee
		default:
			return 0, false
		}
	}
}

// rowOf reports whether n names a row variable, and which.
func rowOf(n ast.Node) (rowIndex, bool) {
	id, ok := n.(*ast.IdentifierNode)
	if !ok {
		return 0, false
	}
	r, ok := rowVars[id.Value]
	return r, ok
}

// typedCall returns the call fn($env, args...), fn being of one of the
// types of vm/func_types, placed at loc.
func typedCall(loc file.Location, fn any, args ...ast.Node) *ast.CallNode {
	callee := &ast.ConstantNode{Value: fn}
	callee.SetType(reflect.TypeOf(fn))
	callee.SetLocation(loc)
	env := &ast.IdentifierNode{Value: "$env"}
	env.SetLocation(loc)
	call := &ast.CallNode{Callee: callee, Arguments: append([]ast.Node{env}, args...)}
	call.SetLocation(loc)
	return call
}

func stringNode(loc file.Location, s string) *ast.StringNode {
	n := &ast.StringNode{Value: s}
	n.SetLocation(loc)
	return n
}

// rowUse records the rows whose map a program needs: the row variables
// still named after rowAccess, by either name. It runs after it.
type rowUse struct{ maps rowMask }

func (u *rowUse) Visit(node *ast.Node) {
	if id, ok := (*node).(*ast.IdentifierNode); ok {
		if r, ok := rowFields[id.Value]; ok {
			u.maps |= 1 << r
		}
	}
}
