package observe

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/sources/postgres"
)

// WAL is a PostgreSQL source's replication slot as the server sees it.
type WAL struct {
	Slot string `json:"slot"`
	// Exists is false when the slot is missing (dropped, or never created).
	Exists bool `json:"exists"`
	// Active reports that a process (a running sluice) is streaming from it.
	Active     bool   `json:"active"`
	CurrentLSN string `json:"current_lsn"`
	// ConfirmedLSN is what sluice last confirmed (confirmed_flush_lsn).
	ConfirmedLSN string `json:"confirmed_lsn,omitempty"`
	// RestartLSN is the oldest WAL the slot keeps (restart_lsn).
	RestartLSN string `json:"restart_lsn,omitempty"`
	// LagBytes is CurrentLSN - ConfirmedLSN.
	LagBytes int64 `json:"lag_bytes"`
	// RetainedBytes is the WAL the server keeps for the slot:
	// CurrentLSN - RestartLSN. It grows while sluice is stopped or slow.
	RetainedBytes int64 `json:"retained_bytes"`
	// WALStatus is pg_replication_slots.wal_status: "reserved" (within
	// max_wal_size), "extended" (beyond it, kept for the slot),
	// "unreserved" (beyond max_slot_wal_keep_size: lost at the next
	// checkpoint unless the slot catches up) or "lost" (invalidated: sluice
	// cannot resume from it).
	WALStatus string `json:"wal_status,omitempty"`
	// SafeWALSize is pg_replication_slots.safe_wal_size: the WAL that can
	// still be written before the slot is invalidated. Absent (null) when
	// max_slot_wal_keep_size is -1 (no limit: the WAL may fill the disk
	// instead) or the slot is lost.
	SafeWALSize *int64 `json:"safe_wal_size"`
	// Current is CurrentLSN as a number, to subtract sinks' positions from.
	Current uint64 `json:"-"`
}

// Slot reads a PostgreSQL source's slot (the pipeline's default slot name
// when the block sets none). Errors never quote the DSN.
func Slot(ctx context.Context, pipeline string, src *dsl.PostgresSource) (WAL, error) {
	cfg := postgres.WithDefaults(src, pipeline)
	w := WAL{Slot: cfg.Slot}
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return w, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var cur, curText string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text, (pg_current_wal_lsn() - '0/0')::text").Scan(&curText, &cur); err != nil {
		return w, fmt.Errorf("reading pg_current_wal_lsn(): %w", err)
	}
	w.CurrentLSN = curText
	if _, err := fmt.Sscan(cur, &w.Current); err != nil {
		return w, fmt.Errorf("reading pg_current_wal_lsn(): %q is not a number: %w", cur, err)
	}
	var confirmed, restart *string
	var lag, retained *int64
	var walStatus *string
	err = conn.QueryRow(ctx, `SELECT active, confirmed_flush_lsn::text, restart_lsn::text,
		pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,
		pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint,
		to_jsonb(s)->>'wal_status', (to_jsonb(s)->>'safe_wal_size')::bigint -- PostgreSQL 13+
		FROM pg_replication_slots s WHERE slot_name = $1`, cfg.Slot).Scan(&w.Active, &confirmed, &restart, &lag, &retained, &walStatus, &w.SafeWALSize)
	if errors.Is(err, pgx.ErrNoRows) {
		return w, nil
	}
	if err != nil {
		return w, fmt.Errorf("reading slot %q from pg_replication_slots: %w", cfg.Slot, err)
	}
	w.Exists = true
	w.ConfirmedLSN, w.RestartLSN = deref(confirmed), deref(restart)
	w.LagBytes, w.RetainedBytes = max(deref(lag), 0), max(deref(retained), 0)
	w.WALStatus = deref(walStatus)
	return w, nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// ErrSlotActive is wrapped by DropSlot's error when a process is still
// streaming from the slot.
var ErrSlotActive = errors.New("replication slot is in use")

// DropSlot drops a PostgreSQL source's replication slot; dropped is false
// when there was none. It refuses a slot a process is streaming from.
func DropSlot(ctx context.Context, pipeline string, src *dsl.PostgresSource) (slot string, dropped bool, err error) {
	cfg := postgres.WithDefaults(src, pipeline)
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return cfg.Slot, false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var active bool
	err = conn.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", cfg.Slot).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return cfg.Slot, false, nil
	}
	if err != nil {
		return cfg.Slot, false, fmt.Errorf("reading slot %q: %w", cfg.Slot, err)
	}
	if active {
		return cfg.Slot, false, fmt.Errorf("%w: slot %q is being streamed from by another process (a sluice run?); stop it first", ErrSlotActive, cfg.Slot)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1)", cfg.Slot); err != nil {
		return cfg.Slot, false, fmt.Errorf("dropping slot %q: %w", cfg.Slot, err)
	}
	return cfg.Slot, true, nil
}

// DropPublication drops a PostgreSQL source's publication; dropped is
// false when there was none.
func DropPublication(ctx context.Context, pipeline string, src *dsl.PostgresSource) (publication string, dropped bool, err error) {
	cfg := postgres.WithDefaults(src, pipeline)
	conn, err := connect(ctx, cfg.DSN)
	if err != nil {
		return cfg.Publication, false, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", cfg.Publication).Scan(&exists); err != nil {
		return cfg.Publication, false, fmt.Errorf("reading publication %q: %w", cfg.Publication, err)
	}
	if !exists {
		return cfg.Publication, false, nil
	}
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{cfg.Publication}.Sanitize()); err != nil {
		return cfg.Publication, false, fmt.Errorf("dropping publication %q: %w", cfg.Publication, err)
	}
	return cfg.Publication, true, nil
}

// connect opens a plain connection. Its errors name the host, user and
// database (pgconn's own wording), never the password.
func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		var pe *pgconn.ConnectError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("connecting to PostgreSQL: %w", err)
		}
		return nil, errors.New("connecting to PostgreSQL: the dsn is not a valid PostgreSQL URL or keyword/value string")
	}
	return conn, nil
}

// ErrSlotLost is wrapped by CheckSlots' error.
var ErrSlotLost = errors.New("replication slot lost")

// CheckSlots refuses to start a pipeline whose state file (st) says sinks
// committed changes of a PostgreSQL source whose replication slot no
// longer exists: the slot was dropped behind sluice's back and the
// changes since are gone from the server, so running would silently skip
// them. Servers that cannot be reached are not judged here (the source
// reports them when it opens).
func CheckSlots(ctx context.Context, cfg *dsl.Config, st state.Status) error {
	for _, s := range cfg.Sources {
		if s.Type != "postgres" || s.Postgres == nil || s.Postgres.OnSlotLost == postgres.OnSlotLostResnapshot {
			continue // resnapshot: the source recreates the slot and copies again
		}
		committed := st.Sources[s.Name].Acked
		for _, sink := range st.Sinks {
			for stream, p := range sink.Checkpoint {
				if stream.Source == s.Name && (committed == nil || committed[stream].Compare(p) < 0) {
					committed = change.Checkpoint{stream: p}
				}
			}
		}
		if len(committed) == 0 {
			continue
		}
		w, err := Slot(ctx, cfg.Pipeline.Name, s.Postgres)
		if err != nil || w.Exists {
			continue
		}
		return fmt.Errorf("source %q: %w: slot %q does not exist, but the state file %s says sinks committed changes read through it (%v); it was dropped behind sluice's back, and the changes since are gone from the server. To start over with a new snapshot run `sluice drop FILE` and then `sluice run FILE` again (targets are kept), or set on_slot_lost = \"resnapshot\" on the source to have sluice recreate the slot and copy the tables again by itself",
			s.Name, ErrSlotLost, w.Slot, st.Path, committed)
	}
	return nil
}
