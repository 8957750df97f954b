// Package engine runs a graph of components (a Spec: sources, transforms
// and sinks, each with its constructor, and the pipeline's settings) and
// moves every change from sources to sinks exactly once.
//
// The shapes: Compile builds a Graph from a Spec. The engine knows no
// pipeline language and no component: package components compiles a
// checked pipeline file into a Spec with the constructors of the kinds it
// names, so engine imports neither dsl nor any source or sink. Per source, one stage reads batches and routes each
// through the transform DAG (transforms are pure, so routing is a
// function: Graph.Route); per sink, one stage writes and flushes at
// source-transaction boundaries; the checkpointer records each sink's
// committed checkpoint in the bbolt state file (package state) and
// acknowledges to each source the lowest checkpoint of the sinks that read
// it. Edges are bounded channels of batches (RunOptions.QueueLen), and the
// estimated bytes routed but not yet written are capped
// (RunOptions.QueueBytes), so a slow sink stops reading at the source.
// All stages of an attempt run in one errgroup; every send selects on the
// context.
//
// # Flushing
//
// A sink flushes only when every stream it reads is at a transaction
// boundary (the last event written was a Boundary), and then when its
// batch is full, its linger has passed or its input is idle. The events
// after a batch's last boundary are held back until the next batch, so a
// sink whose input pauses mid-transaction still commits the transactions
// before it. Marks are written to sinks too: they carry positions and
// boundaries past events that transforms dropped.
//
// # Exactly once
//
// Each attempt reopens from checkpoints: Sink.Open returns what the target
// (or the saved bytes of its last Flush) holds, each source opens from the
// lowest checkpoint of its sinks, and each sink skips events its own
// checkpoint covers. After a Flush the checkpointer saves the sink's
// checkpoint and bytes, then acknowledges sources; a crash in between
// makes the sink's Open cut back (files) or report the target's truth
// (databases), and the events come again to that sink only.
//
// Several processes may run one pipeline side by side when its source's
// streams are shared out among them (a Kafka consumer group). A stream
// that moves to a process was committed by another one after this one
// opened its sinks, so the engine gives such sources (ResumeSetter) a
// function that re-reads the sinks' checkpoints from their targets
// (CommittedReader) and returns the lowest per stream: the source resumes
// a moved stream after that, not after what this process opened with.
//
// # Errors and on_error
//
// Transient errors (anything not IsPermanent and not a rejected event)
// close everything and reopen from the checkpoints after an exponential
// backoff with jitter, under on_error "retry" (the default) and
// "dead_letter"; "pause" pauses instead and "fail" ends Run. Permanent
// errors always end Run.
//
// An event a transform fails on (Failure) or a sink rejects (RejectError)
// is handled by on_error:
//   - dead_letter: the event is stored in the state file's dead-letter
//     queue (stage "transform.NAME" or "sink.NAME", error, time) and the
//     pipeline carries on. A transform's failed event is replaced, for
//     every sink of its source, by its Mark when it ended a transaction.
//     A sink's rejected event cannot be taken out of the sink's open
//     batch, so the attempt ends and restarts at once from the
//     checkpoints; the sink stage then writes the Mark of every
//     dead-lettered position of that sink instead of the event, so the
//     batch is replayed without it and the checkpoint moves past it.
//   - fail: Run returns an *EventError naming the stage, table and
//     position.
//   - pause (and retry, for which retrying cannot fix an event): nothing
//     more is read or committed, positions stay where they are, the pause
//     is logged at error level, and Run waits for a resume
//     (RunOptions.Resume, or a request file beside the state file:
//     `sluice resume`), after which it reopens from the checkpoints and
//     retries the event (pausing again if it fails again), or for Stop,
//     after which it returns an error wrapping ErrPaused.
//
// Graph.ReplayDeadLetters writes dead letters again once the cause is
// fixed (`sluice dlq replay`).
//
// # Lag and observation
//
// For each sink the engine follows the changes routed to it and not yet
// committed (a bounded queue per stream). A sink's lag is 0 when there are
// none, else now minus the source commit time of the oldest (the time it
// was read, for changes without one): marks and heartbeats commit too, so
// an idle, caught-up pipeline has lag 0 (SinkLag). The lag goes to
// RunOptions.Observer, with counts, flush sizes and durations, errors,
// dead letters, restarts and phases (package observe makes Prometheus
// metrics of them), and to the state file's status file, which `sluice
// status` and `sluice wait` read while the pipeline runs. Each sink's
// checkpoint is saved with the source commit time of its last change.
//
// A source that can tell it did not resume where its sinks committed
// (Resumer: a PostgreSQL slot dropped behind sluice's back) stops Run with
// ErrPositionLost rather than skip the changes in between.
package engine
