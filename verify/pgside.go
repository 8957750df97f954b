package verify

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-cdc/sluice/sources/postgres"
)

// connectPG opens a connection for reading; errors never quote the
// password.
func connectPG(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn is not a PostgreSQL URL or keyword/value string (postgres://USER:PASSWORD@HOST:PORT/DATABASE)")
	}
	for k, v := range postgres.SessionParams() {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["application_name"] = "sluice verify"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("connect to PostgreSQL: %w", err), cfg.Password)
	}
	return conn, nil
}

// pgTable reads one PostgreSQL table (a source table or a postgres
// sink's target) by key range, decoding values as the postgres source
// does.
type pgTable struct {
	conn  *pgx.Conn
	ident string            // quoted schema.table
	types map[string]string // column → format_type, for casts of bounds
	// binary lists key columns whose collation does not sort by bytes:
	// they are compared under COLLATE "C" so that both sides agree.
	binary map[string]bool
	// collation is each column's collation where it is not the
	// database's default, as COLLATE takes it ("pg_catalog"."C").
	collation map[string]string
	values    *postgres.Values
}

// openPGTable describes schema.name; ok is false when it does not exist.
func openPGTable(ctx context.Context, conn *pgx.Conn, schema, name string) (*pgTable, bool, error) {
	if schema == "" {
		if err := conn.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
			return nil, false, fmt.Errorf("current schema: %w", err)
		}
	}
	rows, err := conn.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.atttypid,
		coalesce(co.collname NOT IN ('C', 'POSIX') AND (co.collname <> 'default' OR d.datcollate NOT IN ('C', 'POSIX')), false),
		CASE WHEN co.oid IS NULL OR co.collname = 'default' THEN '' ELSE quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
		CROSS JOIN pg_database d
		WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
		AND d.datname = current_database()`, schema, name)
	if err != nil {
		return nil, false, fmt.Errorf("describe %s.%s: %w", schema, name, err)
	}
	t := &pgTable{conn: conn, ident: pgx.Identifier{schema, name}.Sanitize(), types: map[string]string{}, binary: map[string]bool{},
		collation: map[string]string{}, values: postgres.NewValues()}
	var oids []uint32
	for rows.Next() {
		var col, typ, coll string
		var oid uint32
		var bin bool
		if err := rows.Scan(&col, &typ, &oid, &bin, &coll); err != nil {
			rows.Close()
			return nil, false, err
		}
		t.types[col] = typ
		t.binary[col] = bin
		if coll != "" {
			t.collation[col] = coll
		}
		oids = append(oids, oid)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("describe %s.%s: %w", schema, name, err)
	}
	if err := t.values.Prepare(ctx, conn, oids); err != nil {
		return nil, false, fmt.Errorf("describe %s.%s: %w", schema, name, err)
	}
	return t, len(t.types) > 0, nil
}

func (t *pgTable) columnTypes() map[string]string { return t.types }

// keyExpr is a key column as ordered and compared.
func (t *pgTable) keyExpr(col string) string {
	q := pgx.Identifier{col}.Sanitize()
	if t.binary[col] {
		return q + ` COLLATE "C"`
	}
	return q
}

func (t *pgTable) param(i int, col string) string {
	p := "$" + strconv.Itoa(i) + "::text::" + t.types[col]
	if t.binary[col] {
		p += ` COLLATE "C"`
	}
	return p
}

// scan calls fn with each row (values of cols, decoded) whose key lies
// in r, in key order.
func (t *pgTable) scan(ctx context.Context, key, cols []string, r keyRange, fn func([]any) error) error {
	var sel, exprs []string
	for _, c := range cols {
		sel = append(sel, pgx.Identifier{c}.Sanitize())
	}
	for _, k := range key {
		exprs = append(exprs, t.keyExpr(k))
	}
	var where []string
	var params [][]byte
	bound := func(op string, vals []any) {
		var ph []string
		for i, k := range key {
			params = append(params, []byte(pgText(vals[i])))
			ph = append(ph, t.param(len(params), k))
		}
		where = append(where, "("+strings.Join(exprs, ", ")+") "+op+" ("+strings.Join(ph, ", ")+")")
	}
	if r.eq != nil {
		bound("=", r.eq)
	}
	if r.after != nil {
		bound(">", r.after)
	}
	if r.upTo != nil {
		bound("<=", r.upTo)
	}
	sql := "SELECT " + strings.Join(sel, ", ") + " FROM " + t.ident
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY " + strings.Join(exprs, ", ")
	if r.limit > 0 {
		sql += " LIMIT " + strconv.Itoa(r.limit)
	}
	rr := t.conn.PgConn().ExecParams(ctx, sql, params, nil, nil, nil)
	fds := rr.FieldDescriptions()

	vals := make([]any, len(cols))
	for rr.NextRow() {
		for i, raw := range rr.Values() {
			if raw == nil {
				vals[i] = nil
				continue
			}
			v, err := t.values.Decode(fds[i].DataTypeOID, raw)
			if err != nil {
				rr.Close()
				return fmt.Errorf("%s, column %s (%s): %w", t.ident, cols[i], t.types[cols[i]], err)
			}
			vals[i] = v
		}
		if err := fn(vals); err != nil {
			rr.Close()
			return err
		}
	}
	if _, err := rr.Close(); err != nil {
		return fmt.Errorf("read %s: %w", t.ident, err)
	}
	return nil
}

// pgText is the text form of a key value, for a parameter cast to the
// column's type.
func pgText(v any) string {
	switch v := v.(type) {
	case bool:
		if v {
			return "t"
		}
		return "f"
	case []byte:
		return `\x` + hex.EncodeToString(v)
	case time.Time:
		return v.UTC().Format("2006-01-02 15:04:05.999999Z07:00")
	}
	return text(v)
}
