package verify

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"

	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// mysqlTable reads a mysql sink's target table by key range.
type mysqlTable struct {
	db    *sql.DB
	ident string            // quoted database.table
	types map[string]string // column → COLUMN_TYPE, lower-case
	// binary lists key columns with a collation (text): they are compared
	// as BINARY so that both sides agree on the order.
	binary map[string]bool
	// names maps lower-case column names to the table's spelling: MySQL
	// matches column names case-insensitively, and so does the sink.
	names map[string]string
}

// openMySQL connects with the sink's own DSN handling (UTC, strict mode).
func openMySQL(dsn string) (*sql.DB, error) {
	cfg, err := mysqlsink.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("dsn: %w", err), cfg.Passwd)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(2)
	return db, nil
}

// openMySQLTable describes database.name (database "" is the DSN's); ok
// is false when the table does not exist.
func openMySQLTable(ctx context.Context, db *sql.DB, database, name string) (*mysqlTable, bool, error) {
	var schema any
	if database != "" {
		schema = database
	}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), COALESCE(COLLATION_NAME, 'binary'), DATABASE()
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`, schema, name)
	if err != nil {
		return nil, false, fmt.Errorf("describe %s: %w", name, err)
	}
	defer rows.Close()
	t := &mysqlTable{db: db, types: map[string]string{}, binary: map[string]bool{}, names: map[string]string{}}
	for rows.Next() {
		var col, typ, coll, current string
		if err := rows.Scan(&col, &typ, &coll, &current); err != nil {
			return nil, false, err
		}
		if database == "" {
			database = current
		}
		t.types[col] = typ
		t.names[strings.ToLower(col)] = col
		// Even a _bin collation is not byte order: utf8mb4_bin pads
		// trailing spaces, and a key compared with a binary literal
		// changes collation. BINARY is the bytes, as COLLATE "C" is.
		t.binary[col] = coll != "binary"
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("describe %s: %w", name, err)
	}
	t.ident = quoteMy(database) + "." + quoteMy(name)
	return t, len(t.types) > 0, nil
}

func quoteMy(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func (t *mysqlTable) columnTypes() map[string]string { return t.types }

// column returns the table's spelling of a column name.
func (t *mysqlTable) column(name string) (string, bool) {
	if _, ok := t.types[name]; ok {
		return name, true
	}
	c, ok := t.names[strings.ToLower(name)]
	return c, ok
}

func (t *mysqlTable) keyExpr(col string) string {
	if t.binary[col] {
		return "BINARY " + quoteMy(col)
	}
	return quoteMy(col)
}

// compare is key <op> vals spelled out column by column (MariaDB does not
// use an index for row-constructor comparisons): for op ">" it is
// k1 > v1 OR (k1 = v1 AND (k2 > v2 OR ...)).
func (t *mysqlTable) compare(key []string, op string, vals []any, args *[]any) string {
	k := t.keyExpr(key[0])
	if len(key) == 1 || op == "=" {
		*args = append(*args, mysqlArg(vals[0]))
		if len(key) == 1 {
			return k + " " + op + " ?"
		}
		return k + " = ? AND " + t.compare(key[1:], op, vals[1:], args)
	}
	strict := op
	if op == "<=" {
		strict = "<"
	}
	*args = append(*args, mysqlArg(vals[0]), mysqlArg(vals[0]))
	return "(" + k + " " + strict + " ? OR (" + k + " = ? AND (" + t.compare(key[1:], op, vals[1:], args) + ")))"
}

// mysqlArg converts a key value of an event into a driver argument.
func mysqlArg(v any) any {
	switch v := v.(type) {
	case bool:
		if v {
			return int64(1)
		}
		return int64(0)
	case nil, int64, float64, string, []byte:
		return v
	}
	return text(v)
}

func (t *mysqlTable) scan(ctx context.Context, key, cols []string, r keyRange, fn func([]any) error) error {
	var sel, order, where []string
	var args []any
	for _, c := range cols {
		sel = append(sel, quoteMy(c))
	}
	for _, k := range key {
		order = append(order, t.keyExpr(k))
	}
	if r.eq != nil {
		where = append(where, t.compare(key, "=", r.eq, &args))
	}
	if r.after != nil {
		where = append(where, "("+t.compare(key, ">", r.after, &args)+")")
	}
	if r.upTo != nil {
		where = append(where, "("+t.compare(key, "<=", r.upTo, &args)+")")
	}
	q := "SELECT " + strings.Join(sel, ", ") + " FROM " + t.ident
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + strings.Join(order, ", ")
	if r.limit > 0 {
		q += " LIMIT " + strconv.Itoa(r.limit)
	}
	rows, err := t.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", t.ident, err)
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", t.ident, err)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", t.ident, err)
	}
	return nil
}
