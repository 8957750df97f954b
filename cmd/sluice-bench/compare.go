package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"golang.org/x/sync/errgroup"
)

// With -compare, each phase's sluice figure is set against limit loops
// run in the same invocation on the same databases, with no sluice
// code:
//
//   - the source's: reading the preloaded rows with one SELECT
//     (snapshot), and receiving and parsing the streaming phase's WAL
//     from a slot of its own to a discard (streaming), as
//     sources/postgres BenchmarkStream's bare loop does;
//   - the target's: the same rows and changes written into a copy of
//     the target table (bench_users_bare) by the fastest plain loop
//     database/sql allows: into MariaDB a multi-row INSERT ... ON
//     DUPLICATE KEY UPDATE of -batch-size rows, deletes as DELETE ...
//     WHERE id IN (...); into PostgreSQL INSERT ... SELECT FROM
//     unnest(one array per column) ON CONFLICT DO UPDATE and DELETE ...
//     WHERE id = ANY($1), which beat a VALUES list there; each
//     statement prepared once and committed alone.
//
// Source, target and sluice share the machine's cores, so a pipeline's
// limit is the sum of its per-event costs, 1/(1/source + 1/target); the
// minimum of the two is the limit were each on cores of its own. Both
// are printed, with sluice's figure as a fraction of each.

// bareSlot is the slot the streaming phase's source limit reads.
const bareSlot = "sluice_bench_bare"

// limits are one phase's limit loop rates, in rows or events per second.
type limits struct{ source, target float64 }

// sum is the limit where source, target and pipeline share the cores.
func (l limits) sum() float64 { return 1 / (1/l.source + 1/l.target) }

// min is the limit where each has cores of its own.
func (l limits) min() float64 { return math.Min(l.source, l.target) }

// bareRead reads every row of bench_users in one REPEATABLE READ
// transaction, decoding the values, and returns rows/s.
func (s *source) bareRead(ctx context.Context, want int) (float64, error) {
	start := time.Now()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"); err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, "SELECT id, name, email, score, active, created_at FROM bench_users")
	if err != nil {
		return 0, err
	}
	n := 0
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			rows.Close()
			return 0, err
		}
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if n != want {
		return 0, fmt.Errorf("bare read: %d rows, want %d", n, want)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// createBareSlot makes the slot bareDecode reads, before the streaming
// phase's changes.
func (s *source) createBareSlot(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", bareSlot)
	return err
}

// dropBareSlot drops bareSlot once its walsender has gone.
func (s *source) dropBareSlot(ctx context.Context) error {
	var err error
	for i := 0; i < 50; i++ {
		if _, err = s.pool.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", bareSlot); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// bareDecode receives and parses the pgoutput messages of bareSlot until
// it has seen want row changes, and returns events/s.
func bareDecode(ctx context.Context, dsn string, want int) (float64, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return 0, err
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	start := time.Now()
	err = pglogrepl.StartReplication(ctx, conn, bareSlot, 0, pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{"proto_version '1'", "publication_names 'sluice_bench'"}})
	if err != nil {
		return 0, err
	}
	n := 0
	for n < want {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			return 0, fmt.Errorf("bare decode after %d of %d changes: %w", n, want, err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || len(cd.Data) == 0 || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		x, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			return 0, err
		}
		m, err := pglogrepl.Parse(x.WALData)
		if err != nil {
			return 0, err
		}
		switch m.(type) {
		case *pglogrepl.InsertMessage, *pglogrepl.UpdateMessage, *pglogrepl.DeleteMessage:
			n++
		}
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// bareTarget writes bench_users_bare with plain database/sql.
type bareTarget struct {
	db      *sql.DB
	mysql   bool
	batch   int
	prepped map[string]*sql.Stmt
}

func newBareTarget(ctx context.Context, t target, kind string, batch int) (*bareTarget, error) {
	db := t.(*sqlTarget).db
	b := &bareTarget{db: db, mysql: kind == "mysql", batch: max(1, min(batch, 65535/6)), prepped: map[string]*sql.Stmt{}}
	// A copy of the table sluice created: the same types and key.
	like := "CREATE TABLE bench_users_bare (LIKE bench_users INCLUDING ALL)"
	if b.mysql {
		like = "CREATE TABLE bench_users_bare LIKE bench_users"
	}
	for _, q := range []string{"DROP TABLE IF EXISTS bench_users_bare", like} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("bare target: %s: %w", q, err)
		}
	}
	return b, nil
}

func (b *bareTarget) close() {
	b.closeStatements()
	b.db.ExecContext(context.Background(), "DROP TABLE IF EXISTS bench_users_bare")
}

// empty deletes every row of bench_users_bare.
func (b *bareTarget) empty(ctx context.Context) error {
	if _, err := b.db.ExecContext(ctx, "TRUNCATE TABLE bench_users_bare"); err != nil {
		return fmt.Errorf("bare target: %w", err)
	}
	return nil
}

func (b *bareTarget) closeStatements() {
	for _, st := range b.prepped {
		st.Close()
	}
}

// stmt is the statement for rows rows (an upsert) or, with del, the
// delete of rows ids; prepared once.
func (b *bareTarget) stmt(ctx context.Context, rows int, del bool) (*sql.Stmt, error) {
	if !b.mysql {
		rows = 0 // arrays: one statement for every size
	}
	key := fmt.Sprint(rows, del)
	if st, ok := b.prepped[key]; ok {
		return st, nil
	}
	ph := func(i int) string {
		if b.mysql {
			return "?"
		}
		return fmt.Sprintf("$%d", i)
	}
	var q strings.Builder
	n := 0
	switch {
	case !b.mysql && del:
		q.WriteString("DELETE FROM bench_users_bare WHERE id = ANY($1::bigint[])")
	case !b.mysql:
		q.WriteString("INSERT INTO bench_users_bare (id, name, email, score, active, created_at) SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]::numeric[], $5::boolean[], $6::timestamptz[])" +
			" ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, score = EXCLUDED.score, active = EXCLUDED.active, created_at = EXCLUDED.created_at")
	case del:
		q.WriteString("DELETE FROM bench_users_bare WHERE id IN (")
		for r := 0; r < rows; r++ {
			if r > 0 {
				q.WriteString(", ")
			}
			n++
			q.WriteString(ph(n))
		}
		q.WriteString(")")
	default:
		q.WriteString("INSERT INTO bench_users_bare (id, name, email, score, active, created_at) VALUES ")
		for r := 0; r < rows; r++ {
			if r > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(")
			for c := 0; c < 6; c++ {
				if c > 0 {
					q.WriteString(", ")
				}
				n++
				q.WriteString(ph(n))
			}
			q.WriteString(")")
		}
		q.WriteString(" ON DUPLICATE KEY UPDATE name = VALUES(name), email = VALUES(email), score = VALUES(score), active = VALUES(active), created_at = VALUES(created_at)")
	}
	st, err := b.db.PrepareContext(ctx, q.String())
	if err != nil {
		return nil, err
	}
	b.prepped[key] = st
	return st, nil
}

// change is one row change of the limit loop: an upsert of row, or
// with row nil a delete of id.
type bareChange struct {
	id  int64
	row []any
}

// apply writes changes in transactions of one statement of up to batch
// rows (a run of upserts or of deletes) and returns changes/s.
func (b *bareTarget) apply(ctx context.Context, changes []bareChange) (float64, error) {
	start := time.Now()
	args := make([]any, 0, b.batch*6)
	for i := 0; i < len(changes); {
		del := changes[i].row == nil
		j := i
		args = args[:0]
		for j < len(changes) && j-i < b.batch && (changes[j].row == nil) == del {
			if del {
				args = append(args, changes[j].id)
			} else {
				args = append(args, changes[j].row...)
			}
			j++
		}
		st, err := b.stmt(ctx, j-i, del)
		if err != nil {
			return 0, err
		}
		if !b.mysql {
			args = columns(args, del)
		}
		tx, err := b.db.BeginTx(ctx, nil)
		if err != nil {
			return 0, err
		}
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
			tx.Rollback()
			return 0, fmt.Errorf("bare target: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, err
		}
		i = j
	}
	return float64(len(changes)) / time.Since(start).Seconds(), nil
}

// applyParallel writes changes as apply does, cut into conns contiguous
// parts (disjoint key ranges, as a parallel snapshot's readers copy)
// written at once on connections of their own, and returns changes/s.
func (b *bareTarget) applyParallel(ctx context.Context, changes []bareChange, conns int) (float64, error) {
	start := time.Now()
	var g errgroup.Group
	per := (len(changes) + conns - 1) / conns
	for i := 0; i < len(changes); i += per {
		part := changes[i:min(i+per, len(changes))]
		own := &bareTarget{db: b.db, mysql: b.mysql, batch: b.batch, prepped: map[string]*sql.Stmt{}}
		g.Go(func() error {
			defer own.closeStatements()
			_, err := own.apply(ctx, part)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	return float64(len(changes)) / time.Since(start).Seconds(), nil
}

// columns turns row-by-row arguments into one array per column
// (PostgreSQL's unnest), or the deleted ids into one.
func columns(args []any, del bool) []any {
	if del {
		ids := make([]int64, len(args))
		for i, v := range args {
			ids[i] = v.(int64)
		}
		return []any{ids}
	}
	n := len(args) / 6
	ids, names, emails, scores := make([]int64, n), make([]string, n), make([]*string, n), make([]string, n)
	active, created := make([]bool, n), make([]time.Time, n)
	for r := 0; r < n; r++ {
		row := args[r*6 : r*6+6]
		ids[r], names[r], scores[r], active[r], created[r] = row[0].(int64), row[1].(string), row[3].(string), row[4].(bool), row[5].(time.Time)
		if e, ok := row[2].(string); ok {
			emails[r] = &e
		}
	}
	return []any{ids, names, emails, scores, active, created}
}

// equal checks that bench_users_bare holds what bench_users does.
func (b *bareTarget) equal(ctx context.Context) error {
	var got, want string
	if err := b.db.QueryRowContext(ctx, strings.Replace(aggSQL, "bench_users", "bench_users_bare", 1)).Scan(&got); err != nil {
		return err
	}
	if err := b.db.QueryRowContext(ctx, aggSQL).Scan(&want); err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the limit loop's table differs from sluice's: count/sum(id)/sum(score) %s, sluice's %s", got, want)
	}
	return nil
}

// result is one run's figures.
type result struct {
	snapshot, streaming float64 // sluice's rows/s and events/s
	snapLimits          limits
	streamLimits        limits
	// snapParallel is the snapshot's target limit on as many connections
	// as the pipeline's snapshot readers (and lanes) use.
	snapParallel float64
}

// printLimits prints one phase's limits and sluice's fraction of them.
func printLimits(out io.Writer, unit string, got float64, l limits, src, tgt string) {
	fmt.Fprintf(out, "           limits: %s %.0f %s, %s %.0f %s; shared cores 1/(1/s+1/t) %.0f (sluice %.2f of it), min %.0f (sluice %.2f)\n",
		src, l.source, unit, tgt, l.target, unit, l.sum(), got/l.sum(), l.min(), got/l.min())
}

// summarize prints the median and range of each figure over runs.
func summarize(out io.Writer, runs []result) {
	fmt.Fprintf(out, "\nsummary of %d runs: median [min, max]\n", len(runs))
	line := func(name string, f func(r result) float64, format string) {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		med := v[len(v)/2]
		if len(v)%2 == 0 {
			med = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		fmt.Fprintf(out, "  %-42s "+format+" ["+format+", "+format+"]\n", name, med, v[0], v[len(v)-1])
	}
	line("snapshot sluice rows/s", func(r result) float64 { return r.snapshot }, "%.0f")
	if runs[0].snapLimits.source > 0 {
		line("snapshot bare read rows/s", func(r result) float64 { return r.snapLimits.source }, "%.0f")
		line("snapshot bare upsert rows/s", func(r result) float64 { return r.snapLimits.target }, "%.0f")
		line("snapshot bare upsert, parallel, rows/s", func(r result) float64 { return r.snapParallel }, "%.0f")
		line("snapshot sluice / bare upsert", func(r result) float64 { return r.snapshot / r.snapLimits.target }, "%.2f")
		line("snapshot sluice / parallel bare upsert", func(r result) float64 { return r.snapshot / r.snapParallel }, "%.2f")
		line("snapshot sluice / shared-cores limit", func(r result) float64 { return r.snapshot / r.snapLimits.sum() }, "%.2f")
		line("snapshot sluice / min limit", func(r result) float64 { return r.snapshot / r.snapLimits.min() }, "%.2f")
	}
	line("streaming sluice events/s", func(r result) float64 { return r.streaming }, "%.0f")
	if runs[0].streamLimits.source > 0 {
		line("streaming bare decode events/s", func(r result) float64 { return r.streamLimits.source }, "%.0f")
		line("streaming bare upsert events/s", func(r result) float64 { return r.streamLimits.target }, "%.0f")
		line("streaming sluice / shared-cores limit", func(r result) float64 { return r.streaming / r.streamLimits.sum() }, "%.2f")
		line("streaming sluice / min limit", func(r result) float64 { return r.streaming / r.streamLimits.min() }, "%.2f")
	}
}
