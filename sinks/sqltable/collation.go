package sqltable

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// The optional interfaces of a Dialect below are each checked with a type
// assertion where the sink needs them; a dialect implements those that
// apply to its target, and adding one breaks no dialect.

// ServerDialect is implemented by dialects whose SQL depends on the
// server behind the connection (MySQL and MariaDB name their exact
// collations differently). Once connected, Open calls ForServer on the
// Target's dialect, and the sink uses the dialect it returns until the
// next Open; each dialect value stays immutable.
type ServerDialect interface {
	// ForServer returns the dialect for the server db reaches.
	ForServer(ctx context.Context, db *sql.DB) (Dialect, error)
}

// KeyCollations is implemented by dialects whose text columns compare by
// a collation that can call two values equal that PostgreSQL tells apart
// (MySQL's case-insensitive and PAD SPACE collations): under one, rows
// keyed 'abc', 'ABC' and 'abc ' collapse into one target row, and an
// update or delete of one hits another. The sink warns about such key
// columns of existing tables (it creates exact ones).
type KeyCollations interface {
	// CollationsQuery selects the name and collation of each column of a
	// table that has a collation; same parameters as ColumnsQuery.
	CollationsQuery() string
	// InexactCollation says how a key column of type colType (as
	// ColumnsQuery reads it) under collation compares differently from
	// PostgreSQL's byte-for-byte text equality, or "" if it does not.
	InexactCollation(colType, collation string) string
	// ExactKey returns the statement that makes key column col of
	// table, both quoted, of type colType, compare byte for byte.
	ExactKey(table, col, colType string) string
}

// Hinter is implemented by dialects that can say how to fix an error
// Classify calls Fatal beyond what the server's message says (a name the
// server refuses: set table = "..." or rename it in a transform).
type Hinter interface {
	// Hint returns the fix for err, or "".
	Hint(err error) string
}

// learnServer replaces s.d by the dialect for the server s.db reaches,
// where the Target's dialect is a ServerDialect. Open calls it once
// connected.
func (s *Sink) learnServer(ctx context.Context) error {
	sd, ok := s.tgt.Dialect.(ServerDialect)
	if !ok {
		return nil
	}
	d, err := sd.ForServer(ctx, s.db)
	if err != nil {
		return s.wrap(err, "inspect the server")
	}
	s.d = d
	return nil
}

// hint returns ": " and the dialect's fix for err, or "".
func (s *Sink) hint(err error) string {
	if h, ok := s.d.(Hinter); ok {
		if fix := h.Hint(err); fix != "" {
			return ": " + fix
		}
	}
	return ""
}

// inexactWarned remembers the key columns warned about, so that a table
// loaded again (after a rollback or a reopen) is not warned about again.
var inexactWarned sync.Map // inexactKey → struct{}

type inexactKey struct {
	s          *Sink
	table, col string
	collation  string
}

// warnInexactKeys logs a warning, once per sink, table and column, for
// each key column of existing table t whose collation compares text
// inexactly (KeyCollations), naming the table, column, collation and the
// statement that fixes it. In append mode the key matches no rows and
// is not checked. A failure to read the collations is logged too: the
// check never stops the sink.
func (s *Sink) warnInexactKeys(ctx context.Context, t *table) {
	kc, ok := s.d.(KeyCollations)
	if !ok || len(t.key) == 0 || s.opts.mode == ModeAppend || s.tx == nil {
		return
	}
	var schema any
	if t.name.Schema != "" {
		schema = t.name.Schema
	}
	rows, err := s.tx.QueryContext(ctx, kc.CollationsQuery(), schema, t.name.Table)
	if err != nil {
		s.log.Warn("could not check the collations of the target table's key columns", "table", t.name.String(), "error", s.redact(err).Error())
		return
	}
	defer rows.Close()
	for rows.Next() {
		var col, collation string
		if err := rows.Scan(&col, &collation); err != nil {
			s.log.Warn("could not check the collations of the target table's key columns", "table", t.name.String(), "error", s.redact(err).Error())
			return
		}
		key := ""
		for _, k := range t.key {
			if k == col || (s.d.FoldsCase() && strings.EqualFold(k, col)) {
				key = k
			}
		}
		if key == "" {
			continue
		}
		typ := t.cols[col]
		if typ == "" {
			typ = t.cols[key]
		}
		why := kc.InexactCollation(typ, collation)
		if why == "" {
			continue
		}
		if _, seen := inexactWarned.LoadOrStore(inexactKey{s, t.name.String(), col, collation}, struct{}{}); seen {
			continue
		}
		s.log.Warn("target key column "+col+" of "+t.name.String()+" has collation "+collation+", which "+why+
			": rows whose keys PostgreSQL tells apart can collapse into one, and an update or delete can hit another row",
			"table", t.name.String(), "column", col, "collation", collation,
			"fix", kc.ExactKey(t.name.quoted(s.d), s.d.Quote(col), typ))
	}
	if err := rows.Err(); err != nil {
		s.log.Warn("could not check the collations of the target table's key columns", "table", t.name.String(), "error", s.redact(err).Error())
	}
}
