package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Streaming limits: a batch is handed to Read when it holds maxBatch
// events or maxBatchBytes of row data, or linger after its first event.
const (
	maxBatch       = 2048
	maxBatchBytes  = 4 << 20
	linger         = 5 * time.Millisecond
	statusInterval = time.Second
	maxBackoff     = 5 * time.Second
)

// streamer owns the replication connection: it receives and decodes
// pgoutput, hands batches to Read through a bounded channel, sends
// standby status updates confirming only the acknowledged frontier, and
// reconnects with backoff when the connection or the server goes away.
type streamer struct {
	dsn, slot, publication, source string
	dec                            *decoder
	logger                         *slog.Logger
	out                            chan []change.Event

	// last is the position of the last event handed to Read: after a
	// reconnect, replication restarts at its transaction and everything
	// at or before it is skipped.
	last    change.Position
	hasLast bool

	// state keeps the bound of idle confirmations (see saveBound); nil
	// in tests that build a streamer alone.
	state engine.State
	// system is the server's system identifier at Open ("": unchecked):
	// a reconnect to another server (a failover) is a lost slot.
	system string

	mu      sync.Mutex
	confirm pglogrepl.LSN   // the LSN it is safe to confirm (from Ack)
	acked   change.Position // the frontier Ack reported
	sent    pglogrepl.LSN   // the LSN last confirmed to the server
	// ackConfirm is the part of confirm that Ack (not idle) reported;
	// bound the highest LSN saved with saveBound, at boundAt.
	ackConfirm pglogrepl.LSN
	bound      pglogrepl.LSN
	boundAt    time.Time
}

// restart points the streamer at a slot created anew at cp (after the
// old one was lost): it starts there, skipping nothing. The streamer must
// not be running.
func (st *streamer) restart(cp pglogrepl.LSN) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.last, st.hasLast = change.Position{}, false
	st.confirm, st.ackConfirm, st.bound, st.boundAt, st.sent = cp, cp, cp, time.Now(), 0
}

// ack records the frontier every sink has committed. A whole transaction
// (its commit Mark) confirms just past its commit record, so a restart
// does not send it again; a position inside one confirms its commit LSN,
// so the transaction comes again and its committed events are skipped.
func (st *streamer) ack(p change.Position) {
	lsn := pglogrepl.LSN(p.Offset)
	if p.Index == commitIndex {
		lsn++
	}
	st.mu.Lock()
	st.confirm = max(st.confirm, lsn)
	st.ackConfirm = max(st.ackConfirm, lsn)
	if p.Compare(st.acked) > 0 {
		st.acked = p
	}
	st.mu.Unlock()
}

// idle is told the server's sent position from a keepalive received with
// nothing pending. When every event handed out has been acknowledged,
// nothing the publication captures lies before that position, so it is
// safe to confirm: the slot then advances past WAL of other tables, and a
// server shutdown (which waits for the confirmation) is not held up.
// Transactions still open at that position commit later and are not
// skipped: confirmation only skips commits before it.
func (st *streamer) idle(walEnd pglogrepl.LSN) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.hasLast && st.acked.Compare(st.last) < 0 {
		return
	}
	st.confirm = max(st.confirm, walEnd)
}

func (st *streamer) run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		began := time.Now()
		err := st.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if engine.IsPermanent(err) {
			return err
		}
		if time.Since(began) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		st.logger.Warn("postgres source: replication interrupted, reconnecting", "source", st.source, "error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// startLSN is where START_REPLICATION begins: the transaction of the last
// event handed out (PostgreSQL moves it up to the slot's confirmed
// position if that is later).
func (st *streamer) startLSN() pglogrepl.LSN {
	if !st.hasLast {
		return 0
	}
	if st.last.Index == commitIndex {
		return pglogrepl.LSN(st.last.Offset + 1)
	}
	return pglogrepl.LSN(st.last.Offset)
}

// session runs one replication connection until it fails.
func (st *streamer) session(ctx context.Context) error {
	conn, err := connectReplication(ctx, st.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	aux, err := connect(ctx, st.dsn)
	if err != nil {
		return err
	}
	defer aux.Close(context.Background())
	if err := st.checkSlot(ctx, conn, aux); err != nil {
		return err
	}
	st.dec.conn = aux
	st.dec.inTx = false

	err = pglogrepl.StartReplication(ctx, conn, st.slot, st.startLSN(), pglogrepl.StartReplicationOptions{
		Mode:       pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names " + quoteLiteral(quoteIdentList(st.publication)), "messages 'true'"},
	})
	if err != nil {
		return st.replicationError(err)
	}
	st.mu.Lock()
	st.sent = 0 // confirm again on the new connection
	st.mu.Unlock()

	// Closing the source cancels ctx: wake the read at once rather than at
	// its deadline.
	defer context.AfterFunc(ctx, func() { conn.Conn().SetReadDeadline(time.Now()) })()

	var pending []change.Event
	var pendingBytes int
	var pendingSince time.Time
	nextStatus := time.Now().Add(statusInterval)
	deadline := time.Time{}
	for {
		if ctx.Err() != nil {
			st.finish(conn)
			return ctx.Err()
		}
		want := nextStatus
		if len(pending) > 0 && pendingSince.Add(linger).Before(want) {
			want = pendingSince.Add(linger)
		}
		if !want.Equal(deadline) {
			conn.Conn().SetReadDeadline(want)
			deadline = want
		}
		msg, err := conn.ReceiveMessage(context.Background())
		now := time.Now()
		if err != nil && !pgconn.Timeout(err) {
			return st.replicationError(err)
		}
		if err == nil {
			switch m := msg.(type) {
			case *pgproto3.CopyData:
				if len(m.Data) == 0 {
					continue
				}
				switch m.Data[0] {
				case pglogrepl.PrimaryKeepaliveMessageByteID:
					ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(m.Data[1:])
					if err != nil {
						return fmt.Errorf("replication keepalive: %w", err)
					}
					if len(pending) == 0 {
						st.idle(ka.ServerWALEnd)
					}
					if ka.ReplyRequested {
						nextStatus = now
					}
				case pglogrepl.XLogDataByteID:
					x, err := pglogrepl.ParseXLogData(m.Data[1:])
					if err != nil {
						return fmt.Errorf("replication data: %w", err)
					}
					n := len(pending)
					if pending, err = st.dec.decode(ctx, x.WALData, pending); err != nil {
						var lookup *lookupError
						if errors.As(err, &lookup) {
							return err
						}
						return engine.Permanent(fmt.Errorf("decode replication stream at %s: %w", x.WALStart, err))
					}
					pending = st.skipCommitted(pending, n)
					if len(pending) > 0 && n == 0 {
						pendingSince = now
					}
					pendingBytes += len(x.WALData)
				}
			case *pgproto3.ErrorResponse:
				return st.replicationError(pgconn.ErrorResponseToPgError(m))
			case *pgproto3.CopyDone:
				return fmt.Errorf("server ended replication")
			}
		}
		if len(pending) > 0 && (len(pending) >= maxBatch || pendingBytes >= maxBatchBytes || !now.Before(pendingSince.Add(linger))) {
			if err := st.push(ctx, conn, pending); err != nil {
				return err
			}
			pending, pendingBytes = nil, 0
			nextStatus = time.Now() // let the server know we are alive after a possibly long wait
		}
		if !time.Now().Before(nextStatus) {
			if err := st.sendStatus(conn); err != nil {
				return err
			}
			nextStatus = time.Now().Add(statusInterval)
		}
	}
}

// skipCommitted drops, from pending[from:], events at or before the last
// one handed out before a reconnect.
func (st *streamer) skipCommitted(pending []change.Event, from int) []change.Event {
	if !st.hasLast {
		return pending
	}
	kept := pending[:from]
	for _, e := range pending[from:] {
		if e.Position.Compare(st.last) > 0 {
			kept = append(kept, e)
		}
	}
	return kept
}

// push hands a batch to Read, confirming to the server while it waits so
// that a slow pipeline does not hit wal_sender_timeout.
func (st *streamer) push(ctx context.Context, conn *pgconn.PgConn, batch []change.Event) error {
	tick := time.NewTicker(statusInterval)
	defer tick.Stop()
	for {
		select {
		case st.out <- batch:
			st.mu.Lock()
			st.last, st.hasLast = batch[len(batch)-1].Position, true
			st.mu.Unlock()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			if err := st.sendStatus(conn); err != nil {
				return err
			}
		}
	}
}

// finish ends replication when the source closes. The engine closes a
// source after its last Ack, so it confirms that frontier, then ends the
// COPY and waits (two seconds at most) for the server to end it too: the
// walsender reads messages in order, so by then it has taken the
// confirmation, and a graceful stop leaves the slot where the sinks are.
// Best effort: a restart skips what is committed anyway.
func (st *streamer) finish(conn *pgconn.PgConn) {
	conn.Conn().SetReadDeadline(time.Now().Add(2 * time.Second))
	err := st.sendStatusNow(conn, true)
	if err == nil {
		_, err = pglogrepl.SendStandbyCopyDone(context.Background(), conn)
	}
	if err != nil {
		st.logger.Debug("postgres source: ending replication", "source", st.source, "error", err)
	}
}

// sendStatus confirms the acknowledged frontier. Before anything is
// acknowledged it sends 0, which PostgreSQL ignores: a slot's confirmed
// position never moves back.
func (st *streamer) sendStatus(conn *pgconn.PgConn) error {
	return st.sendStatusNow(conn, false)
}

// boundEvery is how often at most an idle confirmation past what Ack
// reported is saved to the state (and so confirmed to the server).
const boundEvery = time.Second

// sendStatusNow confirms the acknowledged frontier; a confirmation past
// it (idle) goes out once saved as the bound, at most every boundEvery
// unless force.
func (st *streamer) sendStatusNow(conn *pgconn.PgConn, force bool) error {
	st.mu.Lock()
	lsn := st.confirm
	if st.state != nil && lsn > st.ackConfirm && lsn > st.bound {
		if force || time.Since(st.boundAt) >= boundEvery {
			if err := saveBound(st.state, lsn); err == nil {
				st.bound, st.boundAt = lsn, time.Now()
			}
		}
		lsn = min(lsn, max(st.ackConfirm, st.bound))
	}
	st.sent = lsn
	st.mu.Unlock()
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), conn, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: lsn, WALFlushPosition: lsn, WALApplyPosition: lsn})
	if err != nil {
		return fmt.Errorf("send standby status: %w", err)
	}
	return nil
}

// replicationError says what went wrong with replication and how to fix
// it; conditions a reconnect cannot fix are permanent.
func (st *streamer) replicationError(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && isSlotGone(pgErr, st.slot) {
		st.mu.Lock()
		acked := st.acked
		st.mu.Unlock()
		return engine.Permanent(slotLostFromServer(context.Background(), st.dsn, st.slot, pgErr, acked))
	}
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "42704": // undefined_object: slot or publication gone
			return engine.Permanent(fmt.Errorf("replication from slot %s: %s: the slot was dropped, or the publication was dropped or is younger than the slot's position (pgoutput reads the publication as it was at each change). Recreate the slot after the publication: `sluice drop FILE`, then `sluice run FILE` for a new snapshot", st.slot, pgErr.Message))
		case "55006": // object_in_use
			return fmt.Errorf("replication slot %s is in use by another process (%s): stop the other consumer or name another slot in slot", st.slot, pgErr.Message)
		case "55000":
			return engine.Permanent(fmt.Errorf("replication from slot %s: %s", st.slot, pgErr.Message))
		}
	}
	return fmt.Errorf("replication from slot %s: %v", st.slot, redactErr(err, st.dsn))
}

// heartbeat writes a logical decoding message every interval. It travels
// through the slot as a transaction of its own, whose commit Mark the
// sinks acknowledge, so the slot advances even when the captured tables
// are quiet but the rest of the database writes WAL.
func heartbeat(ctx context.Context, dsn string, every time.Duration, logger *slog.Logger, source string) {
	t := time.NewTicker(every)
	defer t.Stop()
	// One connection for every tick, opened again after a failure (the
	// server restarted, an idle connection was cut).
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if conn == nil {
			conn, err = connect(ctx, dsn)
		}
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT pg_logical_emit_message(true, '"+heartbeatPrefix+"', now()::text)")
			if err != nil {
				conn.Close(context.Background())
				conn = nil
			}
		}
		if err != nil && ctx.Err() == nil {
			logger.Warn("postgres source: heartbeat failed", "source", source, "error", err)
		}
	}
}
