package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// State keys of the snapshot.
const (
	progressKey    = "snapshot"
	chunkKeyPrefix = "snapshot.chunk."
)

// SnapshotProgress is the snapshot's record in the source's state: what
// `sluice status` shows (table, rows done, rows estimated), and where an
// interrupted snapshot may number its rows from.
type SnapshotProgress struct {
	// Offset is the Position.Offset of every snapshot row: the slot's
	// consistent point minus one, so that snapshot rows sort before every
	// streamed change (whose Offset is a commit LSN at or after the
	// consistent point). Position.Index numbers each reader's rows.
	Offset uint64          `json:"offset"`
	Tables []TableProgress `json:"tables"`
	// ReaderProgress is reader 0's, whose rows are in Partition itself.
	ReaderProgress
	// Readers are the other readers of a parallel snapshot: reader n
	// (from 1) has rows in change.ParallelPartition(Partition, n).
	Readers []ReaderProgress `json:"readers,omitempty"`
	// Earlier lists the tables that earlier snapshots copied, which this
	// one (of tables added to the source since) does not read.
	Earlier []string `json:"earlier,omitempty"`
	// First is the Index of each reader's first row: 0, or past the
	// reserved bounds of the snapshot before it when they share Offset.
	First uint32 `json:"first,omitempty"`
	// Partition is the Position.Partition of reader 0's rows: "" (the
	// stream's own) for the initial snapshot, AddedPartition for a copy
	// of tables added later, whose rows every sink takes whatever its
	// progress in the stream (see doc.go).
	Partition string `json:"partition,omitempty"`
}

// ReaderProgress is one reader's part of a snapshot.
type ReaderProgress struct {
	// Emitted reports that the reader has read all its rows (not that
	// sinks have committed them: a restart still resumes after the
	// committed row).
	Emitted bool `json:"emitted"`
	// Last is the Index of the reader's last row, saved with Emitted
	// (absent when it read none): sinks that committed it hold the
	// reader's whole part.
	Last *uint32 `json:"last,omitempty"`
	// Reserved bounds every Index the reader handed out so far: a
	// restarted or resumed reader numbers its rows from here, so that no
	// sink mistakes a new row for one it committed.
	Reserved uint32 `json:"reserved"`
	// Ranges are the key ranges the reader copies, in order. A record
	// written before snapshots were parallel has none for reader 0: it
	// reads every table whole, in order.
	Ranges []TableRange `json:"ranges"`
}

// TableRange is a key range of one table (Tables[Table]): the keys after
// After (nil: from the first) up to To included (nil: to the last).
type TableRange struct {
	Table int      `json:"table"`
	After []string `json:"after,omitempty"`
	To    []string `json:"to,omitempty"`
}

// AddedPartition is the Position.Partition of the rows of tables added to
// `tables` after the initial snapshot.
const AddedPartition = "added"

// reader returns reader n's progress.
func (p *SnapshotProgress) reader(n int) *ReaderProgress {
	if n == 0 {
		return &p.ReaderProgress
	}
	return &p.Readers[n-1]
}

// readers is how many readers the snapshot has.
func (p SnapshotProgress) readers() int { return 1 + len(p.Readers) }

// partition is the Position.Partition of reader n's rows.
func (p SnapshotProgress) partition(n int) string {
	if n == 0 {
		return p.Partition
	}
	return change.ParallelPartition(p.Partition, n)
}

// stream is the stream of reader n's rows.
func (p SnapshotProgress) stream(source string, n int) change.Stream {
	return change.Stream{Source: source, Partition: p.partition(n)}
}

// AllEmitted reports whether every reader has read all its rows.
func (p SnapshotProgress) AllEmitted() bool {
	for n := range p.readers() {
		if !p.reader(n).Emitted {
			return false
		}
	}
	return true
}

// reservedMax is the highest reserved bound of the readers: a later copy
// in the same partitions numbers its rows from there.
func (p SnapshotProgress) reservedMax() uint32 {
	m := uint32(0)
	for n := range p.readers() {
		m = max(m, p.reader(n).Reserved)
	}
	return m
}

// known returns the tables copied by this snapshot and the earlier ones.
func (p SnapshotProgress) known() []string {
	out := slices.Clone(p.Earlier)
	for _, t := range p.Tables {
		out = append(out, t.Table)
	}
	return out
}

// TableProgress is one table's snapshot progress.
type TableProgress struct {
	Table         string `json:"table"`
	RowsDone      int64  `json:"rows_done"`
	RowsEstimated int64  `json:"rows_estimated"`
	Done          bool   `json:"done"`
}

// chunkRecord is the state record of one chunk of a reader's rows: the
// text form of each row's key, so that a committed Index maps back to
// its range and key. Chunk n covers indexes [n*snapshotChunkRows,
// (n+1)*snapshotChunkRows) and is stored in ring slot n % chunkRing of
// its reader, so the state holds a bounded number of keys whatever the
// table size.
type chunkRecord struct {
	Chunk uint32 `json:"chunk"`
	First uint32 `json:"first"` // Index of Keys[0]
	// Range is the index of the range in the reader's Ranges (which, for
	// a record from before parallel snapshots, is the table's).
	Range int        `json:"table"`
	Keys  [][]string `json:"keys"`
}

// complete reports whether sinks that committed from hold every snapshot
// row: every reader's read is over and its last row committed.
func (p SnapshotProgress) complete(source string, from change.Checkpoint) bool {
	for n := range p.readers() {
		r := p.reader(n)
		if !r.Emitted {
			return false
		}
		if r.Last == nil {
			continue // it read no row
		}
		pos, ok := from[p.stream(source, n)]
		if !ok || pos.Offset != p.Offset || pos.Index < *r.Last {
			return false
		}
	}
	return true
}

// ReadProgress returns the snapshot progress kept in a postgres source's
// state; ok is false when no snapshot was ever started.
func ReadProgress(st engine.State) (p SnapshotProgress, ok bool, err error) {
	b, err := st.Get(progressKey)
	if err != nil || len(b) == 0 {
		return p, false, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, false, fmt.Errorf("snapshot progress in state: %w", err)
	}
	if p.Ranges == nil {
		for i := range p.Tables {
			p.Ranges = append(p.Ranges, TableRange{Table: i})
		}
	}
	return p, true, nil
}

// Snapshot chunking: a reader's chunk() returns at most one chunk (fewer
// rows when they hold more than snapshotChunkBytes), and each chunk costs
// one durable state write. A few chunks per reader are in memory at once
// (the one read, the one waiting for next, the one next holds, and the
// engine's queue): 2048 rows keep a copy's memory near half of what 8192
// did, at the same rate. The ring keeps 256 chunks' keys per reader.
// Progress for status is saved every progressChunks chunks of a reader
// and at each range's end.
const (
	snapshotChunkRows  = 2048
	snapshotChunkBytes = 8 << 20
	chunkRing          = 256
	progressChunks     = 16
)

// snapshot copies the captured tables (or those added since, or all of
// them after a lost slot) in one consistent read: its readers each hold
// a REPEATABLE READ transaction on a connection of their own, all in the
// same snapshot (reader 0 imports the slot's exported snapshot, or takes
// a fresh one when resuming, and exports it to the others), and read
// their key ranges in key order, streaming (the server sends rows as the
// reader consumes them: memory stays bounded whatever the table size).
type snapshot struct {
	source string
	state  engine.State
	types  *typeRegistry
	tables []*table
	rels   []*relState
	// mu guards prog, left, and the progress record in the state, which
	// the readers update from their goroutines.
	mu   sync.Mutex
	prog *SnapshotProgress
	// left counts, per table, its ranges not yet read to their end.
	left    []int
	readers []*snapshotReader
	out     chan readerBatch
	// held is the batch next holds back (see next).
	held   []change.Event
	ctx    context.Context // lives as long as the source: the queries outlive one Read
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once // starts the readers
}

// snapshotReader is one reader of a snapshot: its connection, its place
// in its ranges and its rows' numbering.
type snapshotReader struct {
	s         *snapshot
	n         int
	partition string    // its rows' Position.Partition
	conn      *pgx.Conn // dedicated: holds the snapshot transaction
	// the range to read, and the key (text) to read it after (nil: from
	// the range's start)
	rng   int
	after []string
	index uint32 // Index of the next row
	// last is the Index of the last row handed out (or committed, on a
	// resume), if hasLast.
	last    uint32
	hasLast bool
	cur     chunkRecord
	rr      *pgconn.ResultReader
}

// readerBatch is a reader's next chunk of rows, or its error.
type readerBatch struct {
	events []change.Event
	err    error
}

// newSnapshot returns a snapshot of tables with progress prog, its
// reader 0 on conn; begin starts its transaction and addReaders the
// others'.
func newSnapshot(ctx context.Context, source string, st engine.State, types *typeRegistry, tables []*table, rels []*relState, prog *SnapshotProgress, conn *pgx.Conn) *snapshot {
	s := &snapshot{source: source, state: st, types: types, tables: tables, rels: rels, prog: prog}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.readers = []*snapshotReader{{s: s, partition: prog.partition(0), conn: conn}}
	return s
}

// begin opens reader 0's transaction, importing an exported snapshot
// when there is one (the first attempt: exactly the slot's consistent
// point) or taking a fresh one (a resumed snapshot: see doc.go).
func (r *snapshotReader) begin(ctx context.Context, exported string) error {
	if _, err := r.conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("snapshot: begin: %w", err)
	}
	if exported != "" {
		if _, err := r.conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(exported)); err != nil {
			return fmt.Errorf("snapshot: import exported snapshot: %w", err)
		}
	}
	return nil
}

// addReaders connects readers 1 to prog.readers()-1 in reader 0's
// snapshot (pg_export_snapshot: valid while reader 0's transaction is
// open, which it is until the whole copy is read).
func (s *snapshot) addReaders(ctx context.Context, dsn string) error {
	if s.prog.readers() == 1 {
		return nil
	}
	var id string
	if err := s.readers[0].conn.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&id); err != nil {
		return fmt.Errorf("snapshot: export the snapshot to the other readers: %w", err)
	}
	for n := 1; n < s.prog.readers(); n++ {
		conn, err := connect(ctx, dsn)
		if err != nil {
			return fmt.Errorf("snapshot: reader %d: %w", n, err)
		}
		r := &snapshotReader{s: s, n: n, partition: s.prog.partition(n), conn: conn}
		s.readers = append(s.readers, r)
		if err := r.begin(ctx, id); err != nil {
			return fmt.Errorf("snapshot: reader %d: %w", n, err)
		}
	}
	return nil
}

// fresh sets every reader at the start of its ranges, numbering rows
// from First.
func (s *snapshot) fresh() {
	for _, r := range s.readers {
		r.rng, r.after, r.index = 0, nil, s.prog.First
	}
	s.countLeft()
}

// countLeft counts each table's ranges that the readers have yet to read
// to their end, and marks the others' tables done.
func (s *snapshot) countLeft() {
	s.left = make([]int, len(s.tables))
	for _, r := range s.readers {
		for _, tr := range s.prog.reader(r.n).Ranges[r.rng:] {
			s.left[tr.Table]++
		}
	}
	for i := range s.prog.Tables {
		s.prog.Tables[i].Done = s.left[i] == 0
	}
}

// unrewritten checks, before a table is read, that it was not rewritten
// since the snapshot was taken. A rewriting ALTER TABLE (a type change, a
// volatile default, VACUUM FULL, CLUSTER) or a TRUNCATE is not MVCC-safe:
// a transaction whose snapshot is older than it reads the table as empty,
// without an error. pg_class as the snapshot sees it names the file the
// snapshot would read; pg_relation_filenode the file the table has now.
// The read itself holds the table's ACCESS SHARE lock, so no rewrite can
// land while it runs; locking every table for the whole copy instead (as
// pg_dump does) would stall the application's migrations, and every
// query queued behind them, for as long as the copy takes. A table found
// rewritten fails the read (retriably): the source opens again and, in a
// new transaction, copies it as it now is.
func (r *snapshotReader) unrewritten(t *table) error {
	name := pgx.Identifier{t.Schema, t.Name}.Sanitize()
	// (pg_partition_tree lists a partitioned table's partitions, and
	// nothing for a plain table.)
	rows, err := r.conn.Query(r.s.ctx, `SELECT c.oid::regclass::text FROM pg_class c
		WHERE c.relkind IN ('r', 'm') AND c.relfilenode IS DISTINCT FROM pg_relation_filenode(c.oid)
		AND (c.oid = $1::regclass OR c.oid IN (SELECT relid FROM pg_partition_tree($1::regclass)))`, name)
	if err != nil {
		return fmt.Errorf("snapshot of %s: check it for a rewrite: %w", t.qualified(), err)
	}
	rewritten, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("snapshot of %s: check it for a rewrite: %w", t.qualified(), err)
	}
	if len(rewritten) > 0 {
		return fmt.Errorf("snapshot: table %s was rewritten (ALTER TABLE that changes a type or adds a volatile default, VACUUM FULL, CLUSTER or TRUNCATE) after the snapshot was taken, so the copy would read it as empty: the source opens again and copies the table as it is now", strings.Join(rewritten, ", "))
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ranges is the reader's ranges.
func (r *snapshotReader) ranges() []TableRange { return r.s.prog.reader(r.n).Ranges }

// query starts reading the current range after r.after.
func (r *snapshotReader) query() {
	tr := r.ranges()[r.rng]
	kr := keyRange{After: tr.After, To: tr.To}
	if r.after != nil {
		kr.After = r.after
	}
	sql, params := r.s.tables[tr.Table].rangeSelect(kr, "", 0)
	r.rr = r.conn.PgConn().ExecParams(r.s.ctx, sql, params, nil, nil, nil)
}

func (t *table) column(name string) tableColumn {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return tableColumn{TypeName: "text"}
}

// next returns the next rows of the snapshot, then io.EOF. It holds back
// each batch until the next one arrives: the last row of the whole
// snapshot goes out marked (Event.SnapshotLast), which no reader can tell
// before every reader has found nothing more. (Holding a whole batch
// rather than its last row saves copying every row once more.) The held
// rows' chunk records are saved, so a restart resumes after whatever the
// sinks committed, as for any row.
func (s *snapshot) next() ([]change.Event, error) {
	s.once.Do(s.start)
	for {
		var b readerBatch
		var ok bool
		select {
		case b, ok = <-s.out:
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		}
		if !ok {
			held := s.held
			s.held = nil
			if len(held) == 0 {
				return nil, io.EOF
			}
			held[len(held)-1].SnapshotLast = true
			return held, nil
		}
		if b.err != nil {
			return nil, b.err
		}
		held := s.held
		s.held = b.events
		if len(held) > 0 {
			return held, nil
		}
	}
}

// start runs the readers, each in a goroutine of its own, handing their
// chunks to next through s.out (unbuffered: a reader that has read a
// chunk waits for next to take it, so each holds at most two in memory),
// which is closed when every reader has read its part.
func (s *snapshot) start() {
	s.out = make(chan readerBatch)
	for _, r := range s.readers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				events, err := r.chunk()
				if errors.Is(err, io.EOF) {
					return
				}
				select {
				case s.out <- readerBatch{events: events, err: err}:
				case <-s.ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	go func() { s.wg.Wait(); close(s.out) }()
}

// chunk reads the reader's next chunk of rows, or returns io.EOF at the
// end of its ranges.
func (r *snapshotReader) chunk() ([]change.Event, error) {
	s := r.s
	for r.rng < len(r.ranges()) {
		tr := r.ranges()[r.rng]
		t, rs := s.tables[tr.Table], s.rels[tr.Table]
		if r.rr == nil {
			if err := r.unrewritten(t); err != nil {
				return nil, err
			}
			r.query()
		}
		room := int(snapshotChunkRows - r.index%snapshotChunkRows)
		events := make([]change.Event, 0, room) // grown, the copies cost a fifth of the copy's CPU
		keys := make([][]string, 0, room)
		size := 0
		for len(events) < room && size < snapshotChunkBytes && r.rr.NextRow() {
			vals := r.rr.Values()
			row, n, err := t.decodeRow(s.types, rs.row, vals)
			if err != nil {
				return nil, err
			}
			size += n
			keys = append(keys, t.keyText(vals))
			events = append(events, change.Event{Op: change.Snapshot, Schema: t.Schema, Table: t.Name, After: row,
				Key: rs.keyOf(row), Changed: rs.names, Relation: rs.rel, Boundary: true,
				Position: change.Position{Source: s.source, Partition: r.partition, Offset: s.prog.Offset, Index: r.index + uint32(len(events))}})
		}
		if len(events) > 0 {
			if err := r.save(tr.Table, keys); err != nil {
				return nil, err
			}
			r.after = keys[len(keys)-1]
			r.last, r.hasLast = events[len(events)-1].Position.Index, true
			return events, nil
		}
		if _, err := r.rr.Close(); err != nil {
			return nil, fmt.Errorf("snapshot of %s: %w", t.qualified(), err)
		}
		r.rr = nil
		r.rng++
		r.after = nil
		r.index = roundUp(r.index)
		if err := r.rangeDone(tr.Table); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rp := s.prog.reader(r.n)
	rp.Emitted = true
	if r.hasLast {
		last := r.last
		rp.Last = &last
	}
	if err := s.putProgress(); err != nil {
		return nil, err
	}
	return nil, io.EOF
}

// rangeDone records that the reader read a range of table to its end.
func (r *snapshotReader) rangeDone(table int) error {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.left[table]--
	s.prog.Tables[table].Done = s.left[table] == 0
	return r.reserve(true)
}

func roundUp(i uint32) uint32 {
	return (i + snapshotChunkRows - 1) / snapshotChunkRows * snapshotChunkRows
}

// keyText returns the text form of a row's key: its primary-key columns,
// or the ctid selected last for tables without one.
func (t *table) keyText(vals [][]byte) []string {
	if len(t.PK) == 0 {
		return []string{string(vals[len(t.Columns)])}
	}
	key := make([]string, 0, len(t.PK))
	for _, k := range t.PK {
		for i, c := range t.Columns {
			if c.Name == k {
				key = append(key, string(vals[i]))
			}
		}
	}
	return key
}

// save records the keys of rows about to be handed out in their chunk's
// record, before they are handed out, so that whatever a sink commits
// can be mapped back to a key: one durable write per chunk.
func (r *snapshotReader) save(table int, keys [][]string) error {
	chunk := r.index / snapshotChunkRows
	if r.cur.Keys == nil || r.cur.Chunk != chunk {
		r.cur = chunkRecord{Chunk: chunk, First: r.index, Range: r.rng}
	}
	r.cur.Keys = append(r.cur.Keys, keys...)
	b, err := json.Marshal(r.cur)
	if err != nil {
		return err
	}
	r.index += uint32(len(keys))
	s := r.s
	s.mu.Lock()
	s.prog.Tables[table].RowsDone += int64(len(keys))
	err = r.reserve(false)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := s.state.Put(r.chunkKey(chunk), b); err != nil {
		return fmt.Errorf("snapshot: save progress: %w", err)
	}
	return nil
}

// chunkKey is the state key of the reader's ring slot of chunk.
func (r *snapshotReader) chunkKey(chunk uint32) string {
	slot := strconv.FormatUint(uint64(chunk%chunkRing), 10)
	if r.n == 0 {
		return chunkKeyPrefix + slot
	}
	return "snapshot." + strconv.Itoa(r.n) + ".chunk." + slot
}

// reserve saves the progress when the rows the reader handed out reach
// its reserved bound (moving it progressChunks chunks on), or when force
// is set. The caller holds s.mu.
func (r *snapshotReader) reserve(force bool) error {
	rp := r.s.prog.reader(r.n)
	if r.index < rp.Reserved && !force {
		return nil
	}
	if bound := roundUp(r.index) + progressChunks*snapshotChunkRows; rp.Reserved < bound {
		rp.Reserved = bound
	}
	return r.s.putProgress()
}

// putProgress saves the progress record; the caller holds s.mu (or no
// reader runs yet).
func (s *snapshot) putProgress() error {
	b, err := json.Marshal(s.prog)
	if err != nil {
		return err
	}
	if err := s.state.Put(progressKey, b); err != nil {
		return fmt.Errorf("snapshot: save progress: %w", err)
	}
	return nil
}

// reserveAll moves every reader's reserved bound past its next rows and
// saves the progress, before any is handed out.
func (s *snapshot) reserveAll() error {
	for _, r := range s.readers {
		if err := r.reserve(true); err != nil {
			return err
		}
	}
	return nil
}

// close stops the readers and closes their connections.
func (s *snapshot) close() {
	s.cancel()
	s.wg.Wait()
	for _, r := range s.readers {
		if r.rr != nil {
			r.rr.Close()
			r.rr = nil
		}
		if r.conn != nil {
			r.conn.Close(context.Background())
			r.conn = nil
		}
	}
}

// resumeAt positions a resumed reader just after the row at index, the
// last one every sink committed. It returns false when that row's chunk
// record is gone from the reader's state ring (the reader then starts
// its part over, see doc.go).
func (r *snapshotReader) resumeAt(index uint32) (bool, error) {
	b, err := r.s.state.Get(r.chunkKey(index / snapshotChunkRows))
	if err != nil || len(b) == 0 {
		return false, err
	}
	var rec chunkRecord
	if json.Unmarshal(b, &rec) != nil || rec.Chunk != index/snapshotChunkRows || index < rec.First ||
		int(index-rec.First) >= len(rec.Keys) || rec.Range < 0 || rec.Range >= len(r.ranges()) {
		return false, nil
	}
	r.rng, r.after = rec.Range, rec.Keys[index-rec.First]
	return true, nil
}

func allNames(r *change.Relation) []string {
	names := make([]string, 0, len(r.Columns))
	for _, c := range r.Columns {
		if !c.Generated { // never carried
			names = append(names, c.Name)
		}
	}
	return names
}
