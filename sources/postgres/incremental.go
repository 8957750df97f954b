package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/engine/change"
)

// resyncPrefix is the logical decoding message prefix of the incremental
// snapshot's watermarks.
const resyncPrefix = "sluice_resync"

// watermark is the content of a watermark message. The low one opens a
// chunk's window, the high one closes it and carries what a replay
// needs to read the chunk again (see doc.go, Incremental snapshots).
type watermark struct {
	// Slot names the source: every slot of the database decodes every
	// message, and skips those of other slots.
	Slot  string `json:"slot"`
	Kind  string `json:"kind"` // "low" | "high"
	Job   string `json:"job"`  // ResyncJob.key
	Nonce string `json:"nonce"`
	// For the high watermark: the chunk's number in its job, its key
	// range (Lo excluded, nil: the job's From; Hi the last key read, nil:
	// none) and whether it is the job's last.
	Seq  uint32   `json:"seq,omitempty"`
	Lo   []string `json:"lo,omitempty"`
	Hi   []string `json:"hi,omitempty"`
	Done bool     `json:"done,omitempty"`
}

const (
	watermarkLow  = "low"
	watermarkHigh = "high"
)

// chunk is one chunk read between watermarks, handed by the worker to
// the decoder, which turns it into events when it decodes the high
// watermark.
type chunk struct {
	table *table
	sig   string
	// rows are the values of the rows read, of t's columns in order (see
	// rowColumns): chunkEvents makes them rows of the relation's Columns.
	rows [][]any
	// gone are keys of the job's Absent within the chunk's range that
	// the table lacked when the chunk was read: deleted in the targets.
	gone []change.Row
	// xip holds the transactions in progress when the chunk was read
	// (pg_current_snapshot): see raced.
	xip map[uint32]bool
	// out is the chunk's events as first decoded, of relation rs: a
	// replay on another replication connection of this process hands
	// out the same ones.
	out []change.Event
	rs  *relState
}

// outcome is what the decoder tells the worker about a watermark:
// retry, when non-empty, says why the chunk must be read again.
type outcome struct{ retry string }

// Incremental snapshot chunking: at most incrementalChunkRows rows or
// snapshotChunkBytes of row data per chunk. Larger than the initial
// snapshot's chunks: each costs two watermark transactions and a wait for
// the stream, and the window holds one chunk only.
const incrementalChunkRows = 8192

// copyChunks is the chunk worker: it copies the pending jobs one after
// the other, chunk by chunk, while the stream goes on, until ctx ends.
func (p *Postgres) copyChunks(ctx context.Context) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	tables := map[string]*table{} // the catalog's view of each job's table
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		job, ok := p.resync.next()
		if !ok {
			select {
			case <-ctx.Done():
			case <-p.resync.wake:
			}
			continue
		}
		var err error
		if conn == nil {
			conn, err = connect(ctx, p.cfg.DSN)
		}
		if err == nil {
			err = p.copyChunk(ctx, conn, job, tables)
		}
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			backoff = 100 * time.Millisecond
			continue
		case chunkRefused(err):
			p.logger.Error("postgres source: incremental snapshot stopped", "source", p.name, "table", job.Table, "request", job.Request, "error", err)
			if err := p.resync.update(job.key(), func(j *ResyncJob) { j.Error, j.Finished = err.Error(), time.Now().UTC() }); err != nil {
				p.logger.Warn("postgres source: incremental snapshot", "source", p.name, "error", err)
			}
			continue
		}
		p.logger.Warn("postgres source: incremental snapshot interrupted, retrying", "source", p.name, "table", job.Table, "error", redactErr(err, p.cfg.DSN), "retry_in", backoff)
		if conn != nil {
			conn.Close(context.Background())
			conn = nil
		}
		delete(tables, job.Table)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// chunkRefused reports an error no retry of the chunk can fix: the
// job's predicate or key range is refused (syntax, an unknown column, a
// value that is no key), or its table is gone.
func chunkRefused(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "42") || strings.HasPrefix(pgErr.Code, "22")
	}
	var gone *tableGoneError
	return errors.As(err, &gone)
}

type tableGoneError struct{ table string }

func (e *tableGoneError) Error() string {
	return fmt.Sprintf("table %s no longer exists (or is no longer readable)", e.table)
}

// copyChunk copies the job's next chunk: low watermark, read, high
// watermark, each step once the stream has decoded the one before.
func (p *Postgres) copyChunk(ctx context.Context, conn *pgx.Conn, job ResyncJob, tables map[string]*table) error {
	nonce := newNonce()
	low := p.resync.expect(nonce)
	defer p.resync.forget(nonce)
	if err := emitWatermark(ctx, conn, watermark{Slot: p.cfg.Slot, Kind: watermarkLow, Job: job.key(), Nonce: nonce}); err != nil {
		return err
	}
	if res, err := wait(ctx, low); err != nil || res.retry != "" {
		return err
	}
	// The stream has decoded every watermark before this one: the job's
	// progress is final.
	job, ok := p.resync.job(job.key())
	if !ok || !job.Pending() {
		return nil
	}
	t := tables[job.Table]
	if t == nil {
		var err error
		if t, err = describe(ctx, conn, job.Table, p.cfg.Exclude, p.types); err != nil {
			return err
		}
		tables[job.Table] = t
	}
	r := keyRange{After: job.After}
	if job.After == nil {
		r.From = job.From
	}
	r.To = job.To
	ch, hi, done, err := readChunk(ctx, conn, p.types, t, r, job.Where, incrementalChunkRows, job.Absent)
	if err != nil {
		return err
	}
	if err := p.throttle.Wait(ctx, len(ch.rows)); err != nil {
		return err
	}
	high := p.resync.offer(nonce, ch)
	if err := emitWatermark(ctx, conn, watermark{Slot: p.cfg.Slot, Kind: watermarkHigh, Job: job.key(), Nonce: nonce,
		Seq: job.Seq, Lo: job.After, Hi: hi, Done: done}); err != nil {
		return err
	}
	res, err := wait(ctx, high)
	if err != nil {
		return err
	}
	if res.retry != "" {
		p.logger.Debug("postgres source: incremental snapshot reads a chunk again", "source", p.name, "table", job.Table, "reason", res.retry)
		delete(tables, job.Table) // the table may have changed: describe it again
	}
	return nil
}

func wait(ctx context.Context, ch <-chan outcome) (outcome, error) {
	select {
	case o := <-ch:
		return o, nil
	case <-ctx.Done():
		return outcome{}, ctx.Err()
	}
}

func newNonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// emitWatermark writes a watermark into the WAL as a transactional
// logical decoding message: the stream decodes it in commit order, as a
// transaction of its own.
func emitWatermark(ctx context.Context, conn *pgx.Conn, w watermark) error {
	b, err := json.Marshal(w)
	if err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "SELECT pg_logical_emit_message(true, '"+resyncPrefix+"', $1::text)", string(b)); err != nil {
		return fmt.Errorf("incremental snapshot: write watermark: %w", err)
	}
	return nil
}

// describe reads one captured table from the catalog, with its types.
func describe(ctx context.Context, conn *pgx.Conn, name string, exclude []string, types *typeRegistry) (*table, error) {
	tables, findings, err := resolveTables(ctx, conn, []string{name}, exclude)
	if err != nil {
		return nil, err
	}
	if err := findingsError(findings); err != nil || len(tables) != 1 {
		return nil, &tableGoneError{name}
	}
	t := tables[0]
	oids := make([]uint32, len(t.Columns))
	for i, c := range t.Columns {
		oids[i] = c.TypeOID
	}
	if err := types.ensure(ctx, conn, oids); err != nil {
		return nil, err
	}
	return t, nil
}

// readChunk reads, in one REPEATABLE READ transaction, at most limit
// rows of t within r that where selects (0: the whole range), and the
// keys of absent within the chunk's range that t lacks. hi is the last
// key read (nil: none); done reports that the range has no rows after
// it. The transactions in progress are noted for raced.
func readChunk(ctx context.Context, conn *pgx.Conn, types *typeRegistry, t *table, r keyRange, where string, limit int, absent [][]string) (ch *chunk, hi []string, done bool, err error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, false, err
	}
	defer tx.Rollback(context.Background())
	var snap string
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snap); err != nil {
		return nil, nil, false, err
	}
	ch = &chunk{table: t, sig: t.signature(), xip: inProgress(snap)}
	sql, params := t.rangeSelect(r, where, limit)
	rr := conn.PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	size, capped := 0, false
	for rr.NextRow() {
		vals := rr.Values()
		row, n, err := t.decodeValues(types, vals, "snapshot of")
		if err != nil {
			rr.Close()
			return nil, nil, false, err
		}
		ch.rows = append(ch.rows, row)
		hi = t.keyText(vals)
		if size += n; size >= snapshotChunkBytes {
			capped = true
			break
		}
	}
	if _, err := rr.Close(); err != nil {
		return nil, nil, false, fmt.Errorf("incremental snapshot of %s: %w", t.qualified(), err)
	}
	done = !capped && (limit == 0 || len(ch.rows) < limit)
	if len(absent) > 0 {
		upper := r.To
		if !done {
			upper = hi
		}
		if ch.gone, err = missingKeys(ctx, tx, types, t, keyRange{After: r.After, From: r.From, To: upper}, absent); err != nil {
			return nil, nil, false, err
		}
	}
	return ch, hi, done, tx.Commit(ctx)
}

// missingKeys returns the keys of absent within r that t does not hold.
func missingKeys(ctx context.Context, tx pgx.Tx, types *typeRegistry, t *table, r keyRange, absent [][]string) ([]change.Row, error) {
	var params [][]byte
	var tuples []string
	for _, key := range absent {
		if len(key) == len(t.PK) {
			tuples = append(tuples, "("+t.keyParams(key, &params)+")")
		}
	}
	if len(tuples) == 0 {
		return nil, nil
	}
	sql := "SELECT " + prefixed("c", t.PK) + " FROM (VALUES " + strings.Join(tuples, ", ") + ") AS c(" + t.keyList() + ")" +
		" WHERE NOT EXISTS (SELECT 1 FROM " + t.ident() + " AS t WHERE (" + prefixed("t", t.PK) + ") = (" + prefixed("c", t.PK) + "))"
	for _, cond := range t.rangeConds(r, prefixed("c", t.PK), &params) {
		sql += " AND " + cond
	}
	// Text results: the type registry decodes text forms, as everywhere.
	rows, err := tx.Query(ctx, sql, append([]any{pgx.QueryResultFormats{pgx.TextFormatCode}}, bytesArgs(params)...)...)
	if err != nil {
		return nil, fmt.Errorf("incremental snapshot of %s: keys to delete: %w", t.qualified(), err)
	}
	defer rows.Close()
	var out []change.Row
	cols := change.NewColumns(t.PK...)
	for rows.Next() {
		raw := rows.RawValues()
		vals := make([]any, len(t.PK))
		for i, k := range t.PK {
			v, err := types.decode(t.column(k).TypeOID, raw[i])
			if err != nil {
				return nil, err
			}
			vals[i] = v
		}
		out = append(out, change.MakeRow(cols, vals))
	}
	return out, rows.Err()
}

// inProgress parses pg_current_snapshot()'s text "xmin:xmax:xip,..."
// into the in-progress transaction ids (their low 32 bits, as pgoutput
// sends them).
func inProgress(snap string) map[uint32]bool {
	parts := strings.Split(snap, ":")
	if len(parts) != 3 || parts[2] == "" {
		return nil
	}
	out := map[uint32]bool{}
	for _, x := range strings.Split(parts[2], ",") {
		if v, err := strconv.ParseUint(x, 10, 64); err == nil {
			out[uint32(v)] = true
		}
	}
	return out
}

// signature is the shape string the decoder keys relations by (see
// relState.sig), for the table as the catalog shows it.
func (t *table) signature() string {
	var sig strings.Builder
	for _, c := range t.Columns {
		fmt.Fprintf(&sig, "%s:%d:%d,", c.Name, c.TypeOID, c.TypeMod)
	}
	for _, g := range t.Generated {
		fmt.Fprintf(&sig, "|%s", g.Name)
	}
	return sig.String()
}

// rowColumns returns the Columns of t's rows: its column names in order.
func (t *table) rowColumns() *change.Columns {
	return change.NewColumns(allNamesOf(t.Columns)...)
}

// decodeRow decodes one row of t's published columns read as text, and
// returns its size in bytes.
//
// cols are the Columns of the rows, t's column names in order: the
// relation's (relState.row), shared by every row and streamed change of
// the table.
func (t *table) decodeRow(types *typeRegistry, cols *change.Columns, vals [][]byte) (change.Row, int, error) {
	out, size, err := t.decodeValues(types, vals, "snapshot of")
	if err != nil {
		return change.Row{}, 0, err
	}
	return change.MakeRow(cols, out), size, nil
}

// decodeValues decodes the values of one row of t's published columns
// read as text, in t's column order, and returns their size in bytes.
// what begins an error's message ("snapshot of").
func (t *table) decodeValues(types *typeRegistry, vals [][]byte, what string) ([]any, int, error) {
	out := make([]any, len(t.Columns))
	size := 0
	for i, c := range t.Columns {
		size += len(vals[i])
		if vals[i] == nil {
			continue
		}
		v, err := types.decode(c.TypeOID, vals[i])
		if err != nil {
			return nil, 0, fmt.Errorf("%s %s, column %s (%s): %w", what, t.qualified(), c.Name, c.TypeName, err)
		}
		out[i] = v
	}
	return out, size, nil
}
