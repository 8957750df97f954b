package sqltable

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// shape identifies the text of a statement the batcher runs on a table:
// the same shape is the same text, so it is built once per table and
// the server prepares it once per connection.
type shape struct {
	kind opKind
	part uint8  // which statement of the kind (opPatch runs several)
	cols string // the statement's columns, NUL-separated
	rows int    // 0 where the text does not depend on the row count (array parameters)
}

// colsKey is cols as a shape's cols.
func colsKey(cols []string) string { return strings.Join(cols, "\x00") }

// text returns t's statement of shape k, building it the first time.
// The texts go when t's columns change (setColumns): a text names the
// columns' types in casts.
func (t *table) text(k shape, build func() string) string {
	if q, ok := t.texts[k]; ok {
		return q
	}
	q := build()
	if t.texts == nil {
		t.texts = map[shape]string{}
	}
	t.texts[k] = q
	return q
}

// arrayable reports, once per column set, whether every column of cols
// can travel as one array parameter (ArrayInserter).
func (t *table) arrayable(d Dialect, key string, cols []string) bool {
	if ok, known := t.arrays[key]; known {
		return ok
	}
	ai, ok := d.(ArrayInserter)
	for _, c := range cols {
		if !ok {
			break
		}
		_, ok = ai.ArrayType(t.cols[c])
	}
	if t.arrays == nil {
		t.arrays = map[string]bool{}
	}
	t.arrays[key] = ok
	return ok
}

// setColumns replaces what the sink knows of t's columns, and forgets
// the statements built for the old ones along with their prepared
// statements.
func (s *Sink) setColumns(t *table, cols map[string]string) {
	t.cols = cols
	for _, q := range t.texts {
		s.unprepare(q)
	}
	t.texts, t.arrays = nil, nil
}

// maxStatements bounds the statement texts the sink keeps prepared or
// counts uses of. A stream of odd-sized batches makes many texts used
// once; the least recently used goes first.
const maxStatements = 256

// prepareWait bounds how long preparing a statement may wait for a
// connection of the pool.
const prepareWait = 100 * time.Millisecond

// prepared is one statement text the sink has run: how often, and its
// statement prepared on the pool once it has run twice.
type prepared struct {
	stmt *sql.Stmt
	uses int
	last uint64 // s.clock at the last use
	// tx is stmt bound to the open transaction, when gen is s.txGen.
	tx  *sql.Stmt
	gen uint64
}

// execCached runs a statement of a text that repeats (a batch shape, the
// checkpoint upsert) in the open transaction: from its second use on as
// a statement prepared once per connection, so that neither side
// parses it again. A text seen once runs as it is: preparing costs a
// round trip that only pays back on reuse.
func (s *Sink) execCached(ctx context.Context, query string, args ...any) error {
	if s.tx == nil {
		return s.exec(ctx, query, args...)
	}
	p := s.stmts[query]
	if p == nil {
		if len(s.stmts) >= maxStatements {
			s.evictStatement()
		}
		if s.stmts == nil {
			s.stmts = map[string]*prepared{}
		}
		p = &prepared{}
		s.stmts[query] = p
	}
	s.clock++
	p.last = s.clock
	p.uses++
	if p.stmt == nil && p.uses >= 2 && s.db.Stats().Idle > 0 {
		// Preparing takes a connection of the pool besides the one the
		// transaction holds: only when one is idle, and never waiting for
		// one (the pool is small, and whoever holds the other connection
		// may be waiting for this transaction), else the text runs as it
		// is and is prepared at a later use.
		pctx, cancel := context.WithTimeout(ctx, prepareWait)
		if st, err := s.db.PrepareContext(pctx, query); err == nil {
			p.stmt = st
		} // else run it as it is, which reports the error as the statement's
		cancel()
	}
	var err error
	if p.stmt == nil {
		_, err = s.tx.ExecContext(ctx, query, args...)
	} else {
		if p.tx == nil || p.gen != s.txGen {
			p.tx, p.gen = s.tx.StmtContext(ctx, p.stmt), s.txGen
		}
		_, err = p.tx.ExecContext(ctx, args...)
	}
	if err != nil {
		return &statementError{query: query, err: err, first: -1}
	}
	return nil
}

// evictStatement forgets the least recently used text.
func (s *Sink) evictStatement() {
	var oldest string
	var at uint64
	for q, p := range s.stmts {
		if oldest == "" || p.last < at {
			oldest, at = q, p.last
		}
	}
	s.unprepare(oldest)
}

// unprepare forgets query and closes its prepared statement. A
// connection the open transaction holds closes it when released.
func (s *Sink) unprepare(query string) {
	if p := s.stmts[query]; p != nil {
		if p.stmt != nil {
			_ = p.stmt.Close()
		}
		delete(s.stmts, query)
	}
}

// unprepareAll closes every prepared statement.
func (s *Sink) unprepareAll() {
	for q := range s.stmts {
		s.unprepare(q)
	}
}
