package live

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/tlsfiles"
	mysqlsink "github.com/sluice-cdc/sluice/sinks/mysql"
)

// mysqlServer is one MySQL or MariaDB server a session uses: one
// connection that holds the session's named lock and runs the scratch
// DDL and the reads of scratch tables.
type mysqlServer struct {
	db   *sql.DB
	conn *sql.Conn
}

// mysqlConfig parses a mysql sink's dsn as the sink does, with its tls
// block.
func mysqlConfig(dsn string, t *dsl.TLS) (*gomysql.Config, error) {
	cfg, err := mysqlsink.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if t != nil {
		tc, err := tlsfiles.Config(t)
		if err != nil {
			return nil, err
		}
		cfg.TLS, cfg.TLSConfig, cfg.AllowFallbackToPlaintext = tc, "", false
	}
	return cfg, nil
}

// mysql returns the session's connection to the server of cfg,
// connecting, locking and sweeping the leftovers of dead sessions the
// first time.
func (s *Session) mysql(ctx context.Context, cfg *gomysql.Config) (*mysqlServer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := cfg.Net + "(" + cfg.Addr + ")" + cfg.User
	if m, ok := s.mysqls[key]; ok {
		return m, nil
	}
	c := cfg.Clone()
	c.DBName = ""
	connector, err := gomysql.NewConnector(c)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err == nil {
		err = conn.PingContext(ctx)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to MySQL at %s: %s", cfg.Addr, redact(err, cfg.Passwd))
	}
	// The first connection to a server holds the session's lock there
	// (a lock is the server's, whoever takes it).
	if !s.mysqlLocked[cfg.Addr] {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", lockName(s.run)).Scan(&got); err != nil || got.Int64 != 1 {
			conn.Close()
			db.Close()
			if err == nil {
				err = errors.New("another connection holds it")
			}
			return nil, fmt.Errorf("take the session's lock on MySQL at %s: %s", cfg.Addr, redact(err, cfg.Passwd))
		}
		s.mysqlLocked[cfg.Addr] = true
	}
	m := &mysqlServer{db: db, conn: conn}
	swept, err := m.sweep(ctx, s.run)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("remove the leftovers of interrupted runs on MySQL at %s: %w", cfg.Addr, err)
	}
	if len(swept) > 0 {
		s.log("removed what an interrupted `sluice test --live` left on MySQL at %s: %s", cfg.Addr, swept)
	}
	s.mysqls[key] = m
	return m, nil
}

func redact(err error, password string) string {
	s := err.Error()
	if password != "" {
		s = strings.ReplaceAll(s, password, "***")
	}
	return s
}

func (m *mysqlServer) close() error {
	return errors.Join(m.conn.Close(), m.db.Close())
}

func quoteMy(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// sweep drops the scratch databases of sessions other than run whose lock
// is free (they were killed).
func (m *mysqlServer) sweep(ctx context.Context, run string) (leftovers, error) {
	rows, err := m.conn.QueryContext(ctx, `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'sluice\_scratch\_%'`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var swept leftovers
	for _, n := range names {
		owner := runOf(n)
		if owner == "" || owner == run {
			continue
		}
		var free sql.NullInt64
		if err := m.conn.QueryRowContext(ctx, "SELECT IS_FREE_LOCK(?)", lockName(owner)).Scan(&free); err != nil {
			return swept, err
		}
		if free.Int64 != 1 {
			continue // its session is still running
		}
		if err := m.dropDatabase(ctx, n); err != nil {
			return swept, err
		}
		swept = append(swept, "database "+n)
	}
	return swept, nil
}

func (m *mysqlServer) createDatabase(ctx context.Context, name string) error {
	if _, err := m.conn.ExecContext(ctx, "CREATE DATABASE "+quoteMy(name)+" CHARACTER SET utf8mb4"); err != nil {
		return fmt.Errorf("create scratch database %s: %w", name, err)
	}
	return nil
}

func (m *mysqlServer) dropDatabase(ctx context.Context, name string) error {
	if _, err := m.conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteMy(name)); err != nil {
		return fmt.Errorf("drop scratch database %s: %w", name, err)
	}
	return nil
}

// copyTable creates scratch.table with the DDL of database.table when
// that exists, and reports whether it did.
func (m *mysqlServer) copyTable(ctx context.Context, database, table, scratch string) (bool, error) {
	var n int
	if err := m.conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", database, table).Scan(&n); err != nil {
		return false, fmt.Errorf("look up table %s.%s: %w", database, table, err)
	}
	if n == 0 {
		return false, nil
	}
	var name, ddl string
	if err := m.conn.QueryRowContext(ctx, "SHOW CREATE TABLE "+quoteMy(database)+"."+quoteMy(table)).Scan(&name, &ddl); err != nil {
		return false, fmt.Errorf("read the DDL of %s.%s: %w", database, table, err)
	}
	head := "CREATE TABLE " + quoteMy(table)
	if !strings.HasPrefix(ddl, head) {
		return false, fmt.Errorf("the DDL of %s.%s does not start with %s", database, table, head)
	}
	ddl = "CREATE TABLE " + quoteMy(scratch) + "." + quoteMy(table) + ddl[len(head):]
	// Foreign keys may name tables the scratch database lacks.
	if _, err := m.conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		return false, err
	}
	_, err := m.conn.ExecContext(ctx, ddl)
	if _, e := m.conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 1"); err == nil {
		err = e
	}
	if err != nil {
		return false, fmt.Errorf("copy table %s.%s: %w", database, table, err)
	}
	return true, nil
}

// mysqlColumn is a column of a table as information_schema shows it.
type mysqlColumn struct {
	name, dataType, columnType string
	json                       bool
}

// rows reads every row of database.table, each column typed by its type,
// and the table's primary key.
func (m *mysqlServer) rows(ctx context.Context, database, table string) ([]change.Row, []string, bool, error) {
	rs, err := m.conn.QueryContext(ctx, `SELECT COLUMN_NAME, LOWER(DATA_TYPE), LOWER(COLUMN_TYPE), COLUMN_KEY FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, database, table)
	if err != nil {
		return nil, nil, false, fmt.Errorf("describe %s: %w", table, err)
	}
	var cols []mysqlColumn
	var key []string
	for rs.Next() {
		var c mysqlColumn
		var k string
		if err := rs.Scan(&c.name, &c.dataType, &c.columnType, &k); err != nil {
			rs.Close()
			return nil, nil, false, err
		}
		if k == "PRI" {
			key = append(key, c.name)
		}
		cols = append(cols, c)
	}
	rs.Close()
	if err := rs.Err(); err != nil {
		return nil, nil, false, err
	}
	if len(cols) == 0 {
		return nil, nil, false, nil
	}
	key, err = m.primaryKey(ctx, database, table, key)
	if err != nil {
		return nil, nil, false, err
	}
	// MariaDB's JSON is LONGTEXT with a json_valid() check.
	if checks, err := m.conn.QueryContext(ctx, `SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?`, database, table); err == nil {
		for checks.Next() {
			var clause string
			if checks.Scan(&clause) == nil {
				for i := range cols {
					if strings.Contains(clause, "json_valid(`"+cols[i].name+"`)") {
						cols[i].json = true
					}
				}
			}
		}
		checks.Close()
	}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = quoteMy(c.name)
	}
	order := ""
	if len(key) > 0 {
		quoted := make([]string, len(key))
		for i, k := range key {
			quoted[i] = quoteMy(k)
		}
		order = " ORDER BY " + strings.Join(quoted, ", ")
	}
	rs, err = m.conn.QueryContext(ctx, "SELECT "+strings.Join(sel, ", ")+" FROM "+quoteMy(database)+"."+quoteMy(table)+order)
	if err != nil {
		return nil, nil, false, fmt.Errorf("read %s: %w", table, err)
	}
	defer rs.Close()
	var out []change.Row
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	rowCols := change.NewColumns(names...)
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, false, err
		}
		for i, c := range cols {
			vals[i] = mysqlValue(c, vals[i])
		}
		out = append(out, change.MakeRow(rowCols, vals))
	}
	return out, key, true, rs.Err()
}

// primaryKey orders the primary-key columns by their place in the key.
func (m *mysqlServer) primaryKey(ctx context.Context, database, table string, cols []string) ([]string, error) {
	if len(cols) < 2 {
		return cols, nil
	}
	rs, err := m.conn.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX`, database, table)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var c string
		if err := rs.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rs.Err()
}

// mysqlValue types a value the text protocol returned by its column's
// type, as docs/type-mapping.md maps sluice's values: tinyint(1) (what
// BOOLEAN is) and bit(1) as booleans, integers as int64, decimals exact,
// floats as float64, JSON by content, binary types as bytes, times as
// the driver parses them (UTC); anything else as text.
func mysqlValue(c mysqlColumn, v any) any {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case time.Time:
		return x.UTC()
	case []byte:
		s = string(x)
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		s = strconv.FormatFloat(float64(x), 'g', -1, 32)
	default:
		return v // typed by the driver in a way sluice's values share
	}
	b := []byte(s)
	switch c.dataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year":
		if c.columnType == "tinyint(1)" && (s == "0" || s == "1") {
			return s == "1"
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
		return change.Numeric(s)
	case "bit":
		if c.columnType == "bit(1)" && len(b) == 1 {
			return b[0] == 1
		}
		return b
	case "decimal", "numeric":
		return change.Numeric(s)
	case "float", "double", "real":
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
	case "json":
		return change.JSON(s)
	case "binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob":
		return b
	}
	if c.json {
		return change.JSON(s)
	}
	return s
}

// scratchDSN returns dsn (parsed as cfg) with database scratch instead of
// its own: where a sink's unqualified tables and its checkpoints go.
func scratchDSN(cfg *gomysql.Config, scratch string) string {
	c := cfg.Clone()
	c.DBName = scratch
	// FormatDSN writes the params ParseDSN set (time zone, SQL mode); the
	// sink sets them again, to the same values.
	return c.FormatDSN()
}
