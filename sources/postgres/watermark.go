package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// recentXids is how many of the last transactions decoded the decoder
// remembers, for raced.
const recentXids = 256

// window is one chunk's watermark window as the stream sees it: the keys
// of its table that streamed changes touched between the low watermark
// and the high one. Their chunk rows are dropped: the stream carries
// them, newer than the read.
type window struct {
	nonce     string
	table     string
	seen      map[string]struct{}
	truncated bool
	// recent is the transactions decoded just before the low watermark
	// (see raced); version the table's relation version then (0: none).
	recent  []uint32
	version uint32
}

// resyncDecoding is the decoder's part of the incremental snapshots.
type resyncDecoding struct {
	jobs    *resyncs
	slot    string
	exclude []string
	windows map[string]*window // by job key
	recent  [recentXids]uint32
	n       int // transactions recorded in recent
	// copying is set while a chunk's events are emitted: they are the
	// copy, not changes a window must see.
	copying bool
}

// committed records a decoded transaction's id.
func (r *resyncDecoding) committed(xid uint32) {
	r.recent[r.n%recentXids] = xid
	r.n++
}

// track adds the keys an event touches to the windows open on its table.
func (r *resyncDecoding) track(e *change.Event, rs *relState) {
	if len(r.windows) == 0 || r.copying {
		return
	}
	q := e.QualifiedTable()
	for _, w := range r.windows {
		if w.table != q {
			continue
		}
		if e.Op == change.Truncate {
			w.truncated = true
			continue
		}
		w.seen[rs.keyString(e.Key)] = struct{}{}
		if !e.Before.IsZero() {
			w.seen[rs.keyString(e.Before)] = struct{}{} // the old key of a key change
		}
	}
}

// keyString identifies a row by its key columns' values (as decoded:
// the snapshot and the stream decode the same text forms alike).
func (rs *relState) keyString(row change.Row) string {
	var b strings.Builder
	for _, i := range rs.key {
		fmt.Fprintf(&b, "%T\x1f%v\x1e", row.Get(rs.rel.Columns[i].Name), row.Get(rs.rel.Columns[i].Name))
	}
	return b.String()
}

// watermark handles a watermark message of this source's slot: a low one
// opens its chunk's window, a high one closes it and appends the chunk's
// rows to out, at the high watermark's place in the stream.
func (d *decoder) watermark(ctx context.Context, content []byte, out []change.Event) ([]change.Event, error) {
	r := d.resync
	var w watermark
	if err := json.Unmarshal(content, &w); err != nil || w.Slot != r.slot {
		return out, nil // another pipeline's
	}
	if w.Kind == watermarkLow {
		if win := r.windows[w.Job]; win == nil || win.nonce != w.Nonce {
			job, ok := r.jobs.job(w.Job)
			if ok {
				win := &window{nonce: w.Nonce, table: job.Table, seen: map[string]struct{}{}}
				for i := max(0, r.n-recentXids); i < r.n; i++ {
					win.recent = append(win.recent, r.recent[i%recentXids])
				}
				if rs := d.byName[job.Table]; rs != nil {
					win.version = rs.rel.Version
				}
				r.windows[w.Job] = win
			}
		}
		r.jobs.signal(w.Nonce, outcome{})
		return out, nil
	}
	out, retry, err := d.chunkEvents(ctx, w, out)
	if err != nil {
		return out, err
	}
	delete(r.windows, w.Job)
	r.jobs.signal(w.Nonce, outcome{retry: retry})
	return out, nil
}

// chunkEvents appends the events of the chunk a high watermark closes:
// the rows the worker read, but those the window saw change, when this
// process read them; read again now when it did not (a restart replays
// the stream from before the watermark, and some sink has not committed
// the chunk). A chunk read again is newer than the watermark, and the
// stream after it replays onto it, so every row ends in its latest state.
// It records the job's progress when the watermark is the job's next.
func (d *decoder) chunkEvents(ctx context.Context, w watermark, out []change.Event) ([]change.Event, string, error) {
	r := d.resync
	job, ok := r.jobs.job(w.Job)
	if !ok {
		return out, "", nil
	}
	ch := r.jobs.live(w.Nonce)
	win := r.windows[w.Job]
	switch {
	case ch != nil && ch.out != nil:
		// Decoded before, on an earlier replication connection.
	case ch != nil:
		if win == nil || win.nonce != w.Nonce {
			return out, "the low watermark's window is unknown", nil
		}
		if raced(win.recent, ch.xip) {
			return out, "a transaction that committed before the low watermark was not visible to the read", nil
		}
		if ch.rs = d.chunkRelation(ch.table, ch.sig, win); ch.rs == nil {
			return out, "the table's columns changed during the chunk", nil
		}
		ch.out = ch.rs.chunkEvents(ch, win, job)
	default:
		var err error
		if ch, err = d.reread(ctx, job, w); err != nil {
			return out, "", err
		}
		if ch != nil {
			ch.rs = d.chunkRelation(ch.table, ch.sig, nil)
			ch.out = ch.rs.chunkEvents(ch, nil, job)
		}
	}
	rows := 0
	if ch != nil {
		r.copying = true
		for _, e := range ch.out {
			var err error
			if out, err = d.emit(out, e, ch.rs); err != nil {
				r.copying = false
				return out, "", err
			}
		}
		r.copying = false
		rows = len(ch.out)
	}
	if w.Seq == job.Seq {
		err := r.jobs.update(w.Job, func(j *ResyncJob) {
			if w.Hi != nil {
				j.After = w.Hi
			}
			j.Seq++
			j.RowsDone += int64(rows)
			if w.Done {
				j.Done, j.Finished = true, time.Now().UTC()
			}
		})
		if err != nil {
			return out, "", err
		}
	}
	return out, "", nil
}

// chunkRelation returns the relation of a chunk read with table shape
// sig: the decoder's, or one described from the chunk's table when the
// catalog is ahead of the stream (an ALTER TABLE whose Relation message
// the stream has not sent yet). nil when the stream's relation changed
// within the window: the chunk was read with a shape that may already
// be gone, and is read again.
func (d *decoder) chunkRelation(t *table, sig string, win *window) *relState {
	rs := d.byName[t.qualified()]
	if rs != nil && rs.sig == sig {
		return rs
	}
	if rs != nil && win != nil && rs.rel.Version != win.version {
		return nil
	}
	next := d.seed(t)
	if rs != nil {
		next.rel.Version = rs.rel.Version + 1
	}
	return next
}

// chunkEvents turns a chunk into events of relation rs: a snapshot event
// per row and a delete per key gone, but those win saw change (win nil:
// none are dropped).
func (rs *relState) chunkEvents(ch *chunk, win *window, job ResyncJob) []change.Event {
	if win != nil && win.truncated {
		return []change.Event{}
	}
	skip := func(key change.Row) bool {
		if win == nil || len(win.seen) == 0 {
			return false
		}
		_, ok := win.seen[rs.keyString(key)]
		return ok
	}
	// The chunk was read with the relation's shape (see chunkRelation):
	// its rows share the relation's Columns, as the stream's do.
	cols := rs.row
	if !slices.Equal(allNamesOf(ch.table.Columns), cols.Names()) {
		cols = ch.table.rowColumns() // not expected: rows by their own names
	}
	out := make([]change.Event, 0, len(ch.rows)+len(ch.gone))
	for _, vals := range ch.rows {
		row := change.MakeRow(cols, vals)
		key := rs.keyOf(row)
		if skip(key) {
			continue
		}
		out = append(out, change.Event{Op: change.Snapshot, After: row, Key: key, Changed: rs.names, Relation: rs.rel, Sink: job.Sink})
	}
	for _, key := range ch.gone {
		if skip(key) {
			continue
		}
		out = append(out, change.Event{Op: change.Delete, Before: key, Key: key, Relation: rs.rel, Sink: job.Sink})
	}
	return out
}

// reread reads a chunk again for its high watermark, met while replaying
// the stream after a restart: the range the watermark names, as the
// table is now. nil when the chunk had neither rows nor keys to delete.
func (d *decoder) reread(ctx context.Context, job ResyncJob, w watermark) (*chunk, error) {
	if w.Hi == nil && !(w.Done && len(job.Absent) > 0) {
		return nil, nil
	}
	if d.conn == nil {
		return nil, fmt.Errorf("incremental snapshot of %s: no connection to read a chunk again", job.Table)
	}
	t, err := describe(ctx, d.conn, job.Table, d.resync.exclude, d.types)
	if err != nil {
		return nil, &lookupError{err}
	}
	// The rows up to the last key read, and for the job's last chunk
	// (whose keys to delete reach to the job's end) the rest of the
	// range: rows inserted there since are newer than the watermark, as
	// every row read again is.
	r := keyRange{After: w.Lo, To: w.Hi}
	if w.Lo == nil {
		r.From = job.From
	}
	if w.Done {
		r.To = job.To
	}
	ch, _, _, err := readChunk(ctx, d.conn, d.types, t, r, job.Where, 0, job.Absent)
	if err != nil {
		return nil, &lookupError{fmt.Errorf("incremental snapshot of %s: read a chunk again: %w", job.Table, err)}
	}
	return ch, nil
}

// raced reports whether a transaction that the stream decoded before the
// low watermark was still in progress for the chunk's read. PostgreSQL
// writes a commit record before it makes the transaction visible, so in
// a narrow window a transaction can commit before the low watermark yet
// be invisible to a read that starts after it: its change is not in the
// chunk, and not in the window either, and the chunk's older row would
// overwrite it. Such a chunk is read again.
func raced(recent []uint32, xip map[uint32]bool) bool {
	if len(xip) == 0 {
		return false
	}
	for _, x := range recent {
		if xip[x] {
			return true
		}
	}
	return false
}
