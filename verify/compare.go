package verify

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
)

// table is one side's table, read by key range in key order.
type table interface {
	// scan calls fn with the values of cols of each row whose key (the
	// columns key) lies in r, in key order. The slice is reused.
	scan(ctx context.Context, key, cols []string, r keyRange, fn func([]any) error) error
	// column returns the table's spelling of a column, if it has it.
	column(name string) (string, bool)
	columnTypes() map[string]string
}

// keyRange selects rows by key: after < key <= upTo (nil: unbounded),
// or key = eq; at most limit rows (0: all).
type keyRange struct {
	after, upTo, eq []any
	limit           int
}

func (t *pgTable) column(name string) (string, bool) {
	_, ok := t.types[name]
	return name, ok
}

// comparison compares one Pair.
type comparison struct {
	g    *engine.Graph
	cfg  *dsl.Config
	opts Options
	pair *Pair
	src  *dsl.Source
	rel  *change.Relation
	sink *dsl.Sink
	ts   *dsl.TableSink

	source  *pgTable
	target  table
	srcCols []string // the source table's columns, as the source publishes them
	srcKey  []string // source columns the target key is read from
	tgtKey  []string // the target key, in the target's spelling
	deleted string   // the target's soft-delete column ("" unless delete = "soft")
	kinds   map[string]kind
	// chunkCols are the compared columns, from the latest source row
	// (nil until the source has sent one).
	chunkCols *chunkColumns
	// ranged reports that the chunk before the current one differed and
	// its range was recorded (the next differing chunk extends it).
	ranged bool
}

// side is one side of a chunk: its rows' keys and hashes, in key order,
// and their sum.
type side struct {
	rows   []rowSum
	s1, s2 uint64
	read   int   // rows read, those not compared (soft-deleted) included
	last   []any // the key of the last row read
	failed int   // source rows a transform could not process
}

type rowSum struct {
	key     string // canonical key
	keyVals []any
	hash    [16]byte
}

func (s *side) add(r rowSum) {
	s.rows = append(s.rows, r)
	s.s1 += binary.LittleEndian.Uint64(r.hash[:8])
	s.s2 += binary.LittleEndian.Uint64(r.hash[8:])
}

func (s *side) same(o *side) bool { return len(s.rows) == len(o.rows) && s.s1 == o.s1 && s.s2 == o.s2 }

func (c *comparison) run(ctx context.Context) error {
	tgtKey, srcKey, err := keyColumns(c.cfg, c.src.Name, c.sink, c.ts, c.pair.Table, c.rel.KeyNames())
	if err != nil {
		return fmt.Errorf("sink %q, table %s: %w", c.sink.Name, c.pair.Table, err)
	}
	c.pair.Key = tgtKey
	sconn, err := connectPG(ctx, c.src.Postgres.DSN)
	if err != nil {
		return fmt.Errorf("source %q: %w", c.src.Name, err)
	}
	defer sconn.Close(context.Background())
	src, ok, err := openPGTable(ctx, sconn, c.rel.Schema, c.rel.Table)
	if err != nil {
		return fmt.Errorf("source %q: %w", c.src.Name, err)
	}
	if !ok {
		return fmt.Errorf("source %q: table %s does not exist", c.src.Name, c.pair.Table)
	}
	c.source = src
	for _, col := range c.rel.Columns {
		c.srcCols = append(c.srcCols, col.Name)
	}
	closeTarget, err := c.openTarget(ctx)
	if err != nil {
		return fmt.Errorf("sink %q: %w", c.sink.Name, err)
	}
	defer closeTarget()
	for _, k := range srcKey {
		if _, ok := c.rel.Column(k); !ok {
			return fmt.Errorf("sink %q: key column %q is not a column of source table %s (or is excluded)", c.sink.Name, k, c.pair.Table)
		}
	}
	for _, k := range tgtKey {
		col, ok := c.target.column(k)
		if !ok {
			return fmt.Errorf("sink %q: key column %q is not a column of target table %s", c.sink.Name, k, c.pair.Target)
		}
		c.tgtKey = append(c.tgtKey, col)
	}
	c.srcKey = srcKey
	c.pair.SourceKey = c.rel.KeyNames()
	c.pair.Unrepairable = repairable(c.pair.Table, srcKey, c.pair.SourceKey)
	if c.pair.Delete == deleteSoft && c.pair.Mode == modeUpsert {
		col, ok := c.target.column(deletedColumn)
		if !ok {
			return fmt.Errorf("sink %q: target table %s has no %s column although delete = \"soft\"", c.sink.Name, c.pair.Target, deletedColumn)
		}
		c.deleted = col
	}
	c.kinds = map[string]kind{}
	var lo []any
	seen := map[string]bool{} // chunk boundaries: one short key per chunk
	for {
		// The chunk is the next Chunk source keys, narrowed to the next
		// Chunk target keys where the target is denser (rows only it
		// has), so that neither side holds more than Chunk rows.
		s, err := c.readSource(ctx, keyRange{after: lo, limit: c.opts.Chunk})
		if err != nil {
			return err
		}
		var hi []any
		if s.read == c.opts.Chunk {
			hi = s.last
		}
		t, err := c.readTarget(ctx, keyRange{after: lo, upTo: hi, limit: c.opts.Chunk})
		if err != nil {
			return err
		}
		if t.read == c.opts.Chunk && (hi == nil || c.keyString(t.last) != c.keyString(hi)) {
			hi = t.last
			if s, err = c.readSource(ctx, keyRange{after: lo, upTo: hi}); err != nil {
				return err
			}
		}
		c.pair.Chunks++
		c.pair.Failed += s.failed
		adjacent := c.ranged
		c.ranged = false
		if !s.same(t) {
			if err := c.settle(ctx, lo, hi, s, t, adjacent); err != nil {
				return err
			}
		} else {
			c.pair.SourceRows += int64(len(s.rows))
			c.pair.TargetRows += int64(len(t.rows))
		}
		if hi == nil {
			return nil
		}
		// Each side reads on after lo in its own order; a chunk boundary
		// seen twice means the two orders differ (a collation or type
		// this package does not align): stop rather than loop.
		if b := c.keyString(hi); seen[b] {
			return fmt.Errorf("sink %q: the source and the target order the keys of %s differently (key %v came round twice): verify cannot compare them chunk by chunk", c.sink.Name, c.pair.Table, hi)
		} else {
			seen[b] = true
		}
		lo = hi
	}
}

// openTarget connects to the sink's database and describes its table.
func (c *comparison) openTarget(ctx context.Context) (func(), error) {
	schema, name, ok := strings.Cut(c.pair.Target, ".")
	if !ok {
		schema, name = "", c.pair.Target
	}
	var t table
	var exists bool
	var closer func()
	switch c.sink.Type {
	case "mysql":
		db, err := openMySQL(c.ts.DSN)
		if err != nil {
			return nil, err
		}
		closer = func() { db.Close() }
		t, exists, err = openMySQLTable(ctx, db, schema, name)
		if err != nil {
			closer()
			return nil, err
		}
	default:
		conn, err := connectPG(ctx, c.ts.DSN)
		if err != nil {
			return nil, err
		}
		closer = func() { conn.Close(context.Background()) }
		t, exists, err = openPGTable(ctx, conn, schema, name)
		if err != nil {
			closer()
			return nil, err
		}
	}
	if !exists {
		closer()
		return nil, fmt.Errorf("target table %s does not exist: run the pipeline (auto_create) or create it", c.pair.Target)
	}
	c.target = t
	return closer, nil
}

// expectedRows reads source rows in r, routes them through the
// transforms as snapshot events and calls fn with each row the sink
// receives, in source key order. It returns the source key of the last
// row read and how many were read.
func (c *comparison) expectedRows(ctx context.Context, r keyRange, fn func(change.Row) error) (last []any, n, failures int, err error) {
	keyIdx := make([]int, len(c.srcKey))
	for i, k := range c.srcKey {
		keyIdx[i] = slices.Index(c.srcCols, k)
	}
	var events []change.Event
	var keys [][]any
	keyNames := c.rel.KeyNames()
	changed := slices.Clone(c.srcCols)
	route := func() error {
		perSink, failed := c.g.Route(c.src.Name, events)
		failures += len(failed)
		for _, e := range perSink[c.sink.Name] {
			if !e.Op.IsRow() || e.Schema != c.rel.Schema || e.Table != c.rel.Table || e.After.IsZero() {
				continue
			}
			if int(e.Position.Index) < len(keys) {
				if err := c.checkKey(e.After, keys[e.Position.Index]); err != nil {
					return err
				}
			}
			if err := fn(e.After); err != nil {
				return err
			}
		}
		last, n = keys[len(keys)-1], n+len(events)
		events, keys = events[:0], keys[:0]
		return nil
	}
	// Every row of the scan has the same shape: one Columns for the rows
	// and one for their keys, the key's values found by position.
	rowCols, keyCols := change.NewColumns(c.srcCols...), change.NewColumns(keyNames...)
	keyPos := make([]int, len(keyNames))
	for i, k := range keyNames {
		keyPos[i] = slices.Index(c.srcCols, k)
	}
	err = c.source.scan(ctx, c.srcKey, c.srcCols, r, func(vals []any) error {
		row := change.MakeRow(rowCols, slices.Clone(vals))
		kvals := make([]any, len(keyNames))
		for i, j := range keyPos {
			if j >= 0 {
				kvals[i] = vals[j]
			}
		}
		key := change.MakeRow(keyCols, kvals)
		kv := make([]any, len(keyIdx))
		for i, j := range keyIdx {
			kv[i] = vals[j]
		}
		keys = append(keys, kv)
		events = append(events, change.Event{Op: change.Snapshot, Schema: c.rel.Schema, Table: c.rel.Table, Key: key, After: row,
			Changed: changed, Relation: c.rel, Boundary: true, Position: change.Position{Source: c.src.Name, Index: uint32(len(events))}})
		if len(events) == routeBatch {
			return route()
		}
		return nil
	})
	if err == nil && len(events) > 0 {
		err = route()
	}
	if err != nil {
		return nil, 0, 0, err
	}
	return last, n, failures, nil
}

// routeBatch is how many source rows go through the transforms at once:
// only these are held as whole rows; the chunk keeps keys and hashes.
const routeBatch = 1024

// checkKey fails when the transforms changed a key value: the source's
// key order would then not be the target's.
func (c *comparison) checkKey(after change.Row, src []any) error {
	for i, k := range c.tgtKey {
		v, ok := lookup(after, k)
		if !ok {
			return fmt.Errorf("sink %q: the rows it receives from %s have no key column %q", c.sink.Name, c.pair.Table, k)
		}
		kd := kindOf(c.target.columnTypes()[k], nil)
		if canonical(v, kd) != canonical(src[i], kd) {
			return fmt.Errorf("sink %q: a transform changes key column %q of %s (source %v, sink receives %v): verify needs the key values of the source", c.sink.Name, k, c.pair.Table, display(src[i], kd), display(v, kd))
		}
	}
	return nil
}

// lookup finds a column of an event row by the target's spelling (which
// may differ in case on MySQL).
func lookup(row change.Row, col string) (any, bool) {
	if v, ok := row.Lookup(col); ok {
		return v, true
	}
	for k, v := range row.All() {
		if strings.EqualFold(k, col) {
			return v, true
		}
	}
	return nil, false
}

// columns returns the target columns a row is compared on, in the
// target's spelling, and the event column each comes from.
func (c *comparison) columns(after change.Row) (tgt []string, from map[string]string, err error) {
	from = map[string]string{}
	names := after.Names()
	if c.pair.Mode == modeUpdate {
		// The sink writes the listed columns the event carries, no other.
		names = slices.Clone(c.tgtKey)
		for _, col := range c.ts.Columns {
			if _, ok := lookup(after, col); ok {
				names = append(names, col)
			}
		}
	}
	for _, n := range names {
		col, ok := c.target.column(n)
		if !ok {
			return nil, nil, fmt.Errorf("sink %q: column %q of the rows it receives is not in target table %s", c.sink.Name, n, c.pair.Target)
		}
		if _, dup := from[col]; dup {
			continue
		}
		src := n
		if _, ok := after.Lookup(n); !ok {
			for k := range after.All() {
				if strings.EqualFold(k, n) {
					src = k
				}
			}
		}
		from[col] = src
		tgt = append(tgt, col)
	}
	sort.Strings(tgt)
	return tgt, from, nil
}

// chunkColumns is the compared column set of a chunk: every column the
// sink receives for the chunk's first row (rows of one table through the
// same transforms have the same columns).
type chunkColumns struct {
	cols []string
	from map[string]string
}

func (c *comparison) kindFor(col string, v any) kind {
	if k, ok := c.kinds[col]; ok {
		return k
	}
	k := kindOf(c.target.columnTypes()[col], v)
	if v != nil {
		c.kinds[col] = k // NULL says nothing of JSON kept in text columns
	}
	return k
}

// keyString is the canonical form of a key, the same for both sides.
func (c *comparison) keyString(keyVals []any) string {
	var b strings.Builder
	for i, k := range c.tgtKey {
		b.WriteString(canonical(keyVals[i], kindOf(c.target.columnTypes()[k], nil)))
		b.WriteByte(0xff)
	}
	return b.String()
}

// hashRow is a row's key and hash under the chunk's columns.
func (c *comparison) hashRow(cols []string, val func(col string) (any, bool), keyVals []any) rowSum {
	h := sha256.New()
	key := c.keyString(keyVals)
	h.Write([]byte(key))
	for _, col := range cols {
		v, ok := val(col)
		h.Write([]byte(col))
		h.Write([]byte{0xfe})
		if !ok {
			h.Write([]byte{0xfd})
			continue
		}
		h.Write([]byte(canonical(v, c.kindFor(col, v))))
		h.Write([]byte{0xff})
	}
	var sum [16]byte
	copy(sum[:], h.Sum(nil))
	return rowSum{key: key, keyVals: slices.Clone(keyVals), hash: sum}
}

// readSource reads a chunk of the source and hashes what the sink should
// hold of it.
func (c *comparison) readSource(ctx context.Context, r keyRange) (*side, error) {
	s := &side{}
	var cc *chunkColumns
	var err error
	s.last, s.read, s.failed, err = c.expectedRows(ctx, r, func(after change.Row) error {
		if cc == nil {
			cols, from, err := c.columns(after)
			if err != nil {
				return err
			}
			cc = &chunkColumns{cols, from}
			c.chunkCols = cc
		}
		kv := make([]any, len(c.tgtKey))
		for i, k := range c.tgtKey {
			kv[i], _ = lookup(after, k)
		}
		s.add(c.hashRow(cc.cols, func(col string) (any, bool) { v, ok := after.Lookup(cc.from[col]); return v, ok }, kv))
		return nil
	})
	return s, err
}

// readTarget reads a chunk of the target table, rows in r.
func (c *comparison) readTarget(ctx context.Context, r keyRange) (*side, error) {
	cols := c.targetColumns()
	s := &side{}
	err := c.target.scan(ctx, c.tgtKey, cols, r, func(vals []any) error {
		s.read++
		s.last = c.keyValues(vals[:len(c.tgtKey)])
		if c.deleted != "" && truthy(vals[len(vals)-1]) {
			return nil
		}
		s.add(c.hashRow(c.compared(), func(col string) (any, bool) {
			i := slices.Index(cols, col)
			return vals[i], i >= 0
		}, s.last))
		return nil
	})
	return s, err
}

// keyValues converts a target row's key as the driver returned it into
// values that bound either side's queries: MySQL returns text as bytes,
// which PostgreSQL would take for bytea. Bytes stay bytes only where both
// sides are binary: a text key the MySQL sink keeps as VARBINARY (so that
// it compares byte for byte) is text to the source.
func (c *comparison) keyValues(vals []any) []any {
	out := make([]any, len(vals))
	for i, v := range vals {
		if b, ok := v.([]byte); ok && (kindOf(c.target.columnTypes()[c.tgtKey[i]], nil) != kindBytes || !c.binarySource(c.tgtKey[i])) {
			v = string(b)
		}
		out[i] = v
	}
	return out
}

// binarySource reports whether the source column of key column col is
// bytea.
func (c *comparison) binarySource(col string) bool {
	sc, ok := c.rel.Column(col)
	return !ok || strings.HasPrefix(sc.Type, "bytea")
}

// compared is the current chunk's compared columns (the key alone while
// the source has sent no row).
func (c *comparison) compared() []string {
	if c.chunkCols == nil {
		return c.tgtKey
	}
	return c.chunkCols.cols
}

// targetColumns is what is read from the target: the key, the compared
// columns, then the soft-delete flag.
func (c *comparison) targetColumns() []string {
	cols := slices.Clone(c.tgtKey)
	for _, col := range c.compared() {
		if !slices.Contains(cols, col) {
			cols = append(cols, col)
		}
	}
	if c.deleted != "" {
		cols = append(cols, c.deleted)
	}
	return cols
}

func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case int64:
		return v != 0
	case []byte:
		return string(v) != "0" && string(v) != "" && string(v) != "f"
	case string:
		return v != "0" && v != "" && v != "f"
	}
	return false
}

// settle handles a chunk whose sums differ: it finds the differing keys,
// reads the chunk again after a wait while some remain (a running
// pipeline may not have applied the latest changes yet), and records
// what is left.
//
// Where differences remain, it records the chunk's key range
// (recordRange) for a re-copy, extending the previous chunk's when that
// one differed too (adjacent).
func (c *comparison) settle(ctx context.Context, lo, hi []any, s, t *side, adjacent bool) error {
	missing, extra, different := c.diff(s, t)
	for attempt := 0; attempt < c.opts.Rechecks && len(missing)+len(extra)+len(different) > 0; attempt++ {
		c.pair.Rechecked++
		if c.opts.onRecheck != nil {
			c.opts.onRecheck()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(c.opts.RecheckWait):
		}
		var err error
		if s, err = c.readSource(ctx, keyRange{after: lo, upTo: hi}); err != nil {
			return err
		}
		if t, err = c.readTarget(ctx, keyRange{after: lo, upTo: hi}); err != nil {
			return err
		}
		missing, extra, different = c.diff(s, t)
	}
	c.pair.SourceRows += int64(len(s.rows))
	c.pair.TargetRows += int64(len(t.rows))
	c.pair.Missing += len(missing)
	c.pair.Extra += len(extra)
	c.pair.Different += len(different)
	if len(missing)+len(extra)+len(different) > 0 && c.pair.Unrepairable == "" {
		if err := c.recordRange(ctx, s, t, extra, adjacent); err != nil {
			return err
		}
		c.ranged = true
	}
	for _, group := range []struct {
		kind string
		rows []rowSum
	}{{"missing", missing}, {"extra", extra}, {"different", different}} {
		for _, r := range group.rows {
			if len(c.pair.Diffs) >= c.opts.MaxDiffs {
				c.pair.Truncated = true
				return nil
			}
			d := Diff{Kind: group.kind, Key: map[string]any{}}
			for i, k := range c.tgtKey {
				d.Key[k] = display(r.keyVals[i], kindOf(c.target.columnTypes()[k], nil))
			}
			if group.kind == "different" {
				cols, err := c.columnDiffs(ctx, r.keyVals)
				if err != nil {
					return err
				}
				d.Columns = cols
			}
			c.pair.Diffs = append(c.pair.Diffs, d)
		}
	}
	return nil
}

// diff returns the rows only the source has, only the target has, and
// those both have with different values, as the mode counts them: with
// delete = "skip" rows only the target has are expected, and mode
// "update" neither inserts nor deletes rows.
func (c *comparison) diff(s, t *side) (missing, extra, different []rowSum) {
	inT := make(map[string][16]byte, len(t.rows))
	for _, r := range t.rows {
		inT[r.key] = r.hash
	}
	inS := make(map[string]bool, len(s.rows))
	for _, r := range s.rows {
		inS[r.key] = true
		h, ok := inT[r.key]
		switch {
		case !ok:
			missing = append(missing, r)
		case h != r.hash:
			different = append(different, r)
		}
	}
	for _, r := range t.rows {
		if !inS[r.key] {
			extra = append(extra, r)
		}
	}
	if c.pair.Mode == modeUpdate {
		missing, extra = nil, nil
	}
	if c.pair.Delete == deleteSkip {
		extra = nil
	}
	return missing, extra, different
}

// columnDiffs reads one key on both sides and lists the columns that
// differ.
func (c *comparison) columnDiffs(ctx context.Context, keyVals []any) ([]ColumnDiff, error) {
	var want change.Row
	if _, _, _, err := c.expectedRows(ctx, keyRange{eq: keyVals}, func(after change.Row) error { want = after; return nil }); err != nil {
		return nil, err
	}
	cols := c.targetColumns()
	var got []any
	if err := c.target.scan(ctx, c.tgtKey, cols, keyRange{eq: keyVals}, func(vals []any) error { got = slices.Clone(vals); return nil }); err != nil {
		return nil, err
	}
	if want.IsZero() || got == nil {
		return nil, nil // changed since: the next run will tell
	}
	var out []ColumnDiff
	for _, col := range c.compared() {
		w, ok := want.Lookup(c.chunkCols.from[col])
		i := slices.Index(cols, col)
		k := c.kindFor(col, w)
		switch {
		case !ok:
			out = append(out, ColumnDiff{Column: col, Source: "(absent)", Target: display(got[i], k)})
		case canonical(w, k) != canonical(got[i], k):
			out = append(out, ColumnDiff{Column: col, Source: display(w, k), Target: display(got[i], k)})
		}
	}
	return out, nil
}

// display is a value as a report shows it: NULL as nil, numbers and
// booleans as themselves, times in UTC, bytes in hex, the rest as text.
func display(v any, k kind) any {
	switch v := v.(type) {
	case nil:
		return nil
	case bool, int64:
		return v
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return text(v)
		}
		return v
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		if k == kindBytes {
			return `\x` + hex.EncodeToString(v)
		}
		return string(v)
	}
	return text(v)
}
