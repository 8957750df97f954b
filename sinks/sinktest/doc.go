// Package sinktest is the acceptance kit every sink of sluice passes: the
// rules of engine.Sink checked against the real target, through the
// engine's protocol.
//
// A sink package runs it from its acceptance_test.go:
//
//	func TestAcceptance(t *testing.T) { sinktest.Run(t, factory()) }
//
// where the Factory says how to make a fresh target, build sinks writing
// into it, read back what it holds, and what the sink can do (refuse an
// event, what a truncate does). Each case gets a target of its own and
// runs the sink under the real engine (engine.Compile and Graph.Run of a
// pipeline of an in-memory source and the sink, on_error =
// "dead_letter", a state file of its own; see Pipeline): the engine opens
// the sink with the bytes its last Flush returned, writes in position
// order, flushes only at source-transaction boundaries with the
// checkpoint, skips what the opened checkpoint covers, dead-letters a
// rejected event and writes its Mark after a restart, and restarts from
// the checkpoints after a retriable error. A case crashes the pipeline
// (cancels the run: the sink is closed without a Flush) and reopens it
// where it checks a rule. The target is then read the way a user reads
// it: a database through its own text output (Kind Table), a log of
// messages decoded with encoding/json (Kind Log), not through sluice's
// encoders.
//
// The cases:
//
//   - exactly once across a crash: what was flushed is kept, what was
//     written after it and not flushed is gone after Close, the reopened
//     sink returns the flushed checkpoint, and the replay that follows
//     leaves every change in the target once;
//   - transaction boundaries: a source transaction written over several
//     Writes is never committed in part, also across a crash in its
//     middle;
//   - marks: a Flush of Marks alone moves the checkpoint and writes
//     nothing visible;
//   - truncate: what the sink documents (Factory.Truncate);
//   - schema change: a new Relation version with an added column
//     mid-stream reaches the target;
//   - rejected rows: an event the target refuses comes back as an
//     *engine.RejectError naming it, and the events around it are written
//     (skipped, with the reason, for sinks that cannot refuse one);
//   - restart from the returned checkpoint, over two streams (the
//     partitions of one source), at several points.
//
// Rows are built as sources build them: one change.Columns per Relation
// version, shared by every row of that shape, and change.Unsent where an
// update did not send a column.
//
// SQLTable makes the Factory of a SQL table sink from its
// sqltabletest.Target; DecodeNative and DecodeDebezium decode the
// messages of Log sinks.
package sinktest
