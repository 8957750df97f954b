package mysql

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	gomysql "github.com/go-sql-driver/mysql"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// dialect is MySQL's and MariaDB's SQL.
type dialect struct{}

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

func (dialect) NotDistinct(col, param string) string { return col + " <=> " + param }

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
func (dialect) ColumnType(t sqltable.SourceType, key bool) string {
	str := "LONGTEXT"
	if key {
		str = "VARCHAR(255)" // LONGTEXT cannot be a key
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
		p, ok := t.Arg(0)
		if !ok {
			return "DECIMAL(65,30)"
		}
		s, _ := t.Arg(1)
		p = min(max(p, 1), 65)
		return fmt.Sprintf("DECIMAL(%d,%d)", p, min(max(s, 0), 30, p))
	case "real":
		return "FLOAT"
	case "double precision":
		return "DOUBLE"
	case "character varying":
		if n, ok := t.Arg(0); ok && n <= 16383 {
			return fmt.Sprintf("VARCHAR(%d)", n)
		}
		return str
	case "character":
		n, ok := t.Arg(0)
		if !ok {
			n = 1
		}
		if n <= 255 {
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
		return "VARCHAR(32)" // TIME cannot hold the offset
	case "timestamp", "timestamp with time zone":
		return "DATETIME(6)" // in UTC: the session's time_zone is +00:00
	case "interval":
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

func (dialect) ValueType(v any, key bool) string {
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
		return "DECIMAL(65,30)"
	case change.JSON, []any, map[string]any:
		return "JSON"
	}
	if key {
		return "VARCHAR(255)"
	}
	return "LONGTEXT"
}

// Value converts v for a column of type colType (information_schema's
// COLUMN_TYPE). The driver interpolates the result client-side.
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
		return string(v), nil
	case change.JSON:
		return string(v), nil
	case []any, map[string]any:
		b, err := json.Marshal(v)
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
	var me *gomysql.MySQLError
	if !errors.As(err, &me) {
		return sqltable.Retry // lost connections and the like
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
		1118,       // row too large
		1142, 1143, // command denied
		1146, // no such table
		1054, // unknown column
		1060, // duplicate column name
		1153, // a row larger than max_allowed_packet: raise it
		1170: // BLOB/TEXT key without length
		return sqltable.Fatal
	}
	return sqltable.Retry // deadlocks (1213), lock wait timeouts (1205), shutdowns, lost connections
}
