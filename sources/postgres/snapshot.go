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
	// consistent point). Position.Index numbers the rows across tables.
	Offset uint64          `json:"offset"`
	Tables []TableProgress `json:"tables"`
	// Emitted reports that every row has been read (not that sinks have
	// committed them: a restart still resumes after the committed row).
	Emitted bool `json:"emitted"`
	// Last is the Index of the last row read, saved with Emitted (absent
	// when no row was): sinks that committed it hold the whole snapshot,
	// so a restart streams instead of resuming a read that is over.
	Last *uint32 `json:"last,omitempty"`
	// Reserved bounds every Index handed out so far: a restarted or
	// resumed snapshot numbers its rows from here, so that no sink
	// mistakes a new row for one it committed.
	Reserved uint32 `json:"reserved"`
	// Earlier lists the tables that earlier snapshots copied, which this
	// one (of tables added to the source since) does not read.
	Earlier []string `json:"earlier,omitempty"`
	// First is the Index of this snapshot's first row: 0, or past the
	// reserved bound of the snapshot before it when they share Offset.
	First uint32 `json:"first,omitempty"`
	// Partition is the Position.Partition of the rows: "" (the stream's
	// own) for the initial snapshot, AddedPartition for a copy of tables
	// added later, whose rows every sink takes whatever its progress in
	// the stream (see doc.go).
	Partition string `json:"partition,omitempty"`
}

// AddedPartition is the Position.Partition of the rows of tables added to
// `tables` after the initial snapshot.
const AddedPartition = "added"

// stream is the stream the snapshot's rows belong to.
func (p SnapshotProgress) stream(source string) change.Stream {
	return change.Stream{Source: source, Partition: p.Partition}
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

// chunkRecord is the state record of one chunk of snapshot rows: the text
// form of each row's key, so that a committed Index maps back to its
// table and key. Chunk n covers indexes [n*snapshotChunkRows,
// (n+1)*snapshotChunkRows) and is stored in ring slot n % chunkRing, so
// the state holds a bounded number of keys whatever the table size.
type chunkRecord struct {
	Chunk uint32     `json:"chunk"`
	First uint32     `json:"first"` // Index of Keys[0]
	Table int        `json:"table"`
	Keys  [][]string `json:"keys"`
}

// complete reports whether sinks that committed pos hold every snapshot
// row: the read is over and its last row committed.
func (p SnapshotProgress) complete(pos change.Position, hasPos bool) bool {
	return p.Emitted && p.Last != nil && hasPos && pos.Offset == p.Offset && pos.Index >= *p.Last
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
	return p, true, nil
}

// snapshotReader reads every captured table inside one REPEATABLE READ
// transaction, in key order, streaming (the server sends rows as the
// reader consumes them: memory stays bounded whatever the table size).
type snapshotReader struct {
	source string
	conn   *pgx.Conn // dedicated: holds the snapshot transaction
	types  *typeRegistry
	tables []*table
	rels   []*relState
	state  engine.State
	prog   *SnapshotProgress
	// resume: the table to start at and the key (text) to start after
	table int
	after []string
	index uint32 // Index of the next row
	// last is the Index of the last row handed out (or committed, on a
	// resume), if hasLast.
	last    uint32
	hasLast bool
	cur     chunkRecord
	rr      *pgconn.ResultReader
	held    *change.Event   // the row next holds back (see next)
	ctx     context.Context // lives as long as the source: the query outlives one Read
}

// Snapshot chunking: a Read returns at most one chunk (fewer rows when
// they hold more than snapshotChunkBytes), and each chunk costs one
// durable state write. Progress for status is saved every
// progressChunks chunks and at each table's end.
const (
	snapshotChunkRows  = 8192
	snapshotChunkBytes = 8 << 20
	chunkRing          = 64
	progressChunks     = 16
)

// begin opens the snapshot transaction, importing an exported snapshot
// when there is one (the first attempt: exactly the slot's consistent
// point) or taking a fresh one (a resumed snapshot: see doc.go).
func (s *snapshotReader) begin(ctx context.Context, exported string) error {
	if _, err := s.conn.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("snapshot: begin: %w", err)
	}
	if exported != "" {
		if _, err := s.conn.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(exported)); err != nil {
			return fmt.Errorf("snapshot: import exported snapshot: %w", err)
		}
	}
	return nil
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
func (s *snapshotReader) unrewritten(t *table) error {
	name := pgx.Identifier{t.Schema, t.Name}.Sanitize()
	// (pg_partition_tree lists a partitioned table's partitions, and
	// nothing for a plain table.)
	rows, err := s.conn.Query(s.ctx, `SELECT c.oid::regclass::text FROM pg_class c
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

// query starts reading the current table after s.after.
func (s *snapshotReader) query() {
	sql, params := s.tables[s.table].rangeSelect(keyRange{After: s.after}, "", 0)
	s.rr = s.conn.PgConn().ExecParams(s.ctx, sql, params, nil, nil, nil)
}

func (t *table) column(name string) tableColumn {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return tableColumn{TypeName: "text"}
}

// next returns the next rows of the current table (at most the rest of
// the current chunk), io.EOF when every table has been read.
// next returns the next rows of the snapshot, then io.EOF. It holds back
// one row from each chunk until the next: the last row of the whole
// snapshot goes out marked (Event.SnapshotLast), which no chunk can tell
// before the read after it finds nothing. The held row's chunk record is
// saved with its chunk, so a restart resumes after whatever the sinks
// committed, as for any row.
func (s *snapshotReader) next() ([]change.Event, error) {
	for {
		events, err := s.chunk()
		if errors.Is(err, io.EOF) && s.held != nil {
			last := *s.held
			s.held, last.SnapshotLast = nil, true
			return []change.Event{last}, nil
		}
		if err != nil {
			return nil, err
		}
		out := make([]change.Event, 0, len(events))
		if s.held != nil {
			out = append(out, *s.held)
		}
		out = append(out, events[:len(events)-1]...)
		s.held = &events[len(events)-1]
		if len(out) > 0 {
			return out, nil
		}
	}
}

// chunk reads the next chunk of rows, or returns io.EOF at the end.
func (s *snapshotReader) chunk() ([]change.Event, error) {
	for s.table < len(s.tables) {
		if s.rr == nil {
			if err := s.unrewritten(s.tables[s.table]); err != nil {
				return nil, err
			}
			s.query()
		}
		t, rs := s.tables[s.table], s.rels[s.table]
		room := int(snapshotChunkRows - s.index%snapshotChunkRows)
		var events []change.Event
		var keys [][]string
		size := 0
		for len(events) < room && size < snapshotChunkBytes && s.rr.NextRow() {
			vals := s.rr.Values()
			row, n, err := t.decodeRow(s.types, rs.row, vals)
			if err != nil {
				return nil, err
			}
			size += n
			keys = append(keys, t.keyText(vals))
			events = append(events, change.Event{Op: change.Snapshot, Schema: t.Schema, Table: t.Name, After: row,
				Key: rs.keyOf(row), Changed: rs.names, Relation: rs.rel, Boundary: true,
				Position: change.Position{Source: s.source, Partition: s.prog.Partition, Offset: s.prog.Offset, Index: s.index + uint32(len(events))}})
		}
		if len(events) > 0 {
			if err := s.save(keys); err != nil {
				return nil, err
			}
			s.after = keys[len(keys)-1]
			s.last, s.hasLast = events[len(events)-1].Position.Index, true
			return events, nil
		}
		if _, err := s.rr.Close(); err != nil {
			return nil, fmt.Errorf("snapshot of %s: %w", t.qualified(), err)
		}
		s.rr = nil
		s.prog.Tables[s.table].Done = true
		s.table++
		s.after = nil
		s.index = roundUp(s.index)
		if err := s.reserve(true); err != nil {
			return nil, err
		}
	}
	s.prog.Emitted = true
	if s.hasLast {
		last := s.last
		s.prog.Last = &last
	}
	if err := s.putProgress(); err != nil {
		return nil, err
	}
	return nil, io.EOF
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
// record, before Read returns them, so that whatever a sink commits can
// be mapped back to a key: one durable write per chunk.
func (s *snapshotReader) save(keys [][]string) error {
	chunk := s.index / snapshotChunkRows
	if s.cur.Keys == nil || s.cur.Chunk != chunk {
		s.cur = chunkRecord{Chunk: chunk, First: s.index, Table: s.table}
	}
	s.cur.Keys = append(s.cur.Keys, keys...)
	b, err := json.Marshal(s.cur)
	if err != nil {
		return err
	}
	s.prog.Tables[s.table].RowsDone += int64(len(keys))
	s.index += uint32(len(keys))
	if err := s.reserve(false); err != nil {
		return err
	}
	if err := s.state.Put(chunkKey(chunk), b); err != nil {
		return fmt.Errorf("snapshot: save progress: %w", err)
	}
	return nil
}

func chunkKey(chunk uint32) string {
	return chunkKeyPrefix + strconv.FormatUint(uint64(chunk%chunkRing), 10)
}

// reserve saves the progress when the rows handed out reach the reserved
// bound (moving it progressChunks chunks on), or when force is set.
func (s *snapshotReader) reserve(force bool) error {
	if s.index < s.prog.Reserved && !force {
		return nil
	}
	if bound := roundUp(s.index) + progressChunks*snapshotChunkRows; s.prog.Reserved < bound {
		s.prog.Reserved = bound
	}
	return s.putProgress()
}

func (s *snapshotReader) putProgress() error {
	b, err := json.Marshal(s.prog)
	if err != nil {
		return err
	}
	if err := s.state.Put(progressKey, b); err != nil {
		return fmt.Errorf("snapshot: save progress: %w", err)
	}
	return nil
}

func (s *snapshotReader) close() {
	if s.rr != nil {
		s.rr.Close()
		s.rr = nil
	}
	if s.conn != nil {
		s.conn.Close(context.Background())
		s.conn = nil
	}
}

// resumeAt positions a resumed snapshot just after the row at index, the
// last one every sink committed. It returns false when that row's chunk
// record is gone from the state ring (then the snapshot starts over, see
// doc.go).
func (s *snapshotReader) resumeAt(index uint32) (bool, error) {
	b, err := s.state.Get(chunkKey(index / snapshotChunkRows))
	if err != nil || len(b) == 0 {
		return false, err
	}
	var rec chunkRecord
	if json.Unmarshal(b, &rec) != nil || rec.Chunk != index/snapshotChunkRows || index < rec.First ||
		int(index-rec.First) >= len(rec.Keys) || rec.Table < 0 || rec.Table >= len(s.tables) {
		return false, nil
	}
	s.table, s.after = rec.Table, rec.Keys[index-rec.First]
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
