package sqltable

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/throttle"
)

// Target is what a database sink package hands to New: its dialect and
// how to connect.
type Target struct {
	Dialect Dialect
	// Connect opens a connection pool; every Open calls it afresh.
	Connect func() (*sql.DB, error)
	// Secret is the DSN's password, removed from every error the sink
	// returns ("" if none).
	Secret string
}

// Sink applies change events to tables of one SQL database and commits
// them together with its checkpoint. It implements engine.Sink; like every
// sink it is used from one goroutine.
type Sink struct {
	d        Dialect
	tgt      Target
	opts     options
	pipeline string
	name     string
	log      *slog.Logger

	db     *sql.DB
	tx     *sql.Tx
	dirty  bool              // tx has executed a statement
	tables map[string]*table // by the events' qualified source table
	cpSQL  string            // upserts the checkpoint row
	// cpInit inserts an empty checkpoint row unless there is one, and
	// cpLock reads the row and locks it until the transaction ends, so
	// processes sharing the row merge their streams one at a time.
	cpInit, cpLock string
	// committed is, per stream, the position this process last read from
	// or wrote to the checkpoint row: a Flush writes only the streams
	// whose position differs (see flush).
	committed change.Checkpoint
	// window holds the events applied since the savepoint sluice_batch
	// was taken (windowOpen), at most about batch_size of them: on a data
	// error the transaction rolls back to the savepoint and they are
	// replayed one by one. Where statements are atomic (MySQL) there is
	// no window.
	window     []change.Event
	windowOpen bool
	// lost is the error that cost the open transaction its rows; until
	// the next Open every Write and Flush returns it, so that nothing is
	// written into a fresh transaction as if the lost rows were there.
	lost error
	// baseDomains are the source domains (schema.name) the target refused
	// to create: their columns get the domain's base type (typeddl.go).
	baseDomains map[string]bool
	// throttle holds writes to max_rows_per_second (nil: none).
	throttle *throttle.Limiter
	// stmts are the statement texts that repeat, by text, and their
	// prepared statements (stmtcache.go); clock orders their uses, and
	// txGen counts transactions, so that a statement bound to an
	// earlier one is not reused.
	stmts        map[string]*prepared
	clock, txGen uint64
	// lanes is shared with the lanes made from this sink (lane.go); nil
	// while there are none. lane: this instance is one of them, counted
	// in lanes.open until it closes.
	lanes *lanes
	lane  bool
}

var (
	_ engine.Sink            = (*Sink)(nil)
	_ engine.CommittedReader = (*Sink)(nil)
	_ engine.Forgetter       = (*Sink)(nil)
)

// New checks the sink's configuration and returns a Sink that connects
// on Open. Configuration errors are engine.Permanent and point at the
// attribute.
func New(b engine.Build, s *dsl.Sink, c *dsl.TableSink, tgt Target) (*Sink, error) {
	if c == nil {
		return nil, engine.Permanent(fmt.Errorf("sink %q: no %s configuration", s.Name, tgt.Dialect.Name()))
	}
	o, err := newOptions(s.Name, c)
	if err != nil {
		return nil, err
	}
	log := b.Logger
	if log == nil {
		log = slog.Default()
	}
	pipeline := b.Pipeline.Name
	d := tgt.Dialect
	cp := Name{Table: CheckpointTable}.quoted(d)
	cpSQL := fmt.Sprintf("INSERT INTO %s (%s, %s, %s, %s) VALUES (%s, %s, %s, %s)%s", cp,
		d.Quote("pipeline"), d.Quote("sink"), d.Quote("checkpoint"), d.Quote("updated_at"),
		d.Placeholder(1), d.Placeholder(2), d.Placeholder(3), d.Placeholder(4),
		d.OnConflict([]string{"pipeline", "sink"}, []string{"checkpoint", "updated_at"}))
	cpInit := fmt.Sprintf("INSERT INTO %s (%s, %s, %s, %s) VALUES (%s, %s, %s, %s)%s", cp,
		d.Quote("pipeline"), d.Quote("sink"), d.Quote("checkpoint"), d.Quote("updated_at"),
		d.Placeholder(1), d.Placeholder(2), d.Placeholder(3), d.Placeholder(4),
		d.OnConflict([]string{"pipeline", "sink"}, nil))
	return &Sink{d: d, tgt: tgt, opts: o, pipeline: pipeline, name: s.Name, log: log.With("sink", s.Name), throttle: throttle.New(c.MaxRowsPerSecond),
		cpSQL: cpSQL, cpInit: cpInit, cpLock: checkpointQuery(d) + " FOR UPDATE"}, nil
}

// Open connects, creates the checkpoint table if needed and returns the
// checkpoint stored there for this pipeline and sink (empty on the first
// run). saved is ignored: the target is the truth. Open may be called
// again after an error to start over; the open transaction is dropped.
// BatchSize is the block's batch_size: the engine commits after that
// many events (engine.BatchSizer).
func (s *Sink) BatchSize() int { return s.opts.batch }

func (s *Sink) Open(ctx context.Context, _ []byte) (change.Checkpoint, error) {
	_ = s.disconnect()
	s.lost = nil
	db, err := s.tgt.Connect()
	if err != nil {
		return nil, s.wrap(err, "connect")
	}
	// One connection for the transaction and one for DDL that must not
	// run inside it (MySQL).
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	// Replace idle connections before servers drop them (MySQL's
	// wait_timeout) rather than find out on the next write.
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.db = db
	if err := db.PingContext(ctx); err != nil {
		return nil, s.wrap(err, "connect")
	}
	if err := s.learnServer(ctx); err != nil {
		return nil, err
	}
	d := s.d
	ddl := fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (%s %s NOT NULL, %s %s NOT NULL, %s %s NOT NULL, %s %s NOT NULL, PRIMARY KEY (%s, %s))%s",
		Name{Table: CheckpointTable}.quoted(d),
		d.Quote("pipeline"), d.ValueType("", true), d.Quote("sink"), d.ValueType("", true),
		d.Quote("checkpoint"), d.ValueType("", false), d.Quote("updated_at"), d.ValueType(time.Time{}, false),
		d.Quote("pipeline"), d.Quote("sink"), d.TableOptions())
	if _, err := db.ExecContext(ctx, ddl); err != nil {
		return nil, s.wrap(err, "create "+CheckpointTable)
	}
	cp, err := s.readCheckpoint(db.QueryRowContext(ctx, checkpointQuery(d), s.pipeline, s.name))
	if err != nil {
		return nil, err
	}
	s.committed = cp.Clone()
	return cp, nil
}

// Forget deletes this pipeline's and sink's row of the target's
// checkpoint table (engine.Forgetter), if the table and the row exist.
func (s *Sink) Forget(ctx context.Context) (bool, error) {
	db, err := s.tgt.Connect()
	if err != nil {
		return false, s.wrap(err, "connect")
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, s.wrap(err, "connect")
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, s.d.ColumnsQuery(), nil, CheckpointTable)
	if err != nil {
		return false, s.wrap(err, "read "+CheckpointTable)
	}
	exists := rows.Next()
	rows.Close()
	if !exists {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE %s = %s AND %s = %s", Name{Table: CheckpointTable}.quoted(s.d),
		s.d.Quote("pipeline"), s.d.Placeholder(1), s.d.Quote("sink"), s.d.Placeholder(2)), s.pipeline, s.name)
	if err != nil {
		return false, s.wrap(err, "delete from "+CheckpointTable)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, s.wrap(err, "delete from "+CheckpointTable)
	}
	if err := tx.Commit(); err != nil {
		return false, s.wrap(err, "commit")
	}
	return n > 0, nil
}

// Committed re-reads the checkpoint the target holds for this pipeline
// and sink (engine.CommittedReader): when processes share a Kafka
// source's partitions, a partition that moves here resumes after what
// the other process committed. Safe to call from another goroutine than
// Write and Flush, between Open and Close.
func (s *Sink) Committed(ctx context.Context) (change.Checkpoint, error) {
	db := s.db
	if db == nil {
		return nil, fmt.Errorf("%s sink %q: Committed before Open", s.d.Name(), s.name)
	}
	return s.readCheckpoint(db.QueryRowContext(ctx, checkpointQuery(s.d), s.pipeline, s.name))
}

// checkpointQuery selects the checkpoint of one pipeline ($1) and sink ($2).
func checkpointQuery(d Dialect) string {
	return fmt.Sprintf("SELECT %s FROM %s WHERE %s = %s AND %s = %s", d.Quote("checkpoint"), Name{Table: CheckpointTable}.quoted(d),
		d.Quote("pipeline"), d.Placeholder(1), d.Quote("sink"), d.Placeholder(2))
}

// readCheckpoint scans and decodes a checkpoint row; no row is the empty
// checkpoint.
func (s *Sink) readCheckpoint(row *sql.Row) (change.Checkpoint, error) {
	var text string
	err := row.Scan(&text)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return change.Checkpoint{}, nil
	case err != nil:
		return nil, s.wrap(err, "read "+CheckpointTable)
	}
	var cp change.Checkpoint
	if err := cp.UnmarshalJSON([]byte(text)); err != nil {
		return nil, engine.Permanent(fmt.Errorf("%s sink %q: the %s row of pipeline %q is corrupt (%v): delete it to start over", s.d.Name(), s.name, CheckpointTable, s.pipeline, err))
	}
	return cp, nil
}

// Write applies events to the open target transaction (beginning one if
// needed), in order, in statements of up to MaxStatementRows rows. Nothing
// is visible to other readers before Flush.
//
// When the target refuses a row, Write returns a *engine.RejectError for
// that event: the events before it in this call are applied, the rejected
// one and those after it are not, and the transaction stays usable, so
// the caller may pass the events after it to Write again (dead_letter) or
// Close to drop the transaction. Configuration problems (a missing table
// without auto_create, a missing key column) are engine.Permanent; every
// other error means the transaction is lost and the sink must be opened
// again (the engine replays from the checkpoint): until then Write and
// Flush return that error again.
func (s *Sink) Write(ctx context.Context, events []change.Event) error {
	if s.db == nil {
		return fmt.Errorf("%s sink %q: Write before Open", s.d.Name(), s.name)
	}
	if s.lost != nil {
		return s.lost
	}
	for len(events) > 0 {
		n := min(len(events), s.opts.batch)
		if err := s.throttle.Wait(ctx, n); err != nil {
			return err
		}
		if err := s.writeChunk(ctx, events[:n]); err != nil {
			if !isReject(err) {
				s.lost = err
			}
			return err
		}
		events = events[n:]
	}
	return nil
}

// writeChunk applies up to batch_size events under the savepoint of the
// current window, which spans Write calls until it holds batch_size
// events. If a statement fails with a data error, the transaction is
// rolled back to the savepoint and the window's events and these are
// replayed one at a time to find the event to reject.
// Dialects whose failed statements leave the transaction intact skip the
// savepoint (writeAtomic).
func (s *Sink) writeChunk(ctx context.Context, events []change.Event) error {
	rows := false
	for i := range events {
		if events[i].Op != change.Mark {
			rows = true
			break
		}
	}
	if !rows {
		return nil // marks only count for the checkpoint, which the engine passes to Flush
	}
	if err := s.begin(ctx); err != nil {
		return err
	}
	if s.d.AtomicStatements() {
		return s.writeAtomic(ctx, events)
	}
	if !s.windowOpen {
		if err := s.exec(ctx, "SAVEPOINT sluice_batch"); err != nil {
			return s.classified(err)
		}
		s.windowOpen = true
	}
	err := s.apply(ctx, events)
	var stmtErr *statementError
	replayed := false
	if errors.As(err, &stmtErr) && s.d.Classify(stmtErr.err) == Reject {
		if err := s.exec(ctx, "ROLLBACK TO SAVEPOINT sluice_batch"); err != nil {
			return s.classified(err)
		}
		s.forgetTables()
		// The window's earlier events were undone too: replay them first.
		err = s.replay(ctx, append(s.window, events...))
		replayed = true
	}
	if err != nil && !isReject(err) {
		return s.classified(err)
	}
	s.window = append(s.window, events...)
	if replayed || err != nil || len(s.window) >= s.opts.batch {
		// Close the window: release the savepoint (a subtransaction) so
		// that a big source transaction holds few of them at a time.
		if relErr := s.exec(ctx, "RELEASE SAVEPOINT sluice_batch"); relErr != nil {
			return s.classified(relErr)
		}
		s.window, s.windowOpen = nil, false
	}
	return err
}

// writeAtomic is writeChunk where a failed statement leaves no trace and
// the transaction usable (MySQL): no savepoint on the way, two round
// trips fewer per Write. When a statement fails with a data error, the
// statements before it stand, and the events from the first one in the
// failed statement on are replayed one by one to find the event to
// reject. Replaying an event whose earlier operation (the delete of a
// primary-key update) already ran repeats it harmlessly.
func (s *Sink) writeAtomic(ctx context.Context, events []change.Event) error {
	err := s.apply(ctx, events)
	var stmtErr *statementError
	if errors.As(err, &stmtErr) && s.d.Classify(stmtErr.err) == Reject && stmtErr.first >= 0 {
		err = s.replay(ctx, events[stmtErr.first:])
	}
	if err != nil && !isReject(err) {
		return s.classified(err)
	}
	return err
}

// replay applies events one by one, each under its own savepoint, and
// rejects the first the target refuses.
func (s *Sink) replay(ctx context.Context, events []change.Event) error {
	for i := range events {
		if events[i].Op == change.Mark {
			continue
		}
		if err := s.exec(ctx, "SAVEPOINT sluice_row"); err != nil {
			return err
		}
		err := s.apply(ctx, events[i:i+1])
		var stmtErr *statementError
		if errors.As(err, &stmtErr) && s.d.Classify(stmtErr.err) == Reject {
			if err := s.exec(ctx, "ROLLBACK TO SAVEPOINT sluice_row"); err != nil {
				return err
			}
			s.forgetTables()
			return &engine.RejectError{Event: events[i], Err: s.redact(stmtErr.err)}
		}
		if err != nil {
			return err
		}
		if err := s.exec(ctx, "RELEASE SAVEPOINT sluice_row"); err != nil {
			return err
		}
	}
	return nil
}

// apply plans and executes events; it stops at the first error.
func (s *Sink) apply(ctx context.Context, events []change.Event) error {
	b := batcher{s: s}
	for i := range events {
		e := &events[i]
		if e.Op == change.Mark {
			continue
		}
		b.cur = i
		if err := s.plan(ctx, &b, e); err != nil {
			if isReject(err) {
				// Apply what came before the rejected event.
				if ferr := b.execQueued(ctx); ferr != nil {
					return ferr
				}
			}
			var stmtErr *statementError
			if errors.As(err, &stmtErr) && stmtErr.first < 0 {
				stmtErr.first = i
			}
			return err
		}
	}
	return b.execQueued(ctx)
}

// Flush writes the checkpoint row in the open transaction and commits it,
// making every event written since the last Flush visible at once. It
// returns nil bytes: the target is the truth.
func (s *Sink) Flush(ctx context.Context, cp change.Checkpoint) ([]byte, error) {
	if s.db == nil {
		return nil, fmt.Errorf("%s sink %q: Flush before Open", s.d.Name(), s.name)
	}
	if s.lost != nil {
		return nil, s.lost
	}
	if err := s.flush(ctx, cp); err != nil {
		s.lost = err
		return nil, err
	}
	return nil, nil
}

// flush writes the checkpoint row and commits.
func (s *Sink) flush(ctx context.Context, cp change.Checkpoint) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	now, err := s.d.Value(time.Now().UTC(), "")
	if err != nil {
		return err
	}
	row, moved := cp, []change.Stream(nil)
	if partitioned(cp) || s.shared() {
		if row, moved, err = s.merge(ctx, cp, now); err != nil {
			return err
		}
	} else {
		for st := range cp {
			moved = append(moved, st)
		}
	}
	text, err := row.MarshalJSON()
	if err != nil {
		return err
	}
	if err := s.execCached(ctx, s.cpSQL, s.pipeline, s.name, string(text), now); err != nil {
		return s.classified(err)
	}
	err = s.tx.Commit()
	s.endTx()
	if err != nil {
		s.forgetTables()
		return s.wrap(err, "commit")
	}
	for _, st := range moved {
		s.committed[st] = cp[st]
	}
	return nil
}

// merge returns the checkpoint row with cp merged in, and the streams it
// took from cp: only those whose position in cp differs from the one this
// process last read or wrote; the others keep what the row holds. Several
// processes in one Kafka consumer group share the row, each moving the
// partitions it owns: a process's stale view of a partition another one
// owns never overwrites that one's progress. The row is locked until the
// transaction ends (created empty first if missing), so merges do not
// interleave.
func (s *Sink) merge(ctx context.Context, cp change.Checkpoint, now any) (change.Checkpoint, []change.Stream, error) {
	empty, err := change.Checkpoint{}.MarshalJSON()
	if err != nil {
		return nil, nil, err
	}
	if err := s.exec(ctx, s.cpInit, s.pipeline, s.name, string(empty), now); err != nil {
		return nil, nil, s.classified(err)
	}
	merged, err := s.readCheckpoint(s.tx.QueryRowContext(ctx, s.cpLock, s.pipeline, s.name))
	if err != nil {
		return nil, nil, err
	}
	var moved []change.Stream
	for st, p := range cp {
		if q, ok := s.committed[st]; !ok || q != p {
			merged[st] = p
			moved = append(moved, st)
		}
	}
	return merged, moved, nil
}

// partitioned reports whether cp has a partitioned stream (a Kafka
// source's), the only kind that processes share through a consumer group.
// An unpartitioned stream (PostgreSQL, a file) is read by one process, so
// a checkpoint of those alone is written whole, without the merge's round
// trips; so is a parallel snapshot's stream once its lanes are gone (the
// lanes themselves merge: see Lane).
func partitioned(cp change.Checkpoint) bool {
	for st := range cp {
		if st.Partition != "" && !st.Parallel() {
			return true
		}
	}
	return false
}

// Close rolls back whatever was written since the last Flush and
// disconnects.
func (s *Sink) Close() error {
	s.leave()
	return s.disconnect()
}

// disconnect drops the open transaction and the connections.
func (s *Sink) disconnect() error {
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.endTx()
	}
	s.forgetTables()
	s.unprepareAll()
	if s.db == nil {
		return nil
	}
	err := s.db.Close()
	s.db = nil
	return s.redact(err)
}

func (s *Sink) begin(ctx context.Context) error {
	if s.tx != nil {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err, "begin")
	}
	s.tx, s.dirty = tx, false
	s.txGen++
	return nil
}

// exec runs a statement in the open transaction. A failure comes back as
// a *statementError so that callers can classify it.
func (s *Sink) exec(ctx context.Context, query string, args ...any) error {
	if s.tx == nil {
		return fmt.Errorf("%s sink %q: no open transaction after an earlier error: reopen the sink", s.d.Name(), s.name)
	}
	if _, err := s.tx.ExecContext(ctx, query, args...); err != nil {
		return &statementError{query: query, err: err, first: -1}
	}
	return nil
}

// rowNumbers runs a query in the open transaction that selects one
// integer per row.
func (s *Sink) rowNumbers(ctx context.Context, query string, args []any) ([]int, error) {
	if s.tx == nil {
		return nil, fmt.Errorf("%s sink %q: no open transaction after an earlier error: reopen the sink", s.d.Name(), s.name)
	}
	rows, err := s.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, &statementError{query: query, err: err, first: -1}
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var n int
		if err := rows.Scan(&n); err != nil {
			return nil, &statementError{query: query, err: err, first: -1}
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, &statementError{query: query, err: err, first: -1}
	}
	return out, nil
}

// endTx forgets the transaction that just committed or rolled back, and
// its savepoint window.
func (s *Sink) endTx() {
	s.tx, s.dirty = nil, false
	s.window, s.windowOpen = nil, false
}

// forgetTables drops what the sink knows of target tables: after a
// rollback, DDL it ran in the transaction is undone too.
func (s *Sink) forgetTables() { s.tables = nil }

// statementError is a failed statement, before classification.
type statementError struct {
	query string
	table string // the target table the statement wrote, when it wrote one
	// first is the index, in the events apply was given, of the first
	// event with a row in the statement (-1 until apply knows it).
	first int
	err   error
}

func (e *statementError) Error() string { return e.err.Error() }
func (e *statementError) Unwrap() error { return e.err }

// classified turns an error from apply into what Write returns: rejects
// and permanent errors as they are, a statement error according to the
// dialect, anything else as a retriable error.
func (s *Sink) classified(err error) error {
	if isReject(err) || engine.IsPermanent(err) {
		return err
	}
	var stmtErr *statementError
	if errors.As(err, &stmtErr) {
		op := stmtErr.query
		if i := strings.IndexAny(op, " ("); i > 0 {
			op = strings.ToLower(op[:i])
		}
		if stmtErr.table != "" {
			op += " " + stmtErr.table
		}
		return s.wrap(stmtErr.err, op)
	}
	return err
}

// wrap names the sink and operation, makes Fatal errors permanent and
// removes the password from the message.
func (s *Sink) wrap(err error, op string) error {
	err = s.redact(err)
	w := fmt.Errorf("%s sink %q: %s: %w%s", s.d.Name(), s.name, op, err, s.hint(err))
	if s.d.Classify(err) == Fatal {
		return engine.Permanent(w)
	}
	return w
}

func isReject(err error) bool {
	var r *engine.RejectError
	return errors.As(err, &r)
}
