package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// TargetTable is a target table as `sluice validate --live` checks it
// before the first row: its name (TABLE or DATABASE.TABLE), the columns
// rows are matched by, and the PostgreSQL type of each source column
// written to it.
type TargetTable struct {
	Name    string
	Key     []string
	Columns map[string]string // source column → PostgreSQL type
}

// Finding is a problem of an existing target table.
type Finding struct {
	Table, Column string
	Message       string // what is wrong and what it does to the rows
	Fix           string // the statement or setting that fixes it
}

// CheckTargets connects to dsn and checks each of tables that exists
// (auto_create makes exact ones): key columns whose collation does not
// compare text byte for byte, as PostgreSQL does, and DECIMAL columns
// that cannot hold every value of the source's numeric, which the sink
// will refuse row by row. It opens and closes one connection.
func CheckTargets(ctx context.Context, dsn string, t *dsl.TLS, tables []TargetTable) ([]Finding, error) {
	db, err := open(dsn, t)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	learnt, err := dialect{}.ForServer(ctx, db)
	if err != nil {
		return nil, err
	}
	d := learnt.(dialect)
	var out []Finding
	for _, t := range tables {
		var schema any
		name := sqltable.Name{Table: t.Name}
		if database, table, ok := strings.Cut(t.Name, "."); ok {
			schema, name = database, sqltable.Name{Schema: database, Table: table}
		}
		rows, err := db.QueryContext(ctx, "SELECT COLUMN_NAME, LOWER(COLUMN_TYPE), COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?", schema, name.Table)
		if err != nil {
			return out, err
		}
		for rows.Next() {
			var col, typ string
			var collation sql.NullString
			if err := rows.Scan(&col, &typ, &collation); err != nil {
				rows.Close()
				return out, err
			}
			if isKey(t.Key, col) && collation.Valid {
				if why := d.InexactCollation(typ, collation.String); why != "" {
					out = append(out, Finding{Table: t.Name, Column: col,
						Message: fmt.Sprintf("key column %s of target table %s has collation %s, which %s: rows whose keys PostgreSQL tells apart can collapse into one, and an update or delete can hit another row", col, t.Name, collation.String, why),
						Fix:     d.ExactKey(quoteName(d, name), d.Quote(col), typ) + ";"})
				}
			}
			if src, ok := sourceColumn(t.Columns, col); ok {
				if f, ok := narrowDecimal(t.Name, col, typ, src); ok {
					out = append(out, f)
				}
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// open connects as the sink would (the DSN and the tls block), through
// one connection.
func open(dsn string, t *dsl.TLS) (*sql.DB, error) {
	cfg, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if err := applyTLS(cfg, t); err != nil {
		return nil, err
	}
	c, err := gomysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(1)
	return db, nil
}

// TLSState is what a session negotiated: Version and Cipher are empty
// on a plaintext connection.
type TLSState struct{ Version, Cipher string }

// Encrypted reports whether the session runs over TLS.
func (s TLSState) Encrypted() bool { return s.Version != "" }

func (s TLSState) String() string {
	if !s.Encrypted() {
		return "not encrypted"
	}
	return s.Version + ", " + s.Cipher
}

// SessionTLS reads the TLS state of one of db's sessions (SHOW SESSION
// STATUS: Ssl_version, Ssl_cipher).
func SessionTLS(ctx context.Context, db *sql.DB) (TLSState, error) {
	rows, err := db.QueryContext(ctx, "SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
	if err != nil {
		return TLSState{}, err
	}
	defer rows.Close()
	var st TLSState
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return TLSState{}, err
		}
		switch strings.ToLower(name) {
		case "ssl_version":
			st.Version = value
		case "ssl_cipher":
			st.Cipher = value
		}
	}
	return st, rows.Err()
}

// CheckTLS connects as the sink would (the DSN and the tls block) and
// returns the TLS state the session negotiated. A failed handshake is
// returned with what to set (the tls block's attribute), never with the
// password. It opens and closes one connection.
func CheckTLS(ctx context.Context, dsn string, t *dsl.TLS) (TLSState, error) {
	db, err := open(dsn, t)
	if err != nil {
		return TLSState{}, err
	}
	defer db.Close()
	if err := db.PingContext(ctx); err != nil {
		if h := tlsHint(err); h != "" {
			return TLSState{}, fmt.Errorf("%w: %s", err, h)
		}
		return TLSState{}, err
	}
	return SessionTLS(ctx, db)
}

func quoteName(d dialect, n sqltable.Name) string {
	if n.Schema == "" {
		return d.Quote(n.Table)
	}
	return d.Quote(n.Schema) + "." + d.Quote(n.Table)
}

// isKey reports whether col is one of key, as MySQL matches names.
func isKey(key []string, col string) bool {
	for _, k := range key {
		if strings.EqualFold(k, col) {
			return true
		}
	}
	return false
}

func sourceColumn(cols map[string]string, col string) (string, bool) {
	if t, ok := cols[col]; ok {
		return t, true
	}
	for c, t := range cols {
		if strings.EqualFold(c, col) {
			return t, true
		}
	}
	return "", false
}

// narrowDecimal reports a DECIMAL target column of type typ that cannot
// hold every value of the source's numeric type src.
func narrowDecimal(table, col, typ, src string) (Finding, bool) {
	st := sqltable.ParseSourceType(src)
	p, s, ok := decimalArgs(typ)
	if st.Base != "numeric" || !ok || st.Array {
		return Finding{}, false
	}
	sp, bounded := st.Arg(0)
	ss, _ := st.Arg(1)
	if bounded && sp-ss <= p-s && ss <= s {
		return Finding{}, false
	}
	what := fmt.Sprintf("source type %s has up to %d integer digits and %d places", src, sp-ss, max(ss, 0))
	want := dialect{}.numericType(st, false)
	if !bounded {
		what = "source type numeric has no precision"
		want = "VARCHAR(n) wide enough for the largest value, or a wider DECIMAL"
	}
	return Finding{Table: table, Column: col,
		Message: fmt.Sprintf("column %s of target table %s is %s, and %s: a value with more than %d places or %d integer digits will be refused, never rounded", col, table, typ, what, s, p-s),
		Fix:     fmt.Sprintf("ALTER the column to %s, or make the source column's type fit", want)}, true
}
