package postgres

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/engine/change"
)

// commitIndex is the Index of the Mark that ends a transaction: above any
// row's index, so the Mark sorts last, and recognisable, so that an Ack
// at it confirms the whole transaction to the slot.
const commitIndex = math.MaxUint32

// heartbeatPrefix is the logical decoding message prefix of heartbeats.
const heartbeatPrefix = "sluice_heartbeat"

// decoder turns pgoutput messages into events. It keeps the relation
// cache and the current transaction; it is used by one goroutine.
type decoder struct {
	source string
	types  *typeRegistry
	// conn looks up type names and primary keys when a Relation message
	// arrives; nil decodes without the catalog (fuzzing).
	conn *pgx.Conn

	rels   map[uint32]*relState
	byName map[string]*relState // the latest shape of each table, also seeded by the snapshot
	// excluded lists, by qualified table, the columns `exclude` removes:
	// generated ones, which the catalog shows, stay out of relations.
	excluded map[string][]string

	// resync is the incremental snapshots' part (nil: none, fuzzing).
	resync *resyncDecoding

	inTx  bool
	tx    change.Tx
	lsn   uint64 // commit LSN of the current transaction
	index uint32

	// Reused for every row change (see fastParse).
	ins          pglogrepl.InsertMessage
	upd          pglogrepl.UpdateMessage
	del          pglogrepl.DeleteMessage
	oldTD, newTD pglogrepl.TupleData
}

// relState is one table's shape as pgoutput last described it.
type relState struct {
	rel  *change.Relation
	sig  string   // column names and types, then generated columns: equal sig, same shape
	oids []uint32 // type of each column sent
	// cols maps each column sent to its index in rel.Columns, which also
	// lists generated columns; nil when they are the same.
	cols []int
	key  []int // indexes in rel.Columns of the key columns
	// names lists every column: the Changed of inserts and snapshot rows,
	// one slice shared by all of them (read-only, like every event field).
	names []string
	// row and keyCols are the Columns of the rows (the columns sent, in
	// order: names) and of the keys, shared by every event of the shape.
	row, keyCols *change.Columns
	// keyPos are the positions of the key columns in row.
	keyPos []int
	// enums holds the known labels of each enum column (by index in
	// rel.Columns; see enumSets), nil without enum columns.
	enums []map[string]struct{}
	// genOIDs are the type OIDs of the generated columns.
	genOIDs map[string]uint32
}

func newDecoder(source string, types *typeRegistry, conn *pgx.Conn) *decoder {
	return &decoder{source: source, types: types, conn: conn, rels: map[uint32]*relState{}, byName: map[string]*relState{}}
}

// seed registers a table's shape read from the catalog (by the snapshot),
// so that the stream's first Relation message for an unchanged table
// keeps Version 1 and the same *Relation.
func (d *decoder) seed(t *table) *relState {
	rs := &relState{rel: t.relation()}
	for _, c := range t.Columns {
		rs.oids = append(rs.oids, c.TypeOID)
	}
	for _, g := range t.Generated {
		if rs.genOIDs == nil {
			rs.genOIDs = map[string]uint32{}
		}
		rs.genOIDs[g.Name] = g.TypeOID
	}
	rs.enums = enumSets(rs.rel)
	rs.indexColumns()
	rs.sig = t.signature()
	rs.setNames()
	d.byName[t.qualified()] = rs
	return rs
}

// indexColumns sets cols and key from rel.Columns: the key columns, or
// without a primary key (REPLICA IDENTITY FULL identifies by the whole
// row) every column sent.
func (rs *relState) indexColumns() {
	rs.cols, rs.key = nil, nil
	for i, c := range rs.rel.Columns {
		if c.Generated {
			rs.cols = []int{}
		}
		if c.Key {
			rs.key = append(rs.key, i)
		}
	}
	if rs.cols != nil {
		for i, c := range rs.rel.Columns {
			if !c.Generated {
				rs.cols = append(rs.cols, i)
			}
		}
	}
	if len(rs.key) == 0 {
		for i, c := range rs.rel.Columns {
			if !c.Generated {
				rs.key = append(rs.key, i)
			}
		}
	}
}

// setNames sets names, row, keyCols and keyPos from rel and key.
func (rs *relState) setNames() {
	rs.names = allNames(rs.rel)
	rs.row = change.NewColumns(rs.names...)
	keys := make([]string, len(rs.key))
	rs.keyPos = make([]int, len(rs.key))
	for i, ci := range rs.key {
		keys[i] = rs.rel.Columns[ci].Name
		rs.keyPos[i] = rs.row.Index(keys[i])
	}
	rs.keyCols = change.NewColumns(keys...)
}

// col returns the index in rel.Columns of the i-th column sent.
func (rs *relState) col(i int) int {
	if rs.cols == nil {
		return i
	}
	return rs.cols[i]
}

// lookupError is a failed catalog query while decoding: the connection
// may have gone, so a reconnect may help (unlike a malformed message).
type lookupError struct{ err error }

func (e *lookupError) Error() string { return e.err.Error() }
func (e *lookupError) Unwrap() error { return e.err }

// parse parses one pgoutput message; malformed input is an error, never
// a panic (pglogrepl indexes without bounds checks).
func parse(data []byte) (msg pglogrepl.Message, err error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("empty pgoutput message")
	}
	if !tuplesFit(data) {
		return nil, fmt.Errorf("malformed pgoutput message of type %q: a column is longer than the message", data[0])
	}
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed pgoutput message of type %q (%d bytes)", data[0], len(data))
		}
	}()
	return pglogrepl.Parse(data)
}

// fastParse parses the row changes (Insert, Update, Delete: nearly every
// message) into structures the decoder reuses, with column values that
// alias data instead of copies: pglogrepl allocates every column and
// copies it byte by byte, which cost as much CPU as all the rest of
// decoding. Values are converted (and so copied) before data is reused.
// ok is false for anything else and for malformed input, which parse
// then handles.
func (d *decoder) fastParse(data []byte) (pglogrepl.Message, bool) {
	if len(data) < 9 || !tuplesFit(data) {
		return nil, false
	}
	rel := binary.BigEndian.Uint32(data[1:])
	kind := data[5]
	switch data[0] {
	case 'I':
		if kind != 'N' {
			return nil, false
		}
		d.tuple(data, 6, &d.newTD)
		d.ins.RelationID, d.ins.Tuple = rel, &d.newTD
		return &d.ins, true
	case 'U':
		d.upd.RelationID, d.upd.OldTupleType, d.upd.OldTuple = rel, 0, nil
		pos := 6
		switch kind {
		case 'K', 'O':
			pos = d.tuple(data, pos, &d.oldTD)
			if pos >= len(data) || data[pos] != 'N' {
				return nil, false
			}
			pos++
			d.upd.OldTupleType, d.upd.OldTuple = kind, &d.oldTD
		case 'N':
		default:
			return nil, false
		}
		d.tuple(data, pos, &d.newTD)
		d.upd.NewTuple = &d.newTD
		return &d.upd, true
	case 'D':
		if kind != 'K' && kind != 'O' {
			return nil, false
		}
		d.tuple(data, 6, &d.oldTD)
		d.del.RelationID, d.del.OldTupleType, d.del.OldTuple = rel, kind, &d.oldTD
		return &d.del, true
	}
	return nil, false
}

// tuple parses the tuple at data[pos:] into td, reusing its columns, and
// returns the position after it. tuplesFit has checked the bounds.
func (d *decoder) tuple(data []byte, pos int, td *pglogrepl.TupleData) int {
	n := int(binary.BigEndian.Uint16(data[pos:]))
	pos += 2
	cols := td.Columns[:0]
	for i := range n {
		var c *pglogrepl.TupleDataColumn
		if i < cap(cols) {
			c = cols[:i+1][i]
		}
		if c == nil {
			c = new(pglogrepl.TupleDataColumn)
		}
		c.DataType, c.Data, c.Length = data[pos], nil, 0
		pos++
		if c.DataType == 't' || c.DataType == 'b' {
			c.Length = binary.BigEndian.Uint32(data[pos:])
			pos += 4
			c.Data = data[pos : pos+int(c.Length)]
			pos += int(c.Length)
		}
		cols = append(cols, c)
	}
	td.ColumnNum, td.Columns = uint16(n), cols
	return pos
}

// tuplesFit checks that every column length in the tuples of an Insert,
// Update or Delete message, and the relation count of a Truncate, fit in
// the message, before pglogrepl allocates what they claim.
func tuplesFit(data []byte) bool {
	pos := 5 // type byte and relation id
	if len(data) < pos+1 {
		return true // too short to hold a tuple: Parse reports it
	}
	switch data[0] {
	case 'T': // relation count, options, one relation id each
		n := uint64(binary.BigEndian.Uint32(data[1:]))
		return 5+1+4*n <= uint64(len(data))
	case 'I', 'D':
		pos++
	case 'U':
		kind := data[pos]
		pos++
		if kind == 'K' || kind == 'O' {
			var ok bool
			if pos, ok = tupleEnd(data, pos); !ok || pos >= len(data) {
				return ok
			}
			pos++
		}
	default:
		return true
	}
	_, ok := tupleEnd(data, pos)
	return ok
}

func tupleEnd(data []byte, pos int) (int, bool) {
	if pos+2 > len(data) {
		return pos, false
	}
	n := int(binary.BigEndian.Uint16(data[pos:]))
	pos += 2
	for range n {
		if pos >= len(data) {
			return pos, false
		}
		kind := data[pos]
		pos++
		if kind == 't' || kind == 'b' {
			if pos+4 > len(data) {
				return pos, false
			}
			l := binary.BigEndian.Uint32(data[pos:])
			pos += 4
			if uint64(l) > uint64(len(data)-pos) {
				return pos, false
			}
			pos += int(l)
		}
	}
	return pos, true
}

// decode appends the events of one pgoutput message to out.
func (d *decoder) decode(ctx context.Context, data []byte, out []change.Event) ([]change.Event, error) {
	msg, ok := d.fastParse(data)
	if !ok {
		var err error
		if msg, err = parse(data); err != nil {
			return out, err
		}
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		d.inTx, d.lsn, d.index = true, uint64(m.FinalLSN), 0
		d.tx = change.Tx{ID: uint64(m.Xid), CommitTime: m.CommitTime.UTC().Truncate(time.Microsecond)}
	case *pglogrepl.CommitMessage:
		if !d.inTx {
			return out, fmt.Errorf("pgoutput: commit %s outside a transaction", m.CommitLSN)
		}
		d.inTx = false
		if d.resync != nil {
			d.resync.committed(uint32(d.tx.ID))
		}
		out = append(out, change.Event{Op: change.Mark, Tx: d.tx, Boundary: true,
			Position: change.Position{Source: d.source, Offset: uint64(m.CommitLSN), Index: commitIndex}})
	case *pglogrepl.RelationMessage:
		return out, d.relation(ctx, m)
	case *pglogrepl.InsertMessage:
		rs, err := d.rel(m.RelationID)
		if err != nil {
			return out, err
		}
		after, err := d.rowFresh(ctx, m.RelationID, &rs, m.Tuple, change.Row{}, false)
		if err != nil {
			return out, err
		}
		return d.emit(out, change.Event{Op: change.Insert, After: after, Key: rs.keyOf(after), Changed: rs.names}, rs)
	case *pglogrepl.UpdateMessage:
		return d.update(ctx, out, m)
	case *pglogrepl.DeleteMessage:
		rs, err := d.rel(m.RelationID)
		if err != nil {
			return out, err
		}
		before, err := d.rowFresh(ctx, m.RelationID, &rs, m.OldTuple, change.Row{}, m.OldTupleType == pglogrepl.DeleteMessageTupleTypeKey)
		if err != nil {
			return out, err
		}
		key := rs.keyOf(before)
		if key.Len() < len(rs.key) {
			// REPLICA IDENTITY USING INDEX: the old row has the identity
			// columns, not the primary key; they are what identifies it.
			key = before.Clone()
		}
		return d.emit(out, change.Event{Op: change.Delete, Before: before, Key: key}, rs)
	case *pglogrepl.TruncateMessage:
		for _, id := range m.RelationIDs {
			rs, err := d.rel(id)
			if err != nil {
				return out, err
			}
			if out, err = d.emit(out, change.Event{Op: change.Truncate}, rs); err != nil {
				return out, err
			}
		}
	case *pglogrepl.LogicalDecodingMessage:
		if m.Prefix == resyncPrefix && d.resync != nil && d.inTx {
			return d.watermark(ctx, m.Content, out)
		}
	}
	// Type, Origin and other logical decoding messages carry no row. A
	// transactional heartbeat message is covered by its transaction's
	// commit Mark.
	return out, nil
}

func (d *decoder) rel(id uint32) (*relState, error) {
	rs, ok := d.rels[id]
	if !ok {
		return nil, fmt.Errorf("pgoutput: change for relation %d before its Relation message", id)
	}
	return rs, nil
}

// emit stamps an event with its table, transaction and position.
func (d *decoder) emit(out []change.Event, e change.Event, rs *relState) ([]change.Event, error) {
	if !d.inTx {
		return out, fmt.Errorf("pgoutput: change to %s.%s outside a transaction", rs.rel.Schema, rs.rel.Table)
	}
	if d.index == commitIndex {
		return out, fmt.Errorf("transaction %d on %s.%s has more than %d changes", d.tx.ID, rs.rel.Schema, rs.rel.Table, commitIndex-1)
	}
	e.Schema, e.Table, e.Relation, e.Tx = rs.rel.Schema, rs.rel.Table, rs.rel, d.tx
	e.Position = change.Position{Source: d.source, Offset: d.lsn, Index: d.index}
	d.index++
	if d.resync != nil {
		d.resync.track(&e, rs)
	}
	return append(out, e), nil
}

// relation caches a Relation message. A table whose columns changed gets
// a new *Relation with the next Version: that is how a schema change
// travels downstream. One catalog query per message (besides type
// names) adds what the message lacks: the primary key, defaults of new
// columns, and generated columns (pgoutput does not send them).
func (d *decoder) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	var sig strings.Builder
	oids := make([]uint32, len(m.Columns))
	for i, c := range m.Columns {
		oids[i] = c.DataType
		fmt.Fprintf(&sig, "%s:%d:%d,", c.Name, c.DataType, c.TypeModifier)
	}
	q := m.Namespace + "." + m.RelationName
	var cat []catalogColumn
	if d.conn != nil {
		var err error
		if cat, err = catalogColumns(ctx, d.conn, m.RelationID); err != nil {
			return &lookupError{fmt.Errorf("describe %s: %w", q, err)}
		}
		cat = slices.DeleteFunc(cat, func(c catalogColumn) bool { return c.Generated && slices.Contains(d.excluded[q], c.Name) })
		for _, c := range cat {
			if c.Generated {
				fmt.Fprintf(&sig, "|%s", c.Name)
			}
		}
	}
	for i, c := range m.Columns {
		for _, o := range m.Columns[:i] {
			if o.Name == c.Name {
				// PostgreSQL never sends one; rows are indexed by name.
				return fmt.Errorf("pgoutput: relation %s has column %q twice", q, c.Name)
			}
		}
	}
	prev := d.byName[q]
	if prev != nil && prev.sig == sig.String() {
		d.rels[m.RelationID] = prev
		return nil
	}
	rs := &relState{sig: sig.String(), oids: oids, rel: &change.Relation{Schema: m.Namespace, Table: m.RelationName, Version: 1}}
	if prev != nil {
		rs.rel.Version = prev.rel.Version + 1
	}
	names := make([]string, len(m.Columns))
	byName := map[string]catalogColumn{}
	var pk bool
	if d.conn != nil {
		if err := d.types.ensure(ctx, d.conn, oids); err != nil {
			return &lookupError{err}
		}
		mods := make([]int32, len(m.Columns))
		for i, c := range m.Columns {
			mods[i] = c.TypeModifier
		}
		if err := d.conn.QueryRow(ctx, `SELECT array_agg(format_type(t.o, t.m) ORDER BY t.n) FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS t(o, m, n)`, oids, mods).Scan(&names); err != nil {
			return &lookupError{fmt.Errorf("describe %s: %w", q, err)}
		}
		for _, c := range cat {
			byName[c.Name] = c
			pk = pk || c.Key
		}
	}
	// The columns sent, in order, with the generated ones where the
	// catalog has them.
	var gen []catalogColumn
	for _, c := range cat {
		if c.Generated {
			gen = append(gen, c)
		}
	}
	var defs map[uint32]*change.TypeDef
	if d.conn != nil {
		all := slices.Clone(oids)
		for _, g := range gen {
			all = append(all, g.TypeOID)
			if rs.genOIDs == nil {
				rs.genOIDs = map[string]uint32{}
			}
			rs.genOIDs[g.Name] = g.TypeOID
		}
		var err error
		if defs, err = readTypeDefs(ctx, d.conn, all); err != nil {
			return &lookupError{fmt.Errorf("describe %s: %w", q, err)}
		}
	}
	num := int16(0)
	for i, c := range m.Columns {
		cc, ok := byName[c.Name]
		if ok {
			num = cc.Num
		}
		for len(gen) > 0 && gen[0].Num < num {
			rs.rel.Columns = append(rs.rel.Columns, gen[0].column(defs))
			gen = gen[1:]
		}
		typ := names[i]
		if typ == "" {
			typ = "oid:" + strconv.FormatUint(uint64(c.DataType), 10)
		}
		key := cc.Key || (!pk && c.Flags&1 != 0)
		rs.rel.Columns = append(rs.rel.Columns, change.Column{Name: c.Name, Type: typ, Key: key, NotNull: cc.NotNull, Default: cc.Default, TypeDef: defs[c.DataType]})
	}
	for _, g := range gen {
		rs.rel.Columns = append(rs.rel.Columns, g.column(defs))
	}
	if prev != nil { // NOT NULL is not in the message: keep what the catalog said for known columns, and their default
		for i, c := range rs.rel.Columns {
			if old, ok := prev.rel.Column(c.Name); ok && old.Type == c.Type && !c.Generated && !old.Generated {
				rs.rel.Columns[i].NotNull = old.NotNull
				rs.rel.Columns[i].Default = old.Default
			}
		}
	}
	rs.indexColumns()
	rs.enums = enumSets(rs.rel)
	rs.setNames()
	d.rels[m.RelationID] = rs
	d.byName[q] = rs
	return nil
}

// catalogColumn is what the catalog says about a column that a Relation
// message does not.
type catalogColumn struct {
	Num       int16
	Name      string
	Type      string
	TypeOID   uint32
	Default   string
	Generated bool
	Key       bool // part of the primary key
	NotNull   bool
}

func (c catalogColumn) column(defs map[uint32]*change.TypeDef) change.Column {
	return change.Column{Name: c.Name, Type: c.Type, Key: c.Key, NotNull: c.NotNull, Default: c.Default, Generated: c.Generated, TypeDef: defs[c.TypeOID]}
}

// catalogColumns reads a table's columns as the catalog shows them now.
func catalogColumns(ctx context.Context, conn *pgx.Conn, oid uint32) ([]catalogColumn, error) {
	rows, err := conn.Query(ctx, `SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid, coalesce(pg_get_expr(d.adbin, d.adrelid), ''),
			a.attgenerated = 's', coalesce(a.attnum = ANY((SELECT i.indkey FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary)::int2[]), false), a.attnotnull
		FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, oid)
	if err != nil {
		return nil, err
	}
	var out []catalogColumn
	for rows.Next() {
		var c catalogColumn
		if err := rows.Scan(&c.Num, &c.Name, &c.Type, &c.TypeOID, &c.Default, &c.Generated, &c.Key, &c.NotNull); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	rows.Close()
	return out, rows.Err()
}

// row decodes a tuple. Unchanged TOAST values ('u') are taken from old
// when it has them and are otherwise left out: absent, never NULL. With
// keyOnly (an old tuple of type 'K') only the identity columns are kept.
func (d *decoder) row(rs *relState, td *pglogrepl.TupleData, old change.Row, keyOnly bool) (change.Row, error) {
	if td == nil {
		return change.Row{}, nil
	}
	cols := rs.rel.Columns
	if len(td.Columns) != len(rs.oids) {
		return change.Row{}, fmt.Errorf("pgoutput: tuple of %s.%s has %d columns, its relation %d", rs.rel.Schema, rs.rel.Table, len(td.Columns), len(rs.oids))
	}
	vals := make([]any, len(td.Columns))
	for i, c := range td.Columns {
		ci := rs.col(i)
		if keyOnly && c.DataType == pglogrepl.TupleDataTypeNull {
			// An old key tuple sends the replica identity's columns (the
			// primary key, or a unique index's NOT NULL columns) and NULL
			// for every other column.
			vals[i] = change.Unsent
			continue
		}
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			vals[i] = nil
		case pglogrepl.TupleDataTypeToast:
			vals[i] = change.Unsent
			if v, ok := rs.at(old, i, cols[ci].Name); ok {
				vals[i] = v
			}
		case pglogrepl.TupleDataTypeText:
			v, err := d.types.decode(rs.oids[i], c.Data)
			if err != nil {
				return change.Row{}, fmt.Errorf("%s.%s column %s (%s): %w", rs.rel.Schema, rs.rel.Table, cols[ci].Name, cols[ci].Type, err)
			}
			if rs.enums != nil && rs.enums[ci] != nil && unknownLabel(rs.enums[ci], v) {
				return change.Row{}, errNewLabel
			}
			vals[i] = v
		default:
			vals[i] = bytes.Clone(c.Data)
		}
	}
	return change.MakeRow(rs.row, vals), nil
}

// rowFresh decodes a tuple as row does; a value that is an enum label
// newer than the relation first refreshes it (refreshTypes), and *rs
// becomes the refreshed relation.
func (d *decoder) rowFresh(ctx context.Context, id uint32, rs **relState, td *pglogrepl.TupleData, old change.Row, keyOnly bool) (change.Row, error) {
	row, err := d.row(*rs, td, old, keyOnly)
	if !errors.Is(err, errNewLabel) {
		return row, err
	}
	if d.conn == nil {
		(*rs).enums = nil // nothing to refresh from: take the labels as they come
		return d.row(*rs, td, old, keyOnly)
	}
	full, err := d.rowUnchecked(*rs, td, old, keyOnly)
	if err != nil {
		return change.Row{}, err
	}
	if *rs, err = d.refreshTypes(ctx, id, *rs, full); err != nil {
		return change.Row{}, err
	}
	return d.row(*rs, td, old, keyOnly)
}

// rowUnchecked decodes a tuple without checking enum labels.
func (d *decoder) rowUnchecked(rs *relState, td *pglogrepl.TupleData, old change.Row, keyOnly bool) (change.Row, error) {
	c := *rs
	c.enums = nil
	return d.row(&c, td, old, keyOnly)
}

func (d *decoder) update(ctx context.Context, out []change.Event, m *pglogrepl.UpdateMessage) ([]change.Event, error) {
	rs, err := d.rel(m.RelationID)
	if err != nil {
		return out, err
	}
	before, err := d.rowFresh(ctx, m.RelationID, &rs, m.OldTuple, change.Row{}, m.OldTupleType == pglogrepl.UpdateMessageTupleTypeKey)
	if err != nil {
		return out, err
	}
	after, err := d.rowFresh(ctx, m.RelationID, &rs, m.NewTuple, before, false)
	if err != nil {
		return out, err
	}
	key := rs.keyOf(after)
	var changed []string
	full := m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld
	if !full && before.IsZero() {
		before = key.Clone()
	}
	// The columns sent, in the order of rel.Columns (generated ones are
	// never sent).
	for i := range rs.row.Len() {
		c := &rs.rel.Columns[rs.col(i)]
		a, ok := rs.at(after, i, c.Name)
		if !ok {
			continue
		}
		b, _ := rs.at(before, i, c.Name)
		if full {
			// REPLICA IDENTITY FULL: the old row is known, so is what
			// changed.
			if !equal(a, b) {
				changed = append(changed, c.Name)
			}
		} else if !(c.Key && equal(a, b)) {
			// Only the key of the old row is known: every column sent
			// may have changed, except a key that did not.
			changed = append(changed, c.Name)
		}
	}
	return d.emit(out, change.Event{Op: change.Update, Before: before, After: after, Key: key, Changed: changed}, rs)
}

// at returns the value of the i-th column sent, named name, in row and
// whether row has it: by position when row is of rs.row (every row the
// decoder makes), else by name (a key, a row of an older shape).
func (rs *relState) at(row change.Row, i int, name string) (any, bool) {
	if row.Columns() == rs.row {
		return row.Value(i)
	}
	return row.Lookup(name)
}

// keyOf returns the key columns of row, of rs.keyCols: a key column row
// lacks is unsent in the key.
func (rs *relState) keyOf(row change.Row) change.Row {
	if row.IsZero() {
		return change.Row{}
	}
	vals := make([]any, len(rs.key))
	for i, ci := range rs.key {
		vals[i] = change.Unsent
		if p := rs.keyPos[i]; p >= 0 { // a generated key column is never sent
			if v, ok := rs.at(row, p, rs.rel.Columns[ci].Name); ok {
				vals[i] = v
			}
		}
	}
	return change.MakeRow(rs.keyCols, vals)
}

// equal compares two decoded values.
func equal(a, b any) bool {
	switch x := a.(type) {
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case float64:
		y, ok := b.(float64)
		return ok && (x == y || math.IsNaN(x) && math.IsNaN(y))
	}
	return a == b
}
