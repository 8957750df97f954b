package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Source reads change events from one source block.
//
// The engine calls Open once, then Read from a single goroutine until it
// returns an error, and Ack from another goroutine as sinks commit.
// Close is called once after Read has returned; it promises nothing about
// what was in flight.
type Source interface {
	// Open prepares reading so that the first events Read returns are the
	// ones after from (what every downstream sink has committed, per
	// stream; empty means from the beginning, e.g. with a snapshot).
	// state is the source's own corner of the state file (snapshot
	// progress and the like).
	Open(ctx context.Context, from change.Checkpoint, state State) error
	// Read blocks until it has a batch of events, in position order, and
	// returns it. The returned slice is owned by the caller. A finite
	// source that has delivered everything returns io.EOF.
	Read(ctx context.Context) ([]change.Event, error)
	// Ack tells the source that every event at or before cp has been
	// durably committed by every sink that reads it. Calls come in
	// non-decreasing order. PostgreSQL confirms this frontier to its slot.
	Ack(ctx context.Context, cp change.Checkpoint) error
	Close() error
}

// Sink writes change events into one target.
//
// The engine calls Open once, then Write and Flush from a single
// goroutine, then Close. Events arrive in position order per stream, and
// events the sink has already committed (Covered by the checkpoint Open
// returned) are never passed again.
type Sink interface {
	// Open connects and returns the checkpoint that the target holds for
	// this sink: the positions of the last events it committed. A sink
	// that commits transactionally (database, Kafka) reads it from its
	// target, where it is written in the same transaction as the rows;
	// other sinks decode it from saved, the bytes their last Flush
	// returned (nil on the first run).
	Open(ctx context.Context, saved []byte) (change.Checkpoint, error)
	// Write hands the sink a batch of events; the sink may apply them to
	// an open target transaction or buffer them. Nothing is durable yet.
	Write(ctx context.Context, events []change.Event) error
	// Flush makes every event written since the last Flush durable,
	// together with cp, atomically where the target allows. The engine
	// only flushes at a source-transaction boundary. It returns the bytes
	// to pass to the next Open (nil if the target itself is the truth).
	Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error)
	Close() error
}

// Transform is a pure function over batches: no I/O, no goroutines, no
// clock. It returns the events to pass on, in order, and the events it
// could not process with why. A dropped event that ends a transaction is
// passed on as its Mark (Event.AsMark) so checkpoints still advance.
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

// State is a source's or sink's private key/value corner of the pipeline's
// state file. Each Put is durable when it returns.
type State interface {
	Get(key string) ([]byte, error) // nil, nil when the key is absent
	Put(key string, value []byte) error
}

// RejectError reports that a target refused one event for what it holds
// (a value too long, a constraint violation): retrying will not help. The
// engine applies the pipeline's on_error policy to the event.
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
// restarted process then fences its own predecessor.
const InstanceEnv = "SLUICE_INSTANCE"
