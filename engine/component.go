package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-cdc/sluice/engine/change"
)

// This file is the contract between the engine and its components: what
// a Source, a Transform and a Sink are called with, when, from which
// goroutine, and what they must guarantee for every change to reach
// every sink exactly once. The optional interfaces a component may add
// are declared beside the code that calls them (BatchSizer in spec.go,
// SaveNotifier in saved.go, Resumer, ResumeSetter, CommittedReader and
// Forgetter in resume.go, Resyncer in resync.go, Laned in lanes.go); the
// doc of Source and Sink says when each is called. docs/components.md
// walks through adding a sink, and ExampleSink is a complete one.

// Source reads change events from one source block.
//
// Each attempt of Graph.Run (the first one, and every retry, resume or
// restart after a dead-lettered event) builds a new Source with the
// node's constructor (SourceNode.New) and drives it in this order:
//
//  1. SetResume, if it is a [ResumeSetter], before Open.
//  2. Open, once, from the goroutine that called Run, after every sink of
//     the pipeline has opened. A Source is never opened again: a failed
//     attempt is closed, and the next one builds a new Source.
//  3. Resumed, if it is a [Resumer] and Open's from was not empty: a false
//     answer ends Run with ErrPositionLost.
//  4. Read, in a loop, from the source's own stage goroutine, until it
//     returns an error or the attempt ends. Meanwhile Ack is called from
//     the checkpointer goroutine and Resync ([Resyncer]) from the goroutine
//     that takes snapshot requests: concurrently with Read and with each
//     other. Ack and Resync may still come after Read returned io.EOF.
//  5. Close, once, from the goroutine that called Run, after every stage
//     of the attempt has returned: no other method is running or will be
//     called. Close is also called when Open failed.
//
// A source that no sink reads is never built. The constructor gets a
// Build whose Observer is never nil; it should check its configuration
// and not connect (Open does).
//
// Positions. Every event carries a Position whose Source is the source
// block's name (the NAME of `source "TYPE" "NAME"`) and whose Partition
// is "" or the partition it was read from (Kafka's "topic/3"): the
// engine acknowledges a source, and opens it, with the streams of its
// own name only. Positions are unique and strictly increasing within a
// stream (Position.Stream), across Reads and across attempts: a change
// read again after a restart carries the position it had, because every
// sink skips the events its own checkpoint covers, by position. (A
// snapshot that starts over because none of it was committed may number
// its rows anew.)
//
// Transaction boundaries. A source sets Event.Boundary on the last event
// of each source transaction (for a source without transactions, on
// every event it may be committed after), or emits a Mark with Boundary
// at the transaction's end. A sink flushes only when the last event it
// was written on every stream it reads is a boundary, so a source that
// sets none never has anything committed or acknowledged. A source that
// can tell it is idle emits heartbeat Marks with Boundary, so that
// checkpoints advance past rows its filters or transforms dropped, and
// an idle pipeline's lag reads 0.
//
// Ownership. Everything Read returns belongs to the engine: the slice
// (transforms may get it as it is) and the rows the
// events carry, which every branch of the graph shares. A source builds
// a new slice and new rows (change.MakeRow) for every batch, and never
// changes them after Read returns.
type Source interface {
	// Open prepares reading so that the first events Read returns on each
	// stream are the ones right after from.
	//
	// from is what every sink downstream has committed: per stream of
	// this source, the lowest of the checkpoints the sinks' Opens
	// returned. A stream from lacks (and an empty from: the first run)
	// is read from its beginning (an initial snapshot, the start of a
	// partition). Events at or before from are harmless, since each sink
	// skips what its checkpoint covers, but cost time. from belongs to
	// the engine: read it, do not change it.
	//
	// state is this source's own corner of the state file (snapshot
	// progress, a slot name): it outlives the Source, and is valid until
	// Close returns. ctx is for Open's own work; do not keep it.
	Open(ctx context.Context, from change.Checkpoint, state State) error
	// Read blocks until it has events and returns them: in position
	// order, and in order after what the previous Read returned on each
	// stream. A batch may end anywhere, inside a transaction or after
	// several. Batches bound memory: each edge queues RunOptions.QueueLen
	// of them, within RunOptions.QueueBytes, and a batch larger than that
	// goes alone, so a source keeps them small rather than return a whole
	// table or transaction. An empty batch is allowed, but Read is then
	// called again at once: block instead.
	//
	// ctx is cancelled by a graceful stop (RunOptions.Stop) and when the
	// attempt ends: Read then returns promptly, with any error (the
	// engine does not count it). Events returned with an error are
	// dropped. A finite source that has delivered everything returns
	// io.EOF (or an error wrapping it): Read is not called again, and
	// the source stays open, acknowledged, until the sinks are done.
	// Other errors end the attempt and are classified as the package
	// documentation says (Permanent; anything else is retried).
	Read(ctx context.Context) ([]change.Event, error)
	// Ack tells the source that every event at or before cp, on each
	// stream cp holds, has been durably committed by every sink that
	// reads it, and that the state file has recorded so. The source may
	// now release what is at or before cp (PostgreSQL confirms the
	// position to its replication slot, Kafka commits the offsets), and
	// never anything beyond it.
	//
	// cp holds this source's streams only, and only those that every
	// sink downstream has committed something of. Calls are serial,
	// from the checkpointer goroutine (concurrently with Read), and
	// per stream non-decreasing and at or after Open's from; commits
	// coalesce, so a source need not hear of each one. cp belongs to
	// the engine: Clone it to keep a copy you change. An error ends the
	// attempt.
	Ack(ctx context.Context, cp change.Checkpoint) error
	// Close releases what the source holds (connections, goroutines). It
	// need not do anything about events read and not acknowledged: the
	// next attempt reads them again from the sinks' checkpoints. Its
	// error is only logged.
	Close() error
}

// Sink writes change events into one target.
//
// Each attempt of Graph.Run builds a new Sink with the node's constructor
// (SinkNode.New) and drives it in this order:
//
//  1. Open, once, from the goroutine that called Run, before any source
//     opens. A Sink is never opened again: a failed attempt is closed,
//     and the next one builds a new Sink, which opens from the state
//     file and the target.
//  2. BatchSize, if it is a [BatchSizer], once, as its stage starts.
//  3. Write and Flush, from the sink's own stage goroutine, one call at a
//     time. Meanwhile Saved ([SaveNotifier]) is called from the
//     checkpointer goroutine, and Committed ([CommittedReader]) from any
//     goroutine of a source that asks ([ResumeSetter]): concurrently with
//     Write and Flush. The sink locks what it shares with them. A
//     [Laned] sink's lanes are instances of their own, Lane called from
//     the stage goroutine, each then opened, written, flushed and closed
//     from a goroutine of its own, beside the sink's: what the instances
//     share (a schema lock, the checkpoint row), they lock.
//  4. Close, once, from the goroutine that called Run, after every stage
//     of the attempt has returned: no other method is running or will be
//     called. Close is also called when Open failed, or was never called
//     because an earlier step of the attempt failed.
//
// The constructor checks the block and does not connect: `sluice drop`
// builds sinks to call Forget ([Forgetter]) and never opens or closes them,
// and `sluice plan` builds SQL sinks to plan their DDL. Its Build's
// Observer may be nil (ReplayDeadLetters and the commands build sinks
// without one): use the helpers Recovered and ReportSourceLag, which
// accept nil.
//
// Graph.ReplayDeadLetters (`sluice dlq replay`) drives a sink outside a
// run: Open, then for each dead letter one Write of it (out of position
// order, not at a boundary) and a Flush with the checkpoint Open returned,
// and Close after a RejectError and at the end.
//
// Exactly once rests on three rules. Open returns exactly what the target
// durably holds (less applies events twice, more loses them); Flush makes
// every event written since the previous Flush durable together with its
// checkpoint; and nothing written after the last Flush is ever committed:
// Close discards it, because the next attempt writes those events again.
// Package sinks/sinktest checks all three against a real target.
type Sink interface {
	// Open connects and returns the checkpoint the target holds for this
	// sink: the position of the last event it committed on each stream.
	// The engine skips, for this sink, every event that checkpoint
	// covers, and opens each source from the lowest checkpoint of its
	// sinks. A nil checkpoint is empty (nothing committed).
	//
	// saved is what the last Flush the state file recorded returned: nil
	// before the first one, or when that Flush returned nil. The state
	// file records a Flush only after it returned, so a crash in between
	// leaves saved one Flush behind the target. Either the target is the
	// truth: Flush writes its checkpoint into the target in the same
	// transaction as the rows, and Open reads it back and ignores saved
	// (SQL, exactly-once Kafka). Or saved is: Open puts the target back
	// to what saved records and returns the checkpoint saved holds (a
	// file cuts itself back to the length saved). ctx is for Open's own
	// work. The returned checkpoint belongs to the engine from then on.
	Open(ctx context.Context, saved []byte) (change.Checkpoint, error)
	// Write hands the sink events to apply to an open target transaction
	// or to buffer. Nothing of them may be committed before Flush.
	//
	// The events come in position order per stream (and across Writes),
	// without those Open's checkpoint covers. A source transaction may
	// span several Writes and a Write hold several transactions: Write is
	// not a unit of commit, and its length is not bounded by BatchSize.
	// They are:
	//   - rows (Insert, Update, Delete, Snapshot): Key, Before, After as
	//     change.Event says; a column After lacks was not sent, and the
	//     target keeps its value;
	//   - Truncate (Schema and Table, no row): the sink applies or
	//     ignores it, as its documentation says;
	//   - Mark (a transaction's end, a heartbeat, an event a transform
	//     dropped or a dead-lettered one): nothing to write; its position
	//     is in the next Flush's checkpoint all the same.
	//
	// The slice is the sink's: every Write gets a slice of its own, which
	// the engine never touches again, so the sink may keep it until Flush
	// (or longer). The rows its events carry (Key, Before, After), Changed
	// and Relation are shared with the other sinks and the source:
	// read-only; Clone a row, or build one with change.MakeRow, to change
	// it.
	//
	// Write may block to apply backpressure; it returns when ctx is
	// cancelled. A *RejectError names one event the target refused (see
	// RejectError); any other error ends the attempt, discarding
	// everything since the last Flush, and is classified as ErrPermanent
	// says.
	Write(ctx context.Context, events []change.Event) error
	// Flush makes every event written since the last Flush durable,
	// together with cp, atomically where the target allows, and returns
	// once they are.
	//
	// The engine calls Flush only after at least one event was written
	// since the last Flush, and only when the last event written on every
	// stream the sink reads is a boundary (Event.Boundary), so a sink
	// never commits part of a source transaction: when BatchSize events
	// are waiting (and RunOptions.MinFlushInterval has passed since the
	// last Flush), when the first of them has waited the linger, when the
	// input is idle, and when the input ends.
	//
	// cp is the checkpoint to commit: the checkpoint Open returned,
	// advanced to the position of the last event written on each stream,
	// Marks included. It belongs to the engine: read it, Clone it to keep
	// a copy you change.
	//
	// The returned bytes are saved in the state file with cp, in one
	// update, replacing the previous ones, and are passed to the next
	// attempt's Open as saved; return nil when the target itself holds
	// the checkpoint. A sink that must not act on what the bytes record
	// before they are durable implements SaveNotifier. After a Flush
	// error nothing since the previous Flush counts as committed: the
	// attempt ends, the sink is closed, and the events come again to a
	// new sink.
	Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error)
	// Close releases what the sink holds, and discards what was written
	// since the last Flush: it must never commit it (roll the open
	// transaction back, drop the buffer). The next attempt writes those
	// events again from the checkpoint, so a Close that commits them
	// applies them twice. It may follow a failed Open, or no Open at all.
	// Its error is only logged.
	Close() error
}

// Transform is a pure function over batches: no I/O, no goroutines, no
// clock. It returns the events to pass on, in position order, and the
// events it could not process with why.
//
// Compile builds each transform once (TransformNode.New, with a Build
// whose Observer is nil) and every attempt of Run uses it. Apply is
// called through Graph.Route: by Run from the stage goroutine of each
// source upstream of it, so a transform that reads several sources is
// called concurrently, and by dead-letter replays, dry runs, pipeline
// tests and `sluice verify`. It keeps no state between calls, or locks
// it.
//
// in holds one source's events, in position order; it is shared with the
// other branches of the graph and may be the source's own slice. Apply
// must not write into in (build a new slice to filter: not in[:0]) nor
// into a row an event carries: Clone the row, or build one with
// change.MakeRow. out may reuse in's events and in itself. Events keep
// their positions. A dropped event that ends a transaction (Boundary) is
// passed on as its Mark (Event.AsMark), so that sinks still reach the
// boundary and checkpoints still advance; other dropped events may just
// be left out.
//
// A failed event goes to the pipeline's on_error: under dead_letter it is
// stored and, when it was a Boundary, the engine passes its Mark on to
// every sink of its source itself (so leave a failed event, and its Mark,
// out of out); under fail Run ends with an *EventError; under retry and
// pause the pipeline pauses.
type Transform interface {
	Apply(in []change.Event) (out []change.Event, failed []Failure)
}

// Failure is an event that a stage could not process.
type Failure struct {
	Event change.Event
	Err   error
	// Stage is the failing stage, "transform.NAME": the engine sets it
	// (a transform need not know its block's name).
	Stage string
}

// State is a source's private key/value corner of the pipeline's state
// file, given to Source.Open: what the source must remember across
// restarts beyond its checkpoint (snapshot progress, a replication slot
// it created). Sinks get no State: a sink keeps what it needs in the
// bytes its Flush returns, which its next Open receives. Each Put is
// durable when it returns; Get returns a copy. Safe for concurrent use.
type State interface {
	Get(key string) ([]byte, error) // nil, nil when the key is absent
	Put(key string, value []byte) error
}

// RejectError reports that a target refused one event for what it holds
// (a value too long, a constraint violation): retrying will not help. A
// Sink returns it from Write or Flush, possibly wrapped, with Event the
// refused event as it was written (its Position identifies it). The
// engine applies the pipeline's on_error to the event:
//   - dead_letter: the event is stored in the state file's dead-letter
//     queue and the attempt ends at once (the sink's open batch cannot
//     lose one event); the next attempt's sink is written the event's
//     Mark in its place. A sink that rejects that event again (its Mark
//     included) pauses the pipeline.
//   - fail: Run ends with an *EventError.
//   - retry (the default) and pause: the pipeline pauses until resumed.
//
// Whatever the sink wrote since its last Flush is discarded, as after any
// error (Close), and written again by the next attempt.
type RejectError struct {
	Event change.Event
	Err   error
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("%s at position %s: %v", e.Event.QualifiedTable(), e.Event.Position.String(), e.Err)
}

func (e *RejectError) Unwrap() error { return e.Err }

// ErrPermanent marks errors that retrying cannot fix (bad configuration,
// a missing privilege). Wrap it: fmt.Errorf("...: %w", engine.ErrPermanent).
//
// The engine classifies every error a component returns (from a
// constructor, Open, Read, Ack, Write or Flush) in three: permanent ones
// (IsPermanent) end Run; a *RejectError from a sink goes to on_error (see
// RejectError); anything else is transient: the attempt ends, everything
// is closed, and under on_error retry and dead_letter a new attempt
// reopens from the checkpoints after an exponential backoff (pause
// pauses instead, fail ends Run). So a component returns network and
// server errors as they are, and marks with Permanent what a new
// connection cannot fix.
var ErrPermanent = errors.New("permanent error")

// Permanent wraps err so that IsPermanent reports true for it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string        { return e.err.Error() }
func (e *permanentError) Unwrap() error        { return e.err }
func (e *permanentError) Is(target error) bool { return target == ErrPermanent }

// IsPermanent reports whether err should stop the pipeline rather than be
// retried after a reconnect.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

// InstanceEnv names the environment variable that tells apart the
// processes running the same pipeline side by side (scale-out behind a
// Kafka source's consumer group); `sluice run --instance NAME` sets it.
// Components that must be told apart use it: the exactly-once Kafka sink
// appends it to its transactional id, so the processes do not fence each
// other; the Kafka source makes it the group's static member id, so a
// restarted process takes its partitions back at once. Each process
// keeps its value across restarts (a pod ordinal, a host name): a
// restarted process then fences its own predecessor. Components read it
// from Build.Pipeline.Instance, never from the environment.
const InstanceEnv = "SLUICE_INSTANCE"
