package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// source is the benchmark's PostgreSQL side.
type source struct {
	pool *pgxpool.Pool
	now  time.Time // created_at of the streaming phase's inserts
}

func openSource(ctx context.Context, dsn string) (*source, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("source: %w", err)
	}
	return &source{pool: pool}, nil
}

func (s *source) close() { s.pool.Close() }

// reset drops what an earlier run left: the table, the slot and the
// publication.
func (s *source) reset(ctx context.Context) error {
	stmts := []string{
		`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name IN ('sluice_bench', '` + bareSlot + `') AND active_pid IS NOT NULL`,
		`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name IN ('sluice_bench', '` + bareSlot + `')`,
		`DROP PUBLICATION IF EXISTS sluice_bench`,
		`DROP TABLE IF EXISTS bench_users`,
		`CREATE TABLE bench_users (
			id bigint PRIMARY KEY,
			name text NOT NULL,
			email text,
			score numeric(12,2) NOT NULL,
			active boolean NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now())`,
	}
	for _, q := range stmts {
		if _, err := s.pool.Exec(ctx, q); err != nil {
			return fmt.Errorf("source: %s: %w", q, err)
		}
	}
	return nil
}

// base is the created_at of preloaded row 0.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// preloadRow is preloaded row i: id, name, email, score, active,
// created_at.
func preloadRow(i int) []any {
	return []any{int64(i), fmt.Sprintf("user %d", i), email(i), fmt.Sprintf("%d.%02d", i%10000, i%100), i%3 == 0, base.Add(time.Duration(i) * time.Microsecond)}
}

// preloadRows are the preload's rows as limit loop upserts.
func preloadRows(n int) []bareChange {
	out := make([]bareChange, n)
	for i := range out {
		out[i] = bareChange{id: int64(i + 1), row: preloadRow(i + 1)}
	}
	return out
}

// preload copies n rows (ids 1..n) into the table.
func (s *source) preload(ctx context.Context, n int) error {
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"bench_users"}, []string{"id", "name", "email", "score", "active", "created_at"},
		pgx.CopyFromFunc(func() func() ([]any, error) {
			i := 0
			return func() ([]any, error) {
				if i == n {
					return nil, nil
				}
				i++
				return preloadRow(i), nil
			}
		}()))
	if err != nil {
		return fmt.Errorf("source: preload: %w", err)
	}
	return nil
}

func email(i int) any {
	if i%10 == 0 {
		return nil
	}
	return fmt.Sprintf("user%d@example.com", i)
}

// workload performs the streaming phase's changes and returns how many
// row changes it made: inserts (ids after the preload) in transactions of
// tx, updates of even preloaded ids and deletes of odd ones, also in
// transactions of tx.
func (s *source) workload(ctx context.Context, preloaded, inserts, tx, updates, deletes int) (int, error) {
	if 2*updates > preloaded || 2*deletes > preloaded {
		return 0, fmt.Errorf("workload: -updates and -deletes must each be at most half of -rows")
	}
	run := func(n int, stmt func(i int) (string, []any)) error {
		for start := 0; start < n; start += tx {
			b := &pgx.Batch{}
			b.Queue("BEGIN")
			for i := start; i < min(n, start+tx); i++ {
				q, args := stmt(i)
				b.Queue(q, args...)
			}
			b.Queue("COMMIT")
			if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
				return err
			}
		}
		return nil
	}
	s.now = time.Now().UTC().Truncate(time.Microsecond)
	if err := run(inserts, func(i int) (string, []any) {
		return `INSERT INTO bench_users (id, name, email, score, active, created_at) VALUES ($1, $2, $3, $4, $5, $6)`, insertRow(preloaded+1+i, s.now)
	}); err != nil {
		return 0, fmt.Errorf("workload inserts: %w", err)
	}
	if err := run(updates, func(i int) (string, []any) {
		return `UPDATE bench_users SET score = score + 1, name = name || ' (updated)' WHERE id = $1`, []any{int64(2 * (i + 1))}
	}); err != nil {
		return 0, fmt.Errorf("workload updates: %w", err)
	}
	if err := run(deletes, func(i int) (string, []any) {
		return `DELETE FROM bench_users WHERE id = $1`, []any{deletedID(i)}
	}); err != nil {
		return 0, fmt.Errorf("workload deletes: %w", err)
	}
	return inserts + updates + deletes, nil
}

// insertRow is the row of the streaming phase's insert of id.
func insertRow(id int, now time.Time) []any {
	return []any{int64(id), fmt.Sprintf("new user %d", id), email(id), fmt.Sprintf("%d.5", id%1000), id%2 == 0, now}
}

// workloadChanges are the streaming phase's changes (see workload) as
// limit loop upserts and deletes: an update becomes an upsert of the
// whole row as it ends.
func workloadChanges(preloaded, inserts, updates, deletes int, now time.Time) []bareChange {
	out := make([]bareChange, 0, inserts+updates+deletes)
	for i := 0; i < inserts; i++ {
		id := preloaded + 1 + i
		out = append(out, bareChange{id: int64(id), row: insertRow(id, now)})
	}
	for i := 0; i < updates; i++ {
		id := 2 * (i + 1)
		row := preloadRow(id)
		row[1] = row[1].(string) + " (updated)"
		row[3] = fmt.Sprintf("%d.%02d", id%10000+1, id%100)
		out = append(out, bareChange{id: int64(id), row: row})
	}
	for i := 0; i < deletes; i++ {
		out = append(out, bareChange{id: deletedID(i)})
	}
	return out
}

// measureLatency inserts one row at a time at rate per second for d and
// returns, per row, the time from its commit returning to the row being
// visible in the target (polled every millisecond by primary key).
func measureLatency(ctx context.Context, src *source, tgt target, firstID, rate int, d time.Duration) ([]time.Duration, error) {
	n := int(d.Seconds() * float64(rate))
	committed := make([]time.Time, n)
	visible := make([]time.Time, n)
	pollDone := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		seen := firstID - 1
		for {
			select {
			case <-stop:
				pollDone <- nil
				return
			default:
			}
			maxID, err := tgt.maxID(ctx)
			if err != nil {
				pollDone <- err
				return
			}
			now := time.Now()
			for id := seen + 1; id <= int(maxID) && id < firstID+n; id++ {
				visible[id-firstID] = now
			}
			if int(maxID) > seen {
				seen = int(maxID)
			}
			if seen >= firstID+n-1 {
				pollDone <- nil
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	jitter := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		<-tick.C
		id := firstID + i
		if _, err := src.pool.Exec(ctx, `INSERT INTO bench_users (id, name, email, score, active) VALUES ($1, $2, $3, $4, $5)`,
			int64(id), "latency probe", email(id), fmt.Sprintf("%d.00", jitter.IntN(1000)), true); err != nil {
			close(stop)
			return nil, err
		}
		committed[i] = time.Now()
	}
	deadline := time.After(2 * time.Minute)
	select {
	case err := <-pollDone:
		if err != nil {
			return nil, err
		}
	case <-deadline:
		close(stop)
		return nil, fmt.Errorf("rows inserted in the latency phase did not all reach the target within 2 minutes")
	}
	lat := make([]time.Duration, n)
	for i := range lat {
		lat[i] = max(0, visible[i].Sub(committed[i]))
	}
	return lat, nil
}

// deletedID is the row the workload's i-th delete removes.
func deletedID(i int) int64 { return int64(2*i + 1) }

// lastDeleted is the row the workload's last change removes (or, without
// deletes, a row that never exists).
func lastDeleted(deletes int) int64 {
	if deletes == 0 {
		return -1
	}
	return deletedID(deletes - 1)
}
