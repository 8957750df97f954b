package eventexpr

import (
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Env is what an expression sees: the names of LANGUAGE.md's table.
//
// The rows are typed as maps for the checker, so that every use of a whole
// row (`'x' in after`, `keys(row)`, `after == nil`) compiles as it always
// has, but the maps are built only for programs that use a whole row (see
// Program.maps): the compiler turns a read of one column (`after.email`,
// `row["total"]`) into a call that reads the bound change.Row directly.
type Env struct {
	Op       string         `expr:"op"`
	Schema   string         `expr:"schema"`
	Table    string         `expr:"table"`
	Before   map[string]any `expr:"before"`
	After    map[string]any `expr:"after"`
	Row      map[string]any `expr:"row"`
	Changed  []string       `expr:"changed"`
	Key      map[string]any `expr:"key"`
	Tx       TxEnv          `expr:"tx"`
	Position string         `expr:"position"`

	// rows are the bound event's rows, by rowIndex.
	rows [numRows]change.Row `expr:"-"`
	// boxed holds Op, Schema and Table as values of type any, by
	// boxIndex, kept from one event to the next while they do not
	// change: reading a string field through reflection, as expr-lang
	// does, copies it to the heap on every read.
	boxed [numBoxes]any `expr:"-"`
	// (expr:"-" keeps the VM from finding the fields by name, when an
	// unchecked name reaches it, as in sha256(rows).)
}

// rowIndex numbers the row variables.
type rowIndex int

const (
	rowBefore rowIndex = iota
	rowAfter
	rowRow
	rowKey
	numRows
)

// rowVars maps the row variables' names to their index.
var rowVars = map[string]rowIndex{"before": rowBefore, "after": rowAfter, "row": rowRow, "key": rowKey}

// rowFields adds to rowVars the Go names of the fields: the checker does
// not know them, but it lets unknown names through in the arguments of
// functions (sha256(After.id)), and the VM then finds the fields by them.
var rowFields = map[string]rowIndex{
	"before": rowBefore, "after": rowAfter, "row": rowRow, "key": rowKey,
	"Before": rowBefore, "After": rowAfter, "Row": rowRow, "Key": rowKey,
}

// rowMask is a set of rowIndex, one bit each.
type rowMask uint8

const allRows rowMask = 1<<numRows - 1

// boxIndex numbers the string variables read without reflection.
type boxIndex int

const (
	boxOp boxIndex = iota
	boxSchema
	boxTable
	numBoxes
)

// boxVars maps the string variables' names to their index.
var boxVars = map[string]boxIndex{"op": boxOp, "schema": boxSchema, "table": boxTable}

// TxEnv is the `tx` variable.
type TxEnv struct {
	ID         int64     `expr:"id"`
	CommitTime time.Time `expr:"commit_time"`
}

// Names lists the top-level names an expression may use, for diagnostics.
var Names = []string{"op", "schema", "table", "before", "after", "row", "changed", "key", "tx", "position"}

// Ops lists the values `op` can take in an expression.
var Ops = []string{"insert", "update", "delete", "snapshot"}

// fill sets env to describe e, reusing env's storage; the maps and
// Position are left to the Evaluator, which makes them only for programs
// that read them.
func (env *Env) fill(e *change.Event) {
	env.Op = e.Op.String()
	env.Schema = e.Schema
	env.Table = e.Table
	env.rows = [numRows]change.Row{rowBefore: e.Before, rowAfter: e.After, rowRow: e.Row(), rowKey: e.Key}
	env.Before, env.After, env.Row, env.Key = nil, nil, nil, nil
	env.Changed = e.Changed
	env.Tx = TxEnv{ID: int64(e.Tx.ID), CommitTime: e.Tx.CommitTime}
	env.Position = ""
}

// fillMaps sets the map of each row of m: a new map each time, since an
// expression may return the map itself (set = { copy = "after" }).
func (env *Env) fillMaps(m rowMask) {
	for i, dst := range [numRows]*map[string]any{rowBefore: &env.Before, rowAfter: &env.After, rowRow: &env.Row, rowKey: &env.Key} {
		if m&(1<<i) != 0 {
			*dst = env.rows[i].Map()
		}
	}
}

// The functions below are what the compiler puts in place of reads of the
// environment (see rowAccess). Their types are among those expr-lang's VM
// calls without reflection (vm/func_types), and each takes the
// environment ($env) as its first argument, since a Program, and so each
// function in it, is shared by all Evaluators.

// columnReaders[r] returns the named column of row r, nil when the row
// lacks it (unsent, or no row at all), as a map would.
var columnReaders = rowFuncs(func(r rowIndex) func(any, any) any {
	return func(env, name any) any { return env.(*Env).rows[r].Get(name.(string)) }
})

// numberReaders[r] is columnReaders[r] followed by NumberOf: a column read
// that is an operand of a numeric operator (see numericOperands).
var numberReaders = rowFuncs(func(r rowIndex) func(any, any) any {
	return func(env, name any) any { return NumberOf(env.(*Env).rows[r].Get(name.(string))) }
})

// nilTests[r] is `r == nil`: no row at all, as a nil map was.
var nilTests = rowFuncs(func(r rowIndex) func(any) bool {
	return func(env any) bool { return env.(*Env).rows[r].IsZero() }
})

// notNilTests[r] is `r != nil`.
var notNilTests = rowFuncs(func(r rowIndex) func(any) bool {
	return func(env any) bool { return !env.(*Env).rows[r].IsZero() }
})

// nilMapReader returns the map of no row at all.
var nilMapReader = func(any) any { return nilMap }

var nilMap any = map[string]any(nil)

// hasTests[r] is `'name' in r`: whether the row has the column, as a map
// had the key.
var hasTests = rowFuncs(func(r rowIndex) func(any, any) bool {
	return func(env, name any) bool { return env.(*Env).rows[r].Has(name.(string)) }
})

// lenReaders[r] is len(r): the number of columns the row has, as of keys
// in a map.
var lenReaders = rowFuncs(func(r rowIndex) func(any) int {
	return func(env any) int { return env.(*Env).rows[r].Len() }
})

func rowFuncs[F any](mk func(rowIndex) F) (fs [numRows]F) {
	for r := range fs {
		fs[r] = mk(rowIndex(r))
	}
	return fs
}

// boxReaders[b] returns the string variable b.
var boxReaders = [numBoxes]func(any) any{
	boxOp:     func(env any) any { e := env.(*Env); return e.box(boxOp, e.Op) },
	boxSchema: func(env any) any { e := env.(*Env); return e.box(boxSchema, e.Schema) },
	boxTable:  func(env any) any { e := env.(*Env); return e.box(boxTable, e.Table) },
}

// box returns s as an any, reusing the last one boxed for b while it
// holds s: the op, schema and table of consecutive events are mostly
// the same, and then reading them allocates nothing.
func (env *Env) box(b boxIndex, s string) any {
	if old, ok := env.boxed[b].(string); !ok || old != s {
		env.boxed[b] = s
	}
	return env.boxed[b]
}

// numberOfTyped is NumberOf with a type the VM calls without reflection.
var numberOfTyped func(any) any = NumberOf
