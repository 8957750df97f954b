package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

// target is the benchmark's target database.
type target interface {
	reset(ctx context.Context) error
	aggregate(ctx context.Context) (string, error)
	maxID(ctx context.Context) (int64, error)
	has(ctx context.Context, id int64) (bool, error)
	hasEvery(ctx context.Context, step, max int64) (bool, error)
	rows(ctx context.Context) (*sql.Rows, error)
	close()
}

// sqlTarget serves both target kinds through database/sql; only the SQL
// differs.
type sqlTarget struct {
	db       *sql.DB
	pool     *pgxpool.Pool // postgres only
	rowsSQL  string
	resetSQL []string
}

// The rows of either side as comparable text, ordered by id.
const (
	pgRows    = `SELECT id::text, name, coalesce(email, '<null>'), score::text, active::int::text, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') FROM bench_users ORDER BY bench_users.id`
	mysqlRows = `SELECT CAST(id AS CHAR), name, coalesce(email, '<null>'), CAST(score AS CHAR), CAST(active + 0 AS CHAR), DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s.%f') FROM bench_users ORDER BY bench_users.id`
	aggSQL    = `SELECT CONCAT(count(*), '/', coalesce(sum(id), 0), '/', coalesce(sum(score), 0)) FROM bench_users`
)

func openTarget(kind, dsn string) (target, error) {
	t := &sqlTarget{}
	switch kind {
	case "mysql":
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			return nil, err
		}
		t.db, t.rowsSQL = db, mysqlRows
		t.resetSQL = []string{"DROP TABLE IF EXISTS bench_users", "DROP TABLE IF EXISTS sluice_checkpoints"}
	default:
		pool, err := pgxpool.New(context.Background(), dsn)
		if err != nil {
			return nil, err
		}
		t.pool, t.db, t.rowsSQL = pool, stdlib.OpenDBFromPool(pool), pgRows
		t.resetSQL = []string{"DROP TABLE IF EXISTS bench_users", "DROP TABLE IF EXISTS sluice_checkpoints"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := t.db.PingContext(ctx); err != nil {
		t.close()
		return nil, fmt.Errorf("target: %w", err)
	}
	return t, nil
}

func (t *sqlTarget) reset(ctx context.Context) error {
	for _, q := range t.resetSQL {
		if _, err := t.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("target: %s: %w", q, err)
		}
	}
	return nil
}

func (t *sqlTarget) aggregate(ctx context.Context) (string, error) {
	var s string
	err := t.db.QueryRowContext(ctx, aggSQL).Scan(&s)
	return s, err
}

func (t *sqlTarget) maxID(ctx context.Context) (int64, error) {
	var id sql.NullInt64
	err := t.db.QueryRowContext(ctx, `SELECT max(id) FROM bench_users`).Scan(&id)
	return id.Int64, err
}

// has reports whether the row id exists (a primary-key lookup).
func (t *sqlTarget) has(ctx context.Context, id int64) (bool, error) {
	var n int
	err := t.db.QueryRowContext(ctx, `SELECT count(*) FROM bench_users WHERE id = `+strconv.FormatInt(id, 10)).Scan(&n)
	return n > 0, err
}

// hasEvery reports whether the table holds every step-th id up to max
// (and max itself): key lookups, cheap enough to poll while a copy runs,
// where a count would scan the table the pipeline is writing.
func (t *sqlTarget) hasEvery(ctx context.Context, step, max int64) (bool, error) {
	var ids strings.Builder
	want := 0
	for id := step; ; id += step {
		id = min(id, max)
		if want > 0 {
			ids.WriteString(", ")
		}
		ids.WriteString(strconv.FormatInt(id, 10))
		want++
		if id == max {
			break
		}
	}
	var n int
	err := t.db.QueryRowContext(ctx, `SELECT count(*) FROM bench_users WHERE id IN (`+ids.String()+`)`).Scan(&n)
	return n == want, err
}

func (t *sqlTarget) rows(ctx context.Context) (*sql.Rows, error) {
	return t.db.QueryContext(ctx, t.rowsSQL)
}

func (t *sqlTarget) close() {
	t.db.Close()
	if t.pool != nil {
		t.pool.Close()
	}
}

// sourceAggregate is the source's count/sum(id)/sum(score).
func (s *source) aggregate(ctx context.Context) (string, error) {
	var out string
	err := s.pool.QueryRow(ctx, aggSQL).Scan(&out)
	return out, err
}

// waitEqual waits until the target holds what the source holds and
// returns how long that took. It polls done, a primary-key lookup of the
// row the phase's last change touched, every few milliseconds: cheap for
// the target, unlike the aggregate, a scan of the whole table that would
// take the target server's CPU from the pipeline it measures. The sink
// commits in source order, so once that row shows, everything before it
// does: the time is taken then, and the aggregates are compared after.
// If they differ, it polls them (slowly) until they agree and takes that
// time instead, so a done that came true early only makes the figure
// worse.
func waitEqual(ctx context.Context, src *source, tgt target, timeout time.Duration, p *running, done func(context.Context) (bool, error)) (time.Duration, error) {
	t0 := time.Now()
	want, err := src.aggregate(ctx)
	if err != nil {
		return 0, err
	}
	deadline := t0.Add(timeout)
	var probed time.Duration
	for done != nil && time.Now().Before(deadline) {
		if err := p.failed(); err != nil {
			return 0, err
		}
		if ok, err := done(ctx); err == nil && ok {
			probed = time.Since(t0)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	var got string
	for first := true; time.Now().Before(deadline); first = false {
		if err := p.failed(); err != nil {
			return 0, err
		}
		got, err = tgt.aggregate(ctx)
		if err == nil && got == want {
			if first && probed > 0 {
				return probed, nil
			}
			return time.Since(t0), nil
		}
		time.Sleep(20 * time.Millisecond) // the probe leaves a few rows at most to come
	}
	return 0, fmt.Errorf("the target did not catch up within %v: source count/sum(id)/sum(score) %s, target %s (last error %v)", timeout, want, got, err)
}

// compare reads both tables in id order and returns the first
// difference, or "" when they are equal row by row.
func compare(ctx context.Context, src *source, tgt target) (string, error) {
	srows, err := stdlib.OpenDBFromPool(src.pool).QueryContext(ctx, pgRows)
	if err != nil {
		return "", err
	}
	defer srows.Close()
	trows, err := tgt.rows(ctx)
	if err != nil {
		return "", err
	}
	defer trows.Close()
	n := 0
	for {
		sok, tok := srows.Next(), trows.Next()
		if !sok || !tok {
			if sok != tok {
				return fmt.Sprintf("after %d equal rows one side has more rows (source more: %t)", n, sok), nil
			}
			return "", errors.Join(srows.Err(), trows.Err())
		}
		var s, t [6]string
		if err := srows.Scan(&s[0], &s[1], &s[2], &s[3], &s[4], &s[5]); err != nil {
			return "", err
		}
		if err := trows.Scan(&t[0], &t[1], &t[2], &t[3], &t[4], &t[5]); err != nil {
			return "", err
		}
		if s != t {
			return fmt.Sprintf("row %d: source %q, target %q", n+1, s, t), nil
		}
		n++
	}
}
