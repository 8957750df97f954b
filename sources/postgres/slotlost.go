package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// State keys of the slot's identity: the server's system identifier, and
// the highest LSN this source confirmed (or a slot it created started
// at) beyond what its sinks acknowledged.
const (
	systemKey = "system"
	boundKey  = "slot.bound"
)

// Values of on_slot_lost.
const (
	OnSlotLostFail       = "fail"
	OnSlotLostResnapshot = "resnapshot"
)

// ErrSlotLost is wrapped by the error of a source whose replication slot
// can no longer serve the changes after what its sinks committed: dropped,
// invalidated, recreated at a later position, or on another server.
var ErrSlotLost = errors.New("replication slot lost")

// SlotLost says how a replication slot went away. Its Error names the
// slot, the cause, the range of positions that can no longer be read and
// the command that recovers; it wraps ErrSlotLost and
// engine.ErrPositionLost.
type SlotLost struct {
	Slot string
	// Cause is what happened, from pg_replication_slots.
	Cause string
	// Detail is PostgreSQL's own message, when it sent one.
	Detail string
	// From is the last position the sinks committed (zero: none known);
	// To where the slot or the server is now. Changes in between are gone.
	From, To pglogrepl.LSN
}

func (e *SlotLost) Error() string {
	msg := fmt.Sprintf("replication slot %s %s", e.Slot, e.Cause)
	if e.Detail != "" {
		msg += " (PostgreSQL: " + e.Detail + ")"
	}
	switch {
	case e.From != 0 && e.To > e.From:
		msg += fmt.Sprintf("; the changes from %s (what the sinks committed) to %s can no longer be read", e.From, e.To)
	case e.From != 0:
		msg += fmt.Sprintf("; the changes after %s (what the sinks committed) can no longer be read", e.From)
	}
	return msg + ". To start over with a new snapshot, run `sluice drop FILE` and then `sluice run FILE`; or set on_slot_lost = \"resnapshot\" on the source, and sluice recreates the slot and copies the tables again by itself"
}

func (e *SlotLost) Unwrap() []error { return []error{ErrSlotLost, engine.ErrPositionLost} }

// ackLSN is the LSN that acknowledging p confirms (see streamer.ack).
func ackLSN(p change.Position) pglogrepl.LSN {
	if p.Index == commitIndex {
		return pglogrepl.LSN(p.Offset + 1)
	}
	return pglogrepl.LSN(p.Offset)
}

// lostAtOpen reports why the slot cannot serve what follows pos (the
// sinks' committed position in the stream, if hasPos), or nil when it
// can. system is the server's system identifier.
func (p *Postgres) lostAtOpen(slot slotInfo, pos change.Position, hasPos bool, system string) (*SlotLost, error) {
	var from pglogrepl.LSN
	if hasPos {
		from = ackLSN(pos)
	}
	remembered, err := p.st.Get(systemKey)
	if err != nil {
		return nil, err
	}
	switch {
	case len(remembered) > 0 && string(remembered) != system && (hasPos || slot.Exists):
		return &SlotLost{Slot: p.cfg.Slot, From: from, To: slot.ServerLSN,
			Cause: fmt.Sprintf("is on another server: this PostgreSQL has system identifier %s, and this pipeline streamed from %s (restored from a backup, or failed over to a replica): the positions the sinks committed do not exist on it", system, remembered)}, nil
	case !hasPos:
		return nil, nil // nothing committed: nothing lost
	case !slot.Exists:
		return &SlotLost{Slot: p.cfg.Slot, From: from, To: slot.ServerLSN,
			Cause: "does not exist: it was dropped (pg_drop_replication_slot), or lost with its server, although the sinks committed changes read through it"}, nil
	case slot.WALStatus == "lost":
		return &SlotLost{Slot: p.cfg.Slot, From: from, To: slot.ServerLSN,
			Cause: "was invalidated: pg_replication_slots.wal_status = lost, the WAL it needed was removed because the slot fell more than max_slot_wal_keep_size behind"}, nil
	}
	// A state from before the bound was kept has none: the slot may have
	// been confirmed past the sinks while idle, so it is not judged.
	b, err := p.st.Get(boundKey)
	if err != nil || len(b) == 0 {
		return nil, err
	}
	bound := from
	if n, err := strconv.ParseUint(string(b), 10, 64); err == nil {
		bound = max(bound, pglogrepl.LSN(n))
	}
	if slot.Confirmed > bound {
		return &SlotLost{Slot: p.cfg.Slot, From: from, To: slot.Confirmed,
			Cause: fmt.Sprintf("was recreated behind sluice's back: its confirmed_flush_lsn %s is beyond anything this pipeline confirmed (%s)", slot.Confirmed, bound)}, nil
	}
	return nil, nil
}

// saveBound records that the slot may be confirmed up to lsn although no
// sink acknowledged it (a slot created or moved there, or an idle
// confirmation): lostAtOpen does not mistake it for a recreated slot.
func saveBound(st engine.State, lsn pglogrepl.LSN) error {
	return st.Put(boundKey, []byte(strconv.FormatUint(uint64(lsn), 10)))
}

// identify returns the server's system identifier (IDENTIFY_SYSTEM).
func identify(ctx context.Context, rconn *pgconn.PgConn) (string, error) {
	res, err := pglogrepl.IdentifySystem(ctx, rconn)
	if err != nil {
		return "", fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	return res.SystemID, nil
}

// slotLostFromServer builds the error of a slot the server refuses to
// stream from (err is its message), reading pg_replication_slots for the
// cause; nil when the slot is not lost after all.
func slotLostFromServer(ctx context.Context, dsn, slot string, pgErr *pgconn.PgError, acked change.Position) *SlotLost {
	detail := pgErr.Message
	if pgErr.Detail != "" {
		detail += ": " + pgErr.Detail
	}
	e := &SlotLost{Slot: slot, Detail: detail, Cause: "can no longer be read"}
	if acked != (change.Position{}) {
		e.From = ackLSN(acked)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	conn, err := connect(ctx, dsn)
	if err != nil {
		return e
	}
	defer conn.Close(context.Background())
	s, err := readSlot(ctx, conn, slot)
	if err != nil {
		return e
	}
	e.To = s.ServerLSN
	switch {
	case !s.Exists:
		e.Cause = "was dropped while sluice streamed from it"
	case s.WALStatus == "lost":
		e.Cause = "was invalidated: pg_replication_slots.wal_status = lost, the WAL it needed was removed because the slot fell more than max_slot_wal_keep_size behind"
	}
	return e
}

// isSlotGone reports whether a replication error says the slot's changes
// can no longer be read: it was invalidated (55000, "cannot read from
// logical replication slot", "can no longer get changes") or dropped
// (42704 naming the slot).
func isSlotGone(pgErr *pgconn.PgError, slot string) bool {
	switch pgErr.Code {
	case "55000":
		return strings.Contains(pgErr.Message, "cannot read from logical replication slot") ||
			strings.Contains(pgErr.Message, "can no longer get changes from replication slot") ||
			strings.Contains(pgErr.Detail, "invalidated")
	case "42704":
		return pgErr.Message == fmt.Sprintf("replication slot %q does not exist", slot)
	}
	return false
}

// dropSlot drops the slot if it exists, waiting (up to three seconds) for
// a walsender that just ended to release it.
func dropSlot(ctx context.Context, conn *pgx.Conn, slot string) error {
	for wait := 0; ; wait++ {
		_, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		var pgErr *pgconn.PgError
		if err == nil || !errors.As(err, &pgErr) || pgErr.Code != "55006" || wait >= 30 {
			if err != nil {
				return fmt.Errorf("drop replication slot %s: %w", slot, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// recovered logs the loss that on_slot_lost = "resnapshot" recovers from
// and counts it.
func (p *Postgres) recovered(lost *SlotLost) {
	args := []any{"source", p.name, "slot", lost.Slot, "cause", lost.Cause}
	if lost.Detail != "" {
		args = append(args, "postgres", lost.Detail)
	}
	if lost.From != 0 {
		args = append(args, "lost_from", lost.From.String())
	}
	if lost.To != 0 {
		args = append(args, "lost_to", lost.To.String())
	}
	p.logger.Warn("postgres source: replication slot lost; on_slot_lost = resnapshot: recreating it and copying every table again (changes in the lost range reach the targets through the copy; rows deleted in it stay in upsert targets)", args...)
	if p.obs != nil {
		engine.Recovered(p.obs, p.name)
	}
}

// resnapshot recovers from a slot lost while streaming: it drops the
// slot, creates it anew and copies every table again in a snapshot
// exported by the new slot, numbered at its consistent point minus one
// (past everything handed out before, so every sink takes the copy), then
// streams from the new slot. The events handed out before the loss are
// committed as usual: the copy sorts after them.
func (p *Postgres) resnapshot(ctx context.Context, lost *SlotLost) error {
	p.recovered(lost)
	conn, err := connect(ctx, p.cfg.DSN)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			conn.Close(context.Background())
		}
	}()
	if err := dropSlot(ctx, conn, p.cfg.Slot); err != nil {
		return err
	}
	rconn, err := connectReplication(ctx, p.cfg.DSN)
	if err != nil {
		return err
	}
	defer rconn.Close(context.Background()) // after the snapshot is imported
	copyTables := p.cfg.Snapshot == "initial"
	res, err := createSlot(ctx, rconn, p.cfg.Slot, copyTables)
	if err != nil {
		return err
	}
	cp, err := pglogrepl.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return fmt.Errorf("create replication slot: consistent point %q: %w", res.ConsistentPoint, err)
	}
	p.stream.mu.Lock()
	acked := p.stream.acked
	p.stream.mu.Unlock()
	if acked.Partition == "" && uint64(cp)-1 <= acked.Offset && acked != (change.Position{}) {
		return errBehind(p.cfg.Slot, cp, acked)
	}
	if err := saveBound(p.st, cp); err != nil {
		return err
	}
	p.stream.restart(cp)
	// Watermarks written before the new slot's start are never decoded:
	// the chunks they bracket are read again.
	p.resync.retryAll("the replication slot was recreated")
	if !copyTables {
		if p.cfg.Snapshot == SnapshotIncremental {
			if err := p.incrementalJobs(p.tables, nil, true); err != nil {
				return err
			}
		}
		p.start()
		return nil
	}
	prog := SnapshotProgress{Offset: uint64(cp) - 1, Tables: tableProgress(p.tables)}
	if old, ok, err := ReadProgress(p.st); err != nil {
		return err
	} else if ok && old.Offset == prog.Offset {
		prog.First = old.reservedMax() // never share an Index with an earlier copy
	}
	rels := make([]*relState, len(p.tables))
	for i, t := range p.tables {
		rels[i] = p.stream.dec.seed(t)
	}
	if err := p.startSnapshot(ctx, conn, p.tables, rels, &prog, res.SnapshotName, false, nil); err != nil {
		return err
	}
	keep = true
	p.logger.Info("postgres source: snapshot after the slot was lost", "source", p.name, "tables", len(p.tables), "offset", prog.Offset)
	return nil
}

// checkSlot runs before each START_REPLICATION: a reconnect that finds
// another server (a failover), or the slot dropped, invalidated or
// recreated beyond what this source confirmed, is a lost slot; PostgreSQL
// would otherwise start a recreated slot at its own position and skip
// what lies in between without a word.
func (st *streamer) checkSlot(ctx context.Context, rconn *pgconn.PgConn, conn *pgx.Conn) error {
	st.mu.Lock()
	acked, mine := st.acked, max(st.confirm, st.bound, st.sent)
	st.mu.Unlock()
	var from pglogrepl.LSN
	if acked != (change.Position{}) {
		from = ackLSN(acked)
	}
	if st.system != "" {
		system, err := identify(ctx, rconn)
		if err != nil {
			return err
		}
		if system != st.system {
			return engine.Permanent(&SlotLost{Slot: st.slot, From: from,
				Cause: fmt.Sprintf("is on another server: after a reconnect, PostgreSQL has system identifier %s, and this pipeline streamed from %s (failed over, or restored from a backup): the positions the sinks committed do not exist on it", system, st.system)})
		}
	}
	s, err := readSlot(ctx, conn, st.slot)
	if err != nil {
		return err
	}
	switch {
	case !s.Exists:
		return engine.Permanent(&SlotLost{Slot: st.slot, From: from, To: s.ServerLSN, Cause: "was dropped while sluice streamed from it"})
	case s.WALStatus == "lost":
		return engine.Permanent(&SlotLost{Slot: st.slot, From: from, To: s.ServerLSN,
			Cause: "was invalidated: pg_replication_slots.wal_status = lost, the WAL it needed was removed because the slot fell more than max_slot_wal_keep_size behind"})
	case s.Confirmed > mine:
		return engine.Permanent(&SlotLost{Slot: st.slot, From: from, To: s.Confirmed,
			Cause: fmt.Sprintf("was recreated behind sluice's back: its confirmed_flush_lsn %s is beyond anything this pipeline confirmed (%s)", s.Confirmed, mine)})
	}
	return nil
}

// errBehind is the error of a recovery whose new slot starts before what
// the sinks committed (another server, restored from an older backup):
// the copy would sort before what they hold, and they would skip it.
func errBehind(slot string, cp pglogrepl.LSN, committed change.Position) error {
	return engine.Permanent(&SlotLost{Slot: slot, From: ackLSN(committed),
		Cause: fmt.Sprintf("cannot be recovered by copying the tables again: the new slot starts at %s, before what the sinks committed, so they would skip the copy (a server restored from an older backup?)", cp)})
}
