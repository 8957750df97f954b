package eventexpr

import (
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Env is what an expression sees: the names of LANGUAGE.md's table.
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
}

// TxEnv is the `tx` variable.
type TxEnv struct {
	ID         int64     `expr:"id"`
	CommitTime time.Time `expr:"commit_time"`
}

// Names lists the top-level names an expression may use, for diagnostics.
var Names = []string{"op", "schema", "table", "before", "after", "row", "changed", "key", "tx", "position"}

// Ops lists the values `op` can take in an expression.
var Ops = []string{"insert", "update", "delete", "snapshot"}

// fill sets env to describe e, reusing env's storage; Position is left to
// the Evaluator, which formats it only for programs that read it.
func (env *Env) fill(e *change.Event) {
	env.Op = e.Op.String()
	env.Schema = e.Schema
	env.Table = e.Table
	env.Before = e.Before
	env.After = e.After
	env.Row = e.Row()
	env.Changed = e.Changed
	env.Key = e.Key
	env.Tx = TxEnv{ID: int64(e.Tx.ID), CommitTime: e.Tx.CommitTime}
	env.Position = ""
}
