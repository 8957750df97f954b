package sinktest

import (
	"maps"
	"slices"
	"testing"

	"github.com/sluice-cdc/sluice/engine/change"
)

// env is one case: its target and the pipeline writing into it.
type env struct {
	t      *testing.T
	f      Factory
	target *Target
	p      *Pipeline
}

func newEnv(t *testing.T, f Factory) *env {
	target := f.NewTarget(t)
	switch {
	case target == nil || target.New == nil:
		t.Fatal("sinktest: NewTarget returned no Target.New")
	case f.Kind == Table && target.Rows == nil:
		t.Fatal("sinktest: a Table target needs Target.Rows")
	case f.Kind == Log && target.Messages == nil:
		t.Fatal("sinktest: a Log target needs Target.Messages")
	}
	e := &env{t: t, f: f, target: target}
	e.p = NewPipeline(t, target)
	if cp := e.p.Checkpoint(); len(cp) != 0 {
		t.Fatalf("the first Open of a fresh target returned %v, want an empty checkpoint", cp)
	}
	return e
}

// got is what the target holds, one line per row (sorted by key) or
// message (in order); for Table targets, the columns of m, a column the
// table lacks shown as "(no column)".
func (e *env) got(m *tableModel) []string {
	e.t.Helper()
	if e.f.Kind == Log {
		return formatMessages(e.target.Messages(e.t))
	}
	var out []string
	for _, r := range e.target.Rows(e.t, table) {
		row := Row{}
		for _, c := range m.cols {
			v, ok := r[c]
			if !ok {
				v = "(no column)"
			}
			row[c] = v
		}
		out = append(out, m.format(row))
	}
	sortByKey(out)
	return out
}

// expect checks that the target holds exactly what events leave in it:
// the rows they make (Table), or one message per row change in order
// (Log), nothing twice.
func (e *env) expect(when string, events []change.Event) {
	e.t.Helper()
	e.check(when, events, false)
}

// check is expect; with repeats (a sink that Redelivers) a Log target may
// hold a message again after its first occurrence.
func (e *env) check(when string, events []change.Event, repeats bool) {
	e.t.Helper()
	m := newTableModel(events, e.f.Truncate)
	var got, want []string
	if e.f.Kind == Log {
		want = formatMessages(messagesOf(events, e.f.Truncate, e.f.Keyless))
	} else {
		want = m.want()
	}
	got = e.got(m)
	if repeats && e.f.Kind == Log {
		got = firstOccurrences(got)
	}
	if !slices.Equal(got, want) {
		e.t.Fatalf("%s: the target holds%s", when, diff(got, want))
	}
}

// expectCheckpoint checks a checkpoint Open returned.
func (e *env) expectCheckpoint(when string, got, want change.Checkpoint) {
	e.t.Helper()
	if !maps.Equal(got, want) {
		e.t.Fatalf("%s: Open returned checkpoint %v, want %v", when, got, want)
	}
}

// restart restarts the pipeline, everything written being flushed, and
// checks that Open returned the checkpoint of everything written.
func (e *env) restart(when string) {
	e.t.Helper()
	want := e.p.Checkpoint()
	if got := e.p.Flushed(); !maps.Equal(got, want) {
		e.t.Fatalf("sinktest: restart %s with events written up to %v flushed up to %v only", when, want, got)
	}
	e.expectCheckpoint(when, e.p.Restart(), want)
}

// rows reads the target's rows of items by id (Table).
func (e *env) rows() map[string]Row {
	e.t.Helper()
	out := map[string]Row{}
	for _, r := range e.target.Rows(e.t, table) {
		out[r["id"]] = r
	}
	return out
}

// unflushedInvisible checks, where readers see only what was flushed,
// that the target holds the flushed events only.
func (e *env) unflushedInvisible(when string, flushed []change.Event) {
	e.t.Helper()
	if !e.f.UnflushedVisible {
		e.expect(when, flushed)
	}
}

type testCase struct {
	name string
	run  func(e *env)
}

var cases = []testCase{
	{"exactly once across a crash", exactlyOnce},
	{"a source transaction is never committed in part", transactionBoundaries},
	{"marks move the checkpoint and write nothing", marks},
	{"truncate", truncation},
	{"an added column mid-stream", schemaChange},
	{"a rejected event is named and the events around it are written", rejected},
	{"restart from the returned checkpoint over two streams", twoStreams},
}

// exactlyOnce: A flushed, B written, the run ended without a Flush (a
// crash). The reopened sink returns A's checkpoint and the target holds A
// alone; the source's replay of B and its Flush leave A and B, each change
// once. B updates a row without sending its note (change.Unsent): the
// note stays.
func exactlyOnce(e *env) {
	g := &gen{stream: defaultStream}
	a := concat(g.tx(ins(v1(1, "one", "n1")), ins(v1(2, "two", "n2"))), g.tx(ins(v1(3, "three", "n3"))))
	e.p.Read(a...)
	cpA := e.p.Flushed()
	e.expect("A flushed", a)

	b := concat(g.tx(upd(v1(1, "uno", change.Unsent)), ins(v1(4, "four", "n4"))), g.tx(del(2)))
	e.p.ReadUnflushed(b...)
	e.unflushedInvisible("B written, not flushed", a)
	e.p.Crash()
	e.expectCheckpoint("reopened after a crash with B unflushed", e.p.Open(), cpA)
	e.expect("reopened after the crash", a)

	e.p.Replay()
	e.expect("B replayed and flushed", concat(a, b))
	if e.f.Kind == Table {
		if r := e.rows()["1"]; r["name"] != "uno" || r["note"] != "n1" {
			e.t.Fatalf("row 1 is %v, want name uno and note n1 (the update did not send note: the target keeps it)", r)
		}
	}
	e.restart("restarted after B")
	e.expect("restarted after B", concat(a, b))
}

// transactionBoundaries: a transaction written over several Writes is
// not visible before its boundary is flushed, and a crash in its middle
// leaves none of it; a batch that ends inside a transaction is flushed up
// to the boundary before it. The batch size is 1: the engine flushes at
// every boundary it can.
func transactionBoundaries(e *env) {
	e.p.BatchSize = 1
	e.restart("with batch size 1")
	g := &gen{stream: defaultStream}
	a := g.tx(ins(v1(1, "one", "n1")))
	e.p.Read(a...)
	cpA := e.p.Flushed()
	e.expect("the first transaction flushed", a)

	tx := g.tx(ins(v1(2, "two", "n2")), ins(v1(3, "three", "n3")), upd(v1(1, "uno", change.Unsent)), ins(v1(4, "four", "n4")))
	e.p.Read(tx[:2]...) // no boundary: written, the engine idle, nothing flushed
	e.unflushedInvisible("two events of a transaction of four written", a)
	e.p.Read(tx[2:3]...)
	e.unflushedInvisible("three events of a transaction of four written", a)
	e.p.Crash()
	e.expectCheckpoint("reopened after a crash inside a transaction", e.p.Open(), cpA)
	e.expect("reopened after a crash inside a transaction", a)

	e.p.Replay() // the source delivers the transaction again from its start
	e.unflushedInvisible("the transaction replayed up to its third event", a)
	e.p.Read(tx[3:]...) // and then its end
	e.expect("the transaction's end flushed", concat(a, tx))

	// A batch ending inside a transaction: flushed up to the boundary
	// before it, the rest held back.
	t2 := g.tx(ins(v1(5, "five", "n5")))
	t3 := g.tx(ins(v1(6, "six", "n6")), del(3))
	e.p.Read(concat(t2, t3[:1])...)
	e.expect("a batch ending inside a transaction", concat(a, tx, t2))
	e.p.Crash()
	e.expectCheckpoint("reopened with the batch's last transaction open", e.p.Open(), change.Checkpoint{defaultStream: t2[0].Position})
	e.expect("reopened with the batch's last transaction open", concat(a, tx, t2))
	e.p.Replay()
	e.p.Read(t3[1:]...)
	e.expect("the last transaction's end flushed", concat(a, tx, t2, t3))
	e.restart("restarted at the end")
}

// marks: a Flush of Marks alone (heartbeats, transactions a transform
// dropped) moves the checkpoint and adds nothing a reader sees; a Mark
// that ends a transaction with rows does not hide them.
func marks(e *env) {
	g := &gen{stream: defaultStream}
	a := g.tx(ins(v1(1, "one", "n1")))
	e.p.Read(a...)
	flushes := e.p.Flushes()
	m := g.marks(3)
	e.p.Read(m...)
	if e.p.Flushes() == flushes {
		e.t.Fatal("sinktest: no flush of the marks")
	}
	e.expect("marks flushed", a)
	want := change.Checkpoint{defaultStream: m[len(m)-1].Position}
	e.expectCheckpoint("reopened after a flush of marks", e.p.Restart(), want)
	e.expect("reopened after a flush of marks", a)

	t := g.tx(ins(v1(2, "two", "n2")), mark())
	e.p.Read(t...)
	e.expect("a transaction ended by a mark", concat(a, t))
	e.expectCheckpoint("reopened after a transaction ended by a mark", e.p.Restart(), change.Checkpoint{defaultStream: t[1].Position})
}

// truncation: a Truncate does what the sink documents (Factory.Truncate),
// in its place among the changes; written and not flushed, it does
// nothing.
func truncation(e *env) {
	g := &gen{stream: defaultStream}
	a := concat(g.tx(ins(v1(1, "one", "n1"))), g.tx(ins(v1(2, "two", "n2"))))
	e.p.Read(a...)
	tr := g.tx(truncate(), ins(v1(3, "three", "n3")))
	e.p.ReadUnflushed(tr...)
	e.unflushedInvisible("a truncate written, not flushed", a)
	e.p.Crash()
	e.p.Open()
	e.expect("reopened after a crash with a truncate unflushed", a)
	e.p.Replay()
	e.expect("a truncate flushed", concat(a, tr))
	b := g.tx(ins(v1(4, "four", "n4")))
	e.p.Read(b...)
	all := concat(a, tr, b)
	e.expect("a row after the truncate", all)
	switch e.f.Truncate {
	case TruncateEmpties:
		if got := len(e.rows()); got != 2 {
			e.t.Fatalf("%d rows after the truncate and two inserts, want 2", got)
		}
	case TruncateMessage:
		ms := e.target.Messages(e.t)
		if len(ms) != 5 || ms[2].Op != "truncate" || ms[2].Table != table {
			e.t.Fatalf("messages %v: want the truncate of %s third of five", formatMessages(ms), table)
		}
	}
	e.restart("restarted after the truncate")
	e.expect("restarted after the truncate", all)
}

// schemaChange: a new Relation version adds the column age in the middle
// of a transaction (after a row of the old version); the rows written
// after it carry it.
func schemaChange(e *env) {
	g := &gen{stream: defaultStream}
	a := concat(g.tx(ins(v1(1, "one", "n1"))), g.tx(ins(v1(2, "two", "n2"))))
	e.p.Read(a...)
	b := g.tx(ins(v1(3, "three", "n3")), ins(v2(4, "four", "n4", int64(40))), upd(v2(1, "uno", change.Unsent, int64(10))))
	c := g.tx(ins(v2(5, "five", nil, int64(50))))
	e.p.Read(concat(b, c)...)
	all := concat(a, b, c)
	e.expect("rows of the new version flushed", all)
	switch e.f.Kind {
	case Table:
		rows := e.rows()
		for id, age := range map[string]string{"1": "10", "2": Null, "3": Null, "4": "40", "5": "50"} {
			r := rows[id]
			if got, ok := r["age"]; !ok || got != age {
				e.t.Fatalf("row %s is %v: want age %s", id, r, age)
			}
		}
		if rows["1"]["note"] != "n1" {
			e.t.Fatalf("row 1 is %v: want note n1 kept", rows["1"])
		}
	case Log:
		// The messages of the rows of version 2: 4, the update of 1, 5.
		for _, m := range e.target.Messages(e.t) {
			_, has := m.Row["age"]
			id := m.Key["id"]
			if m.Key == nil { // Keyless: the row names it
				id = m.Row["id"]
			}
			if want := id == "4" || id == "5" || id == "1" && m.Op == "update"; has != want {
				e.t.Fatalf("message %v: want age in the messages of the new version only", m)
			}
		}
	}
	e.restart("restarted after the schema change")
	e.expect("restarted after the schema change", all)
}

// rejected: an event the target refuses, in the middle of a transaction,
// comes back as an *engine.RejectError naming it; the engine
// dead-letters it and restarts, writing its Mark in its place, and the
// events around it reach the target.
func rejected(e *env) {
	if e.f.Reject == nil {
		e.t.Skip(e.f.NoReject)
	}
	g := &gen{stream: defaultStream}
	a := g.tx(ins(v1(1, "one", "n1")))
	e.p.Read(a...)
	b := g.tx(ins(v1(2, "two", "n2")), e.f.Reject(ins(v1(3, "three", "n3"))), ins(v1(4, "four", "n4")))
	c := g.tx(ins(v1(5, "five", "n5")))
	e.p.Read(concat(b, c)...)
	rejects := e.p.Rejects()
	if len(rejects) != 1 {
		e.t.Fatalf("%d events rejected, want 1 (the refused one at %s)", len(rejects), b[1].Position)
	}
	rej := rejects[0].Event
	if rej.Position != b[1].Position || rej.Table != table || rej.Op != change.Insert || rej.Key.String() != b[1].Key.String() {
		e.t.Fatalf("the RejectError names %s %s at %s %s key %v, want the refused insert at %s key %v",
			rej.Op, rej.QualifiedTable(), rej.Position.Stream(), rej.Position, rej.Key, b[1].Position, b[1].Key)
	}
	want := concat(a, []change.Event{b[0], b[2]}, c)
	e.check("after the rejected event", want, e.f.Redelivers)
	if e.f.Kind == Table {
		if _, ok := e.rows()["3"]; ok {
			e.t.Fatal("the rejected row 3 is in the target")
		}
	}
	e.restart("restarted after the rejected event")
	e.check("restarted after the rejected event", want, e.f.Redelivers)
}

// twoStreams: a source with two partitions (two streams). Each Open
// returns the position of both as last flushed, also when one stream was
// inside a transaction at the flush (its open part is held back and
// replayed).
func twoStreams(e *env) {
	s0 := &gen{stream: change.Stream{Source: sourceName, Partition: "t/0"}}
	s1 := &gen{stream: change.Stream{Source: sourceName, Partition: "t/1"}}
	a := concat(s0.tx(ins(v1(101, "a1", "n"))), s1.tx(ins(v1(201, "b1", "n"))), s0.tx(ins(v1(102, "a2", "n"))))
	e.p.Read(a...)
	e.expectCheckpoint("reopened after both streams moved", e.p.Restart(),
		change.Checkpoint{s0.stream: a[2].Position, s1.stream: a[1].Position})
	e.expect("both streams flushed", a)

	// t/1 reaches a boundary while t/0 is inside a transaction.
	t0 := s0.tx(ins(v1(103, "a3", "n")), upd(v1(101, "a1b", change.Unsent)))
	b := s1.tx(ins(v1(202, "b2", "n")))
	e.p.Read(concat(b, t0[:1])...)
	e.expect("t/1 flushed while t/0 is inside a transaction", concat(a, b))
	e.expectCheckpoint("reopened with t/0 inside a transaction", e.p.Restart(),
		change.Checkpoint{s0.stream: a[2].Position, s1.stream: b[0].Position})
	c := s1.tx(del(201))
	e.p.Read(concat(t0[1:], c)...)
	all := concat(a, b, t0, c)
	e.expect("both streams flushed again", all)
	e.restart("restarted after both streams moved again")
	e.restart("restarted once more, nothing written")
	e.expect("restarted twice", all)
}
