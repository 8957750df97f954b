package mysql

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// dialect is MySQL's and MariaDB's SQL. A value is immutable; the zero
// value speaks to MariaDB, and ForServer returns the one for the server a
// sink reaches.
type dialect struct {
	// exact is the collation of text key columns: one that compares byte
	// for byte, as PostgreSQL does, and without padding ("" means
	// utf8mb4_nopad_bin, MariaDB's; MySQL 8 has utf8mb4_0900_bin).
	exact string
	// enums is what a PostgreSQL enum column becomes: "enum" (or "") an
	// ENUM of its labels, "varchar" a VARCHAR as long as the longest.
	enums string
}

var (
	_ sqltable.Dialect       = dialect{}
	_ sqltable.ServerDialect = dialect{}
	_ sqltable.KeyCollations = dialect{}
	_ sqltable.Hinter        = dialect{}
)

func (dialect) Name() string { return "mysql" }

func (dialect) Quote(ident string) string {
	return "`" + strings.ReplaceAll(ident, "`", "``") + "`"
}

func (dialect) Placeholder(int) string { return "?" }

func (dialect) MaxParams() int { return 65535 }

func (d dialect) OnConflict(key, update []string) string {
	if len(update) == 0 {
		k := d.Quote(key[0])
		return " ON DUPLICATE KEY UPDATE " + k + " = " + k
	}
	parts := make([]string, len(update))
	for i, c := range update {
		q := d.Quote(c)
		parts[i] = q + " = VALUES(" + q + ")"
	}
	return " ON DUPLICATE KEY UPDATE " + strings.Join(parts, ", ")
}

func (dialect) FoldsCase() bool { return true }

// NotDistinct compares text byte for byte, whatever the column's
// collation: under a case-insensitive or PAD SPACE one, 'abc' <=> 'ABC '
// holds, and update mode would skip a case-only change. COLLATION() is
// "binary" for numbers, dates and binary strings, which keep the
// comparison of their type (1.50 equals '1.5').
func (dialect) NotDistinct(col, param string) string {
	return "(" + col + " <=> " + param + " AND (COLLATION(" + col + ") = 'binary' OR CAST(" + col + " AS BINARY) <=> CAST(" + param + " AS BINARY)))"
}

// TransactionalDDL is false: MySQL commits the open transaction before
// any CREATE or ALTER TABLE.
func (dialect) TransactionalDDL() bool { return false }

// RowsSource is a UNION ALL of one-row SELECTs: MySQL and MariaDB both
// take it as a derived table.
func (d dialect) RowsSource(cols, _ []string, rows int) string {
	var b strings.Builder
	b.WriteByte('(')
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT ")
		for i, c := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('?')
			if r == 0 {
				b.WriteString(" AS " + d.Quote(c))
			}
		}
	}
	b.WriteString(") AS v")
	return b.String()
}

func (d dialect) UpdateFrom(table, src, match, changed string, set []string) string {
	sets := make([]string, len(set))
	for i, c := range set {
		sets[i] = "t." + d.Quote(c) + " = v." + d.Quote(c)
	}
	return "UPDATE " + table + " AS t JOIN " + src + " ON " + match + " SET " + strings.Join(sets, ", ") + " WHERE " + changed
}

func (dialect) UpsertsOnAnyUniqueKey() bool { return true }

func (dialect) AtomicStatements() bool { return true }

func (dialect) TableOptions() string { return " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4" }

// ColumnType maps PostgreSQL types as docs/type-mapping.md tabulates.
// Text key columns compare byte for byte (d.keyText), as PostgreSQL's do.
func (d dialect) ColumnType(t sqltable.SourceType, key bool) string {
	str := "LONGTEXT"
	if key {
		str = textKey // LONGTEXT cannot be a key
	}
	if t.Array {
		return "JSON"
	}
	switch t.Base {
	case "smallint":
		return "SMALLINT"
	case "integer":
		return "INT"
	case "bigint", "oid":
		return "BIGINT"
	case "numeric":
		return d.numericType(t, key)
	case "real":
		return "FLOAT"
	case "double precision":
		return "DOUBLE"
	case "character varying":
		if n, ok := t.Arg(0); ok && n <= 16383 {
			if key {
				if n > maxKeyChars {
					return textKey
				}
				return d.keyText(fmt.Sprintf("VARCHAR(%d)", n))
			}
			return fmt.Sprintf("VARCHAR(%d)", n)
		}
		return str
	case "character":
		n, ok := t.Arg(0)
		if !ok {
			n = 1
		}
		if n <= 255 {
			if key {
				// character(n) ignores trailing spaces in PostgreSQL too, and
				// CHAR strips them when it stores a value: a PAD SPACE
				// collation keeps 'ab' and 'ab ' one key, as the source does,
				// and utf8mb4_bin tells case and accents apart.
				return fmt.Sprintf("CHAR(%d) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin", n)
			}
			return fmt.Sprintf("CHAR(%d)", n)
		}
		return str
	case "boolean":
		return "BOOLEAN"
	case "date":
		return "DATE"
	case "time":
		return "TIME(6)"
	case "time with time zone":
		if key {
			return d.keyText("VARCHAR(32)")
		}
		return "VARCHAR(32)" // TIME cannot hold the offset
	case "timestamp", "timestamp with time zone":
		return "DATETIME(6)" // in UTC: the session's time_zone is +00:00
	case "interval":
		if key {
			return d.keyText("VARCHAR(255)")
		}
		return "VARCHAR(255)"
	case "uuid":
		return "CHAR(36)"
	case "json", "jsonb":
		return "JSON"
	case "bytea":
		if key {
			return "VARBINARY(255)"
		}
		return "LONGBLOB"
	}
	return str // text, money (its text form has a currency sign), enums, domains, inet, xml, unknown
}

// InnoDB's index limit is 3072 bytes: VARCHAR(768) in utf8mb4, which
// counts four bytes a character, is the longest text key. A longer one
// (text, or varchar(n > 768)) is the value's UTF-8 bytes, which compare
// byte for byte as PostgreSQL's text keys do: VARBINARY(3072) holds
// every key PostgreSQL's B-tree takes uncompressed (at most 2704 bytes).
const (
	maxKeyChars = 768
	textKey     = "VARBINARY(3072)"
)

// DECIMAL's limits: 65 digits, 30 of them after the point.
const (
	maxDecimalDigits = 65
	maxDecimalScale  = 30
)

// numericType maps numeric(p,s) to the DECIMAL that holds every value
// of it exactly, or, where DECIMAL cannot (more than 65 digits or 30
// after the point), to text wide enough for the digits, a sign, a point
// and a leading zero: stored exactly, never rounded. PostgreSQL's
// numeric(p,s) allows s > p (numeric(3,5) holds 0.00123) and s < 0
// (numeric(3,-2) holds 12300). Unconstrained numeric is DECIMAL(65,30),
// and a value that does not fit it is refused (Value).
func (d dialect) numericType(t sqltable.SourceType, key bool) string {
	p, ok := t.Arg(0)
	if !ok {
		return fmt.Sprintf("DECIMAL(%d,%d)", maxDecimalDigits, maxDecimalScale)
	}
	s, _ := t.Arg(1)
	scale := max(s, 0)
	digits := max(p-s, 0) + scale // integer digits plus fractional digits
	digits = max(digits, 1)
	if digits <= maxDecimalDigits && scale <= maxDecimalScale {
		return fmt.Sprintf("DECIMAL(%d,%d)", digits, scale)
	}
	text := fmt.Sprintf("VARCHAR(%d)", digits+3)
	if key {
		return d.keyText(text)
	}
	return text
}

// keyText gives a text key type its byte-for-byte collation.
func (d dialect) keyText(typ string) string {
	return typ + " CHARACTER SET utf8mb4 COLLATE " + d.exactCollation()
}

func (d dialect) exactCollation() string {
	if d.exact == "" {
		return "utf8mb4_nopad_bin"
	}
	return d.exact
}

// ForServer learns which byte-for-byte collation without padding the
// server has: MariaDB's utf8mb4_nopad_bin or MySQL 8's utf8mb4_0900_bin.
// Without either (MySQL 5.7) text keys get utf8mb4_bin, which ignores
// trailing spaces; the sink then warns about them (KeyCollations).
func (d dialect) ForServer(ctx context.Context, db *sql.DB) (sqltable.Dialect, error) {
	var name string
	err := db.QueryRowContext(ctx, "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN ('utf8mb4_nopad_bin', 'utf8mb4_0900_bin') ORDER BY COLLATION_NAME = 'utf8mb4_nopad_bin' DESC LIMIT 1").Scan(&name)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		name = "utf8mb4_bin"
	case err != nil:
		return nil, err
	}
	return dialect{exact: name, enums: d.enums}, nil
}

// CollationsQuery selects the collation of every text column of a table.
func (dialect) CollationsQuery() string {
	return "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLLATION_NAME IS NOT NULL"
}

// InexactCollation tells how a key column of type colType under
// collation compares differently from PostgreSQL's text equality. Only
// binary collations (names ending in _bin, or the binary character set)
// tell case and accents apart; only NO PAD ones (MariaDB's *_nopad_*,
// MySQL 8's *_0900_*) tell 'abc' from 'abc '. CHAR columns strip
// trailing spaces when they store a value, so padding is right for them,
// as for PostgreSQL's character(n).
func (dialect) InexactCollation(colType, collation string) string {
	c := strings.ToLower(collation)
	if c == "binary" {
		return ""
	}
	var why []string
	if !strings.HasSuffix(c, "_bin") {
		why = append(why, "compares case- or accent-insensitively ('abc' = 'ABC')")
	}
	if !strings.Contains(c, "_nopad_") && !strings.Contains(c, "_0900_") && baseType(colType) != "char" {
		why = append(why, "ignores trailing spaces ('abc' = 'abc ')")
	}
	return strings.Join(why, " and ")
}

// ExactKey is the statement that makes key column col (quoted) of
// table (quoted) compare byte for byte.
func (d dialect) ExactKey(table, col, colType string) string {
	collation := d.exactCollation()
	if baseType(colType) == "char" {
		collation = "utf8mb4_bin"
	}
	return "ALTER TABLE " + table + " MODIFY " + col + " " + strings.ToUpper(colType) + " CHARACTER SET utf8mb4 COLLATE " + collation + " NOT NULL"
}

func (d dialect) ValueType(v any, key bool) string {
	switch v.(type) {
	case bool:
		return "BOOLEAN"
	case int64, int:
		return "BIGINT"
	case float64:
		return "DOUBLE"
	case []byte:
		if key {
			return "VARBINARY(255)"
		}
		return "LONGBLOB"
	case time.Time:
		return "DATETIME(6)"
	case change.Numeric:
		return fmt.Sprintf("DECIMAL(%d,%d)", maxDecimalDigits, maxDecimalScale)
	case change.JSON, []any, map[string]any:
		return "JSON"
	}
	if key {
		return d.keyText("VARCHAR(255)")
	}
	return "LONGTEXT"
}

// Value converts v for a column of type colType (information_schema's
// COLUMN_TYPE). The driver interpolates the result client-side.
// A number for a DECIMAL column that the column cannot hold exactly is
// refused: the server would round its fraction with only a note.
func (dialect) Value(v any, colType string) (any, error) {
	switch v := v.(type) {
	case nil, bool, int64, string, []byte:
		return v, nil
	case int:
		return int64(v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("MySQL cannot store %v", v)
		}
		if baseType(colType) == "decimal" {
			n := strconv.FormatFloat(v, 'f', -1, 64)
			if err := fitDecimal(n, colType); err != nil {
				return nil, err
			}
			return n, nil
		}
		return v, nil
	case time.Time:
		switch baseType(colType) {
		case "date":
			return v.UTC().Format("2006-01-02"), nil
		case "time":
			return v.UTC().Format("15:04:05.999999"), nil
		}
		return v.UTC(), nil
	case change.Numeric:
		if baseType(colType) == "decimal" {
			if err := fitDecimal(string(v), colType); err != nil {
				return nil, err
			}
		}
		return string(v), nil
	case change.JSON:
		return string(v), nil
	case []any, map[string]any:
		b, err := appendJSON(nil, v)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
	return fmt.Sprint(v), nil
}

// baseType strips modifiers: "time(6)" → "time".
func baseType(t string) string {
	if i := strings.IndexAny(t, "( "); i >= 0 {
		return t[:i]
	}
	return t
}

func (dialect) ColumnsQuery() string {
	return "SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?"
}

func (dialect) UniqueKeysQuery() string {
	return "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX SEPARATOR ',') FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0 GROUP BY INDEX_NAME"
}

// Classify sorts server errors by number (MySQL and MariaDB share them).
func (dialect) Classify(err error) sqltable.Class {
	if tlsHint(err) != "" {
		return sqltable.Fatal // no retry makes a certificate trusted
	}
	var me *gomysql.MySQLError
	if !errors.As(err, &me) {
		return sqltable.Retry // lost connections and the like
	}
	if _, ok := identifierErrors[me.Number]; ok {
		return sqltable.Fatal
	}
	switch me.Number {
	case 1048, // column cannot be null
		1062,       // duplicate entry (a unique key other than the sink's)
		1138,       // invalid use of NULL
		1263,       // NULL supplied to NOT NULL
		1264,       // out of range
		1265,       // data truncated
		1292,       // incorrect value
		1300,       // invalid character string
		1364,       // field has no default value
		1366,       // incorrect value for column
		1367,       // illegal value
		1406,       // data too long
		1411,       // incorrect value for function
		1451, 1452, // foreign key
		1690, // value out of range
		3140, // invalid JSON (MySQL)
		3819, // check constraint (MySQL)
		4025: // check constraint, incl. JSON_VALID (MariaDB)
		return sqltable.Reject
	case 1044, 1045, // access denied
		1049,       // unknown database
		1064,       // syntax error
		1071,       // key too long
		1074,       // column length too big for VARCHAR
		1117,       // too many columns
		1118,       // row too large
		1142, 1143, // command denied
		1146,             // no such table
		1054,             // unknown column
		1060,             // duplicate column name
		1115,             // unknown character set
		1153,             // a row larger than max_allowed_packet: raise it
		1170,             // BLOB/TEXT key without length
		1253,             // collation not valid for the character set
		1267, 1270, 1271, // illegal mix of collations
		1273: // unknown collation
		return sqltable.Fatal
	}
	return sqltable.Retry // deadlocks (1213), lock wait timeouts (1205), shutdowns, lost connections
}

// identifierErrors are the server's refusals of a name, which no retry
// changes, with what to do about them.
var identifierErrors = map[uint16]string{
	1059: "MySQL names are at most 64 characters", // identifier too long
	1102: "MySQL refuses this database name",      // incorrect database name
	1103: "MySQL refuses this table name",         // incorrect table name (trailing space, too long, ...)
	1166: "MySQL refuses this column name",        // incorrect column name (trailing space, ...)
	1280: "MySQL refuses this index name",         // incorrect index name
}

// Hint says how to fix an error Classify calls Fatal, when there is more
// to say than the server's message.
func (dialect) Hint(err error) string {
	if h := tlsHint(err); h != "" {
		return h
	}
	var me *gomysql.MySQLError
	if !errors.As(err, &me) {
		return ""
	}
	if why, ok := identifierErrors[me.Number]; ok {
		return why + ` (no trailing spaces, at most 64 characters): set table = "..." on the sink to write another table, or rename the table or column in a transform`
	}
	switch me.Number {
	case 1273, 1253:
		return "the server lacks the collation: text key columns need utf8mb4_nopad_bin (MariaDB) or utf8mb4_0900_bin (MySQL 8)"
	case 1267, 1270, 1271:
		return "the target table's columns use collations that cannot be compared: give them one character set (ALTER TABLE ... CONVERT TO CHARACTER SET utf8mb4)"
	}
	return ""
}

// tlsHint says what to change when err is a failed TLS handshake or a
// server without TLS, and "" for any other error. The sink's tls block
// is what fixes each; a handshake failure never holds the password.
func tlsHint(err error) string {
	var (
		unknownCA *x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		host      x509.HostnameError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		alert     tls.AlertError
		remote    *net.OpError
	)
	switch {
	case errors.As(err, &host):
		return "the server's certificate does not carry the name the sink connected to: set tls { server_name = ... } to a name the certificate carries, or connect to that name in dsn"
	case errors.As(err, &unknownCA), errors.As(err, &invalid), errors.As(err, &verify):
		return "the server's certificate is not trusted: set tls { ca_file = ... } to the PEM file of the CA that signed it"
	case errors.Is(err, gomysql.ErrNoTLS):
		return "the server does not offer TLS: enable it on the server (ssl_cert, ssl_key), or remove the sink's tls block and tls parameter"
	case errors.As(err, &alert), errors.As(err, &remote) && remote.Op == "remote error":
		return "the server refused the TLS handshake: if it requires a client certificate, set tls { cert_file = ..., key_file = ... } to one its CA signed"
	case errors.As(err, &record):
		return "the server does not speak TLS where the sink expected it: check dsn's host and port"
	}
	return ""
}
