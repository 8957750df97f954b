package txmeta

import (
	"slices"
	"strings"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
)

// Transactions numbers the data events of the source transactions a sink
// writes, per source stream. The zero value is not usable; use
// NewTransactions. Memory: one small record per stream with a transaction
// open, holding a counter per table it touched (never the events).
type Transactions struct {
	open map[change.Stream]*openTx
}

type openTx struct {
	id     string
	tx     change.Tx
	events uint64
	tables map[string]uint64 // "schema.table" → events so far
}

// NewTransactions returns a Transactions with no transaction open.
func NewTransactions() *Transactions {
	return &Transactions{open: map[change.Stream]*openTx{}}
}

// Step is what a sink writes for one event, in this order: Prev, Begin,
// the event itself (a data event: with Order), End. Nil fields are not
// written.
type Step struct {
	// Prev ends the stream's previous transaction when a new one begins
	// before the event that should have ended it came (a source that
	// broke its boundaries): its END with what it had.
	Prev *format.Transaction
	// Begin starts the event's transaction: it is the first data event
	// of the transaction for this sink.
	Begin *format.Transaction
	// Order is the data event's place in its transaction; nil for Marks
	// and for events outside a transaction.
	Order *format.TxOrder
	// End ends the transaction: the event is its Boundary.
	End *format.Transaction
}

// Next returns what the sink writes for e, the next event it writes of
// e's stream, and counts e. A data event is any event but a Mark; it is
// part of a transaction when it carries a transaction id and is not a
// snapshot row.
func (t *Transactions) Next(e *change.Event) Step {
	var s Step
	st := e.Position.Stream()
	cur := t.open[st]
	if e.Op != change.Mark && e.Tx.ID != 0 && e.Op != change.Snapshot {
		id := format.TxID(e.Tx, e.Position)
		if cur != nil && cur.id != id {
			s.Prev = cur.end(change.Position{})
			cur = nil
		}
		if cur == nil {
			cur = &openTx{id: id, tx: e.Tx, tables: map[string]uint64{}}
			t.open[st] = cur
			s.Begin = &format.Transaction{ID: id, Tx: e.Tx}
		}
		q := e.QualifiedTable()
		cur.events++
		cur.tables[q]++
		s.Order = &format.TxOrder{ID: cur.id, Total: cur.events, Table: cur.tables[q]}
	}
	if e.Boundary && cur != nil {
		if cur.tx.CommitTime.IsZero() {
			cur.tx.CommitTime = e.Tx.CommitTime
		}
		s.End = cur.end(e.Position)
		delete(t.open, st)
	}
	return s
}

// Reset forgets the open transactions: what a sink does when it is
// opened again, since the engine then replays from a checkpoint, which is
// always at a transaction boundary.
func (t *Transactions) Reset() { clear(t.open) }

// end is the transaction's END at position p.
func (o *openTx) end(p change.Position) *format.Transaction {
	tables := make([]format.TableCount, 0, len(o.tables))
	for q, n := range o.tables {
		tables = append(tables, format.TableCount{Table: q, Events: n})
	}
	slices.SortFunc(tables, func(a, b format.TableCount) int { return strings.Compare(a.Table, b.Table) })
	return &format.Transaction{End: true, ID: o.id, Tx: o.tx, Position: p, Events: o.events, Tables: tables}
}
