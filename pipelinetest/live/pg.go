package live

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/engine/change"
)

// pgServer is one PostgreSQL database a session uses (a source's or a
// postgres sink's dsn): one connection that holds the session's advisory
// lock and runs the scratch DDL and the tests' input statements.
type pgServer struct {
	dsn  string
	conn *pgx.Conn
}

// pg returns the session's connection to the database of dsn, connecting,
// locking and sweeping the leftovers of dead sessions the first time.
func (s *Session) pg(ctx context.Context, dsn string) (*pgServer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.pgs[dsn]; ok {
		return p, nil
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn is not a PostgreSQL URL or keyword/value string")
	}
	cfg.RuntimeParams["timezone"] = "UTC"
	cfg.RuntimeParams["datestyle"] = "ISO"
	cfg.RuntimeParams["application_name"] = "sluice test --live"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %s", where(cfg.Host, cfg.Port, cfg.Database), pgMessage(err))
	}
	// Another connection of this session to the same database (another
	// dsn string for it) may hold the lock already: then it stays held.
	if _, err := conn.Exec(ctx, "SELECT pg_try_advisory_lock($1)", lockKey(s.run)); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("take the session's lock in database %s: %s", cfg.Database, pgMessage(err))
	}
	p := &pgServer{dsn: dsn, conn: conn}
	swept, err := p.sweep(ctx, s.run)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("remove the leftovers of interrupted runs in database %s: %w", cfg.Database, err)
	}
	if len(swept) > 0 {
		s.log("removed what an interrupted `sluice test --live` left in PostgreSQL database %s at %s: %s", cfg.Database, where(cfg.Host, cfg.Port, ""), swept)
	}
	s.pgs[dsn] = p
	return p, nil
}

func where(host string, port uint16, db string) string {
	s := host
	if !strings.HasPrefix(host, "/") {
		s += ":" + strconv.Itoa(int(port))
	}
	if db != "" {
		s += "/" + db
	}
	return s
}

// pgMessage is an error's text without the connection string (pgx quotes
// parts of it in some errors).
func pgMessage(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

func (p *pgServer) close(ctx context.Context) error {
	return p.conn.Close(ctx)
}

// sweep removes the scratch objects of sessions other than run whose lock
// is free (they were killed): replication slots first (their walsender
// terminated), then publications and schemas.
func (p *pgServer) sweep(ctx context.Context, run string) (leftovers, error) {
	var names []struct{ kind, name string }
	rows, err := p.conn.Query(ctx, `
		SELECT 'slot', slot_name::text FROM pg_replication_slots WHERE slot_name LIKE 'sluice\_scratch\_%' AND database = current_database()
		UNION ALL SELECT 'publication', pubname::text FROM pg_publication WHERE pubname LIKE 'sluice\_scratch\_%'
		UNION ALL SELECT 'schema', nspname::text FROM pg_namespace WHERE nspname LIKE 'sluice\_scratch\_%'`)
	if err != nil {
		return nil, fmt.Errorf("list scratch objects: %s", pgMessage(err))
	}
	for rows.Next() {
		var kind, name string
		if err := rows.Scan(&kind, &name); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, struct{ kind, name string }{kind, name})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	dead := map[string]bool{}
	var swept leftovers
	for _, o := range names {
		owner := runOf(o.name)
		if owner == "" || owner == run {
			continue
		}
		isDead, seen := dead[owner]
		if !seen {
			var got bool
			if err := p.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", lockKey(owner)).Scan(&got); err != nil {
				return swept, fmt.Errorf("test the lock of session %s: %s", owner, pgMessage(err))
			}
			if got {
				// Held by us now: the owner is gone. Released below.
				defer p.conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey(owner))
			}
			dead[owner], isDead = got, got
		}
		if !isDead {
			continue
		}
		var err error
		switch o.kind {
		case "slot":
			err = p.dropSlot(ctx, o.name)
		case "publication":
			_, err = p.conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+ident(o.name))
		case "schema":
			_, err = p.conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident(o.name)+" CASCADE")
		}
		if err != nil {
			return swept, fmt.Errorf("drop %s %s: %s", o.kind, o.name, pgMessage(err))
		}
		swept = append(swept, o.kind+" "+o.name)
	}
	return swept, nil
}

// dropSlot drops a replication slot, terminating the walsender that may
// still hold it (a killed client's connection takes a moment to be
// noticed).
func (p *pgServer) dropSlot(ctx context.Context, slot string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := p.conn.Exec(ctx, `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid IS NOT NULL`, slot)
		if err == nil {
			_, err = p.conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, slot)
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

// qualified quotes schema.table.
func qualified(schema, table string) string { return pgx.Identifier{schema, table}.Sanitize() }

// pgTable is what a session knows of a table it created: its columns (in
// order) with their types, and which it may not write (generated).
type pgTable struct {
	schema, name string
	columns      []pgColumn
	key          []string
	copied       bool // created LIKE the real table, else from the inputs
}

type pgColumn struct {
	name, typ string
	generated bool
}

func (t *pgTable) column(name string) (pgColumn, bool) {
	for _, c := range t.columns {
		if c.name == name {
			return c, true
		}
	}
	return pgColumn{}, false
}

// realTable returns the schema of table schema.name in the database, and
// whether it exists; with schema "" it is looked up by the search_path.
func (p *pgServer) realTable(ctx context.Context, schema, name string) (string, bool, error) {
	spec := ident(name)
	if schema != "" {
		spec = qualified(schema, name)
	}
	var got *string
	err := p.conn.QueryRow(ctx, `SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`, spec).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("look up table %s: %s", spec, pgMessage(err))
	}
	return *got, true, nil
}

// createSchema creates a scratch schema.
func (p *pgServer) createSchema(ctx context.Context, schema string) error {
	if _, err := p.conn.Exec(ctx, "CREATE SCHEMA "+ident(schema)); err != nil {
		return fmt.Errorf("create scratch schema %s: %s", schema, pgMessage(err))
	}
	return nil
}

// dropSchema drops a scratch schema and everything in it.
func (p *pgServer) dropSchema(ctx context.Context, schema string) error {
	if _, err := p.conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+ident(schema)+" CASCADE"); err != nil {
		return fmt.Errorf("drop scratch schema %s: %s", schema, pgMessage(err))
	}
	return nil
}

// copyTable creates scratch.name LIKE realSchema.name INCLUDING ALL, with
// the real table's replica identity where it is FULL.
func (p *pgServer) copyTable(ctx context.Context, scratch, realSchema, name string) error {
	if _, err := p.conn.Exec(ctx, "CREATE TABLE "+qualified(scratch, name)+" (LIKE "+qualified(realSchema, name)+" INCLUDING ALL)"); err != nil {
		return fmt.Errorf("copy table %s.%s: %s", realSchema, name, pgMessage(err))
	}
	var identity string
	if err := p.conn.QueryRow(ctx, "SELECT relreplident::text FROM pg_class WHERE oid = to_regclass($1)", qualified(realSchema, name)).Scan(&identity); err != nil {
		return fmt.Errorf("read the replica identity of %s.%s: %s", realSchema, name, pgMessage(err))
	}
	if identity == "f" {
		if _, err := p.conn.Exec(ctx, "ALTER TABLE "+qualified(scratch, name)+" REPLICA IDENTITY FULL"); err != nil {
			return fmt.Errorf("copy the replica identity of %s.%s: %s", realSchema, name, pgMessage(err))
		}
	}
	return nil
}

// createTable creates scratch.name with the given columns (name → SQL
// type, in order) and primary key; without a key, with REPLICA IDENTITY
// FULL so that its updates and deletes can be replicated.
func (p *pgServer) createTable(ctx context.Context, scratch, name string, cols []pgColumn, key []string) error {
	var defs []string
	for _, c := range cols {
		defs = append(defs, ident(c.name)+" "+c.typ)
	}
	if len(key) > 0 {
		quoted := make([]string, len(key))
		for i, k := range key {
			quoted[i] = ident(k)
		}
		defs = append(defs, "PRIMARY KEY ("+strings.Join(quoted, ", ")+")")
	}
	stmt := "CREATE TABLE " + qualified(scratch, name) + " (" + strings.Join(defs, ", ") + ")"
	if _, err := p.conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("create table %s from the inputs: %s", name, pgMessage(err))
	}
	if len(key) == 0 {
		if _, err := p.conn.Exec(ctx, "ALTER TABLE "+qualified(scratch, name)+" REPLICA IDENTITY FULL"); err != nil {
			return fmt.Errorf("create table %s from the inputs: %s", name, pgMessage(err))
		}
	}
	return nil
}

// describe reads a table's columns (generated ones flagged) and primary
// key.
func (p *pgServer) describe(ctx context.Context, schema, name string) (*pgTable, error) {
	t := &pgTable{schema: schema, name: name}
	rows, err := p.conn.Query(ctx, `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`, qualified(schema, name))
	if err != nil {
		return nil, fmt.Errorf("describe %s: %s", name, pgMessage(err))
	}
	for rows.Next() {
		var c pgColumn
		if err := rows.Scan(&c.name, &c.typ, &c.generated); err != nil {
			rows.Close()
			return nil, err
		}
		t.columns = append(t.columns, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = p.conn.Query(ctx, `SELECT a.attname::text FROM pg_index i
		JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY k.ord`, qualified(schema, name))
	if err != nil {
		return nil, fmt.Errorf("read the primary key of %s: %s", name, pgMessage(err))
	}
	t.key, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the primary key of %s: %s", name, pgMessage(err))
	}
	return t, nil
}

// dropReplication drops a scratch slot and publication (either may be
// missing).
func (p *pgServer) dropReplication(ctx context.Context, slot, publication string) error {
	if err := p.dropSlot(ctx, slot); err != nil {
		return fmt.Errorf("drop scratch slot %s: %s", slot, pgMessage(err))
	}
	if _, err := p.conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+ident(publication)); err != nil {
		return fmt.Errorf("drop scratch publication %s: %s", publication, pgMessage(err))
	}
	return nil
}

// pgxSimple runs a statement with the simple protocol: its arguments
// travel as quoted literals, which PostgreSQL casts to each column's type.
const pgxSimple = pgx.QueryExecModeSimpleProtocol

// apply runs one statement in a transaction of its own and returns how
// many rows it changed. Before it commits, xid is told the transaction's
// id as logical decoding reports it (32 bits), so that the events it
// causes can be told from others as soon as they are read.
func (p *pgServer) apply(ctx context.Context, stmt string, args []any, xid func(uint32)) (rows int64, err error) {
	tx, err := p.conn.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var full int64
	if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&full); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, stmt, append([]any{pgxSimple}, args...)...)
	if err != nil {
		return 0, err
	}
	xid(uint32(full))
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

// rows reads every row of schema.name, each column typed by its type.
func (p *pgServer) rows(ctx context.Context, schema, name string) ([]change.Row, *pgTable, error) {
	t, err := p.describe(ctx, schema, name)
	if err != nil {
		return nil, nil, err
	}
	if len(t.columns) == 0 {
		return nil, t, nil
	}
	sel := make([]string, len(t.columns))
	for i, c := range t.columns {
		sel[i] = ident(c.name) + "::text"
	}
	order := ""
	if len(t.key) > 0 {
		quoted := make([]string, len(t.key))
		for i, k := range t.key {
			quoted[i] = ident(k)
		}
		order = " ORDER BY " + strings.Join(quoted, ", ")
	}
	rs, err := p.conn.Query(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+qualified(schema, name)+order)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %s", name, pgMessage(err))
	}
	defer rs.Close()
	var out []change.Row
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	rowCols := change.NewColumns(names...)
	for rs.Next() {
		vals := make([]*string, len(t.columns))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		row := make([]any, len(t.columns))
		for i, c := range t.columns {
			if vals[i] != nil {
				row[i] = pgValue(c.typ, *vals[i])
			}
		}
		out = append(out, change.MakeRow(rowCols, row))
	}
	return out, t, rs.Err()
}

// pgValue types a column's text as sluice's values do (sources/postgres
// decodes the same types to the same Go types): whole numbers int64,
// numeric exact, floats float64, booleans, JSON by content, bytea as
// bytes, timestamps and dates as UTC times; anything else stays text.
func pgValue(typ, text string) any {
	switch {
	case typ == "smallint" || typ == "integer" || typ == "bigint" || typ == "oid":
		if n, err := strconv.ParseInt(text, 10, 64); err == nil {
			return n
		}
	case strings.HasPrefix(typ, "numeric"):
		return change.Numeric(text)
	case typ == "real" || typ == "double precision":
		if f, err := strconv.ParseFloat(text, 64); err == nil {
			return f
		}
	case typ == "boolean":
		return text == "t" || text == "true"
	case typ == "json" || typ == "jsonb":
		return change.JSON(text)
	case typ == "bytea":
		if b, err := hex.DecodeString(strings.TrimPrefix(text, `\x`)); err == nil {
			return b
		}
	case strings.HasPrefix(typ, "timestamp") || typ == "date":
		for _, layout := range []string{"2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999", "2006-01-02"} {
			if t, err := time.Parse(layout, text); err == nil {
				return t.UTC()
			}
		}
	}
	return text
}

// withSearchPath returns dsn connecting with search_path = schema, so a
// sink's unqualified target tables and its sluice_checkpoints table live
// in that schema.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}
