package postgres

import (
	"strings"

	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// ColumnDefQuery reads a column's full type, nullability, default and
// collation (collations do not change with the type here: NULL).
func (dialect) ColumnDefQuery() string {
	return `SELECT format_type(a.atttypid, a.atttypmod), NOT a.attnotnull, pg_get_expr(d.adbin, d.adrelid), NULL::text
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attname = $3::text AND NOT a.attisdropped AND a.attrelid = (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = COALESCE($1::text, current_schema()) AND c.relname = $2::text)`
}

// AlterColumn alters the type in place (USING a cast, which every
// widening has) and drops NOT NULL; PostgreSQL keeps the default.
func (d dialect) AlterColumn(table, col, typ string, nullable bool, cur sqltable.ColumnDef) string {
	var parts []string
	c := d.Quote(col)
	if typ != "" {
		parts = append(parts, "ALTER COLUMN "+c+" TYPE "+typ+" USING "+c+"::"+typ)
	}
	if nullable && !cur.Nullable {
		parts = append(parts, "ALTER COLUMN "+c+" DROP NOT NULL")
	}
	return "ALTER TABLE " + table + " " + strings.Join(parts, ", ")
}

// SourceTypeOf reads ColumnsQuery's names: the internal ones carry no
// modifiers, so only those that hold a type whole, and numeric(p,s).
func (dialect) SourceTypeOf(colType string) (sqltable.SourceType, bool) {
	switch colType {
	case "int2", "int4", "int8", "float4", "float8", "text":
		return sqltable.ParseSourceType(colType), true
	}
	if strings.HasPrefix(colType, "numeric(") {
		return sqltable.ParseSourceType(colType), true
	}
	return sqltable.SourceType{}, false
}

// Literal quotes s under standard_conforming_strings (the default since
// PostgreSQL 9.1): backslashes are plain characters.
func (dialect) Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
