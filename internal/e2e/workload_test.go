package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
)

// itemsDDL is the source table of the chaos test: every type family the
// sinks map (integers, text with awkward characters, exact decimals,
// booleans, timestamps) and NULLs in every non-key column.
const itemsDDL = `CREATE TABLE items (
	id     bigint PRIMARY KEY,
	grp    integer NOT NULL,
	name   text,
	amount numeric(12,2),
	flag   boolean,
	ts     timestamptz
)`

// itemsColumns is how the chaos test compares items on both sides.
var itemsColumns = []column{{"id", kInt}, {"grp", kInt}, {"name", kText}, {"amount", kDecimal}, {"flag", kBool}, {"ts", kTime}}

// workload is the single writer of the chaos test. It keeps the set of
// live keys so that updates and deletes hit existing rows, and counts
// every row change it made, by kind, from the rows each statement
// affected.
type workload struct {
	db   *sql.DB
	rng  *rand.Rand
	live []int64       // keys that exist
	at   map[int64]int // key → index in live
	next int64         // next unused key

	inserts, updates, deletes int64
	txs                       int
	pkUpdates                 int64
	lastLSN                   uint64       // WAL insert position inside the last transaction, before its commit
	committed                 atomic.Int64 // changes() after the last commit, for other goroutines
}

func newWorkload(db *sql.DB, seed uint64) *workload {
	return &workload{db: db, rng: rand.New(rand.NewPCG(seed, 7)), at: map[int64]int{}, next: 1}
}

// changes is the number of row changes the source has made.
func (w *workload) changes() int64 { return w.inserts + w.updates + w.deletes }

// changesNow is changes() as of the last commit; safe from any goroutine.
func (w *workload) changesNow() int64 { return w.committed.Load() }

func (w *workload) add(id int64) {
	w.at[id] = len(w.live)
	w.live = append(w.live, id)
}

func (w *workload) remove(id int64) {
	i := w.at[id]
	last := w.live[len(w.live)-1]
	w.live[i] = last
	w.at[last] = i
	w.live = w.live[:len(w.live)-1]
	delete(w.at, id)
}

// pick returns up to n distinct live keys.
func (w *workload) pick(n int) []int64 {
	seen := map[int64]bool{}
	var out []int64
	for i := 0; i < n*2 && len(out) < n && len(w.live) > 0; i++ {
		id := w.live[w.rng.IntN(len(w.live))]
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

var awkward = []string{"O'Brien", `back\slash`, `"quoted"`, "üñíçødé ✓", "tab\there", "semi;colon", "", "line\nbreak"}

// values returns one row's non-key values, sometimes NULL.
func (w *workload) values() (grp int, name, amount, flag, ts any) {
	grp = w.rng.IntN(10)
	if w.rng.IntN(10) > 0 {
		name = fmt.Sprintf("%s %d", awkward[w.rng.IntN(len(awkward))], w.rng.IntN(1_000_000))
	}
	if w.rng.IntN(10) > 0 {
		amount = fmt.Sprintf("%d.%02d", w.rng.IntN(10_000_000)-5_000_000, w.rng.IntN(100))
	}
	if w.rng.IntN(10) > 0 {
		flag = w.rng.IntN(2) == 0
	}
	if w.rng.IntN(10) > 0 {
		ts = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(w.rng.Int64N(1e15)) * time.Microsecond)
	}
	return
}

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (w *workload) insert(ctx context.Context, tx *sql.Tx, n int) error {
	var b strings.Builder
	b.WriteString("INSERT INTO items (id, grp, name, amount, flag, ts) VALUES ")
	args := make([]any, 0, n*6)
	ids := make([]int64, 0, n)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		k := len(args)
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6)
		grp, name, amount, flag, ts := w.values()
		id := w.next
		w.next++
		ids = append(ids, id)
		args = append(args, id, grp, name, amount, flag, ts)
	}
	n64, err := affected(tx.ExecContext(ctx, b.String(), args...))
	if err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	w.inserts += n64
	for _, id := range ids {
		w.add(id)
	}
	return nil
}

func (w *workload) update(ctx context.Context, tx *sql.Tx, n int) error {
	ids := w.pick(n)
	if len(ids) == 0 {
		return nil
	}
	_, name, amount, flag, ts := w.values()
	n64, err := affected(tx.ExecContext(ctx, `UPDATE items SET grp = grp + 1, name = $1, amount = $2, flag = $3, ts = $4 WHERE id = ANY($5)`,
		name, amount, flag, ts, ids))
	if err != nil {
		return fmt.Errorf("update: %w", err)
	}
	w.updates += n64
	return nil
}

func (w *workload) delete(ctx context.Context, tx *sql.Tx, n int) error {
	ids := w.pick(n)
	if len(ids) == 0 {
		return nil
	}
	n64, err := affected(tx.ExecContext(ctx, `DELETE FROM items WHERE id = ANY($1)`, ids))
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	w.deletes += n64
	for _, id := range ids {
		w.remove(id)
	}
	return nil
}

// movePK gives n rows new primary keys: a delete of the old key and an
// insert of the new one for keyed targets, one update at the source.
func (w *workload) movePK(ctx context.Context, tx *sql.Tx, n int) error {
	for _, id := range w.pick(n) {
		to := w.next
		w.next++
		n64, err := affected(tx.ExecContext(ctx, `UPDATE items SET id = $1, name = coalesce(name, '') || ' moved' WHERE id = $2`, to, id))
		if err != nil {
			return fmt.Errorf("primary-key update: %w", err)
		}
		w.updates += n64
		w.pkUpdates += n64
		w.remove(id)
		w.add(to)
	}
	return nil
}

// big inserts n rows in one transaction, by one statement so the writer
// stays fast; the source still decodes n row changes.
func (w *workload) big(ctx context.Context, n int) error {
	from := w.next
	w.next += int64(n)
	return w.tx(ctx, func(tx *sql.Tx) error {
		n64, err := affected(tx.ExecContext(ctx, `INSERT INTO items (id, grp, name, amount, flag, ts)
			SELECT g, g % 10, 'big ' || g, (g % 100000) / 100.0, g % 2 = 0, timestamptz '2026-01-01 00:00:00+00' + g * interval '1 microsecond'
			FROM generate_series($1::bigint, $2::bigint) g`, from, from+int64(n)-1))
		if err != nil {
			return fmt.Errorf("big transaction: %w", err)
		}
		w.inserts += n64
		for id := from; id < from+int64(n); id++ {
			w.add(id)
		}
		return nil
	})
}

// tx runs body in one source transaction and records the WAL insert
// position just before the commit: the commit record, and so the
// position a sink checkpoints for this transaction, comes after it.
func (w *workload) tx(ctx context.Context, body func(*sql.Tx) error) error {
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := body(tx); err != nil {
		tx.Rollback()
		return err
	}
	var lsn string
	if err := tx.QueryRowContext(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		tx.Rollback()
		return err
	}
	l, err := pglogrepl.ParseLSN(lsn)
	if err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	w.lastLSN = uint64(l)
	w.txs++
	w.committed.Store(w.changes())
	return nil
}

// step runs one random small transaction: inserts, updates, deletes,
// primary-key updates or a mix of them.
func (w *workload) step(ctx context.Context) error {
	return w.tx(ctx, func(tx *sql.Tx) error {
		switch r := w.rng.IntN(100); {
		case r < 35 || len(w.live) < 50:
			return w.insert(ctx, tx, 1+w.rng.IntN(20))
		case r < 65:
			return w.update(ctx, tx, 1+w.rng.IntN(10))
		case r < 75:
			return w.delete(ctx, tx, 1+w.rng.IntN(5))
		case r < 85:
			return w.movePK(ctx, tx, 1+w.rng.IntN(3))
		default:
			for _, f := range []func() error{
				func() error { return w.insert(ctx, tx, 3) },
				func() error { return w.update(ctx, tx, 2) },
				func() error { return w.movePK(ctx, tx, 1) },
				func() error { return w.delete(ctx, tx, 1) },
				func() error { return w.update(ctx, tx, 3) },
			} {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		}
	})
}

// run makes at least small row changes in small transactions, paced to
// take about d, with one transaction of bigRows inserted rows once 40% of
// them are done; bigDone is closed after that transaction commits.
func (w *workload) run(ctx context.Context, small int64, bigRows int, d time.Duration, bigDone chan<- struct{}) error {
	start := time.Now()
	bigAt := small * 4 / 10
	bigged := false
	var made int64
	for made < small {
		before := w.changes()
		if err := w.step(ctx); err != nil {
			return err
		}
		made += w.changes() - before
		if !bigged && made >= bigAt {
			if err := w.big(ctx, bigRows); err != nil {
				return err
			}
			bigged = true
			close(bigDone)
		}
		if ahead := time.Duration(float64(d)*float64(made)/float64(small)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return nil
}
