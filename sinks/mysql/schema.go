package mysql

import (
	"strings"

	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// ColumnDefQuery reads a column's COLUMN_TYPE, nullability, default (as
// MariaDB renders it: a quoted literal, NULL or an expression) and
// collation, all of which MODIFY COLUMN must restate.
func (dialect) ColumnDefQuery() string {
	return "SELECT COLUMN_TYPE, IS_NULLABLE = 'YES', COLUMN_DEFAULT, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ?"
}

// AlterColumn is a MODIFY COLUMN, which replaces the whole definition:
// it restates the nullability, the default and, for text types, the
// collation (unless typ names one).
func (d dialect) AlterColumn(table, col, typ string, nullable bool, cur sqltable.ColumnDef) string {
	if typ == "" {
		typ = cur.Type
	}
	def := d.Quote(col) + " " + typ
	if cur.Collation.Valid && !strings.Contains(strings.ToUpper(typ), "COLLATE") && isText(typ) {
		def += " COLLATE " + cur.Collation.String
	}
	if nullable {
		def += " NULL"
	} else {
		def += " NOT NULL"
	}
	if cur.Default.Valid && !(strings.EqualFold(cur.Default.String, "NULL") && !nullable) {
		def += " DEFAULT " + cur.Default.String
	}
	return "ALTER TABLE " + table + " MODIFY COLUMN " + def
}

// isText reports whether a MySQL type takes a collation.
func isText(typ string) bool {
	t := strings.ToLower(typ)
	return strings.Contains(t, "char") || strings.Contains(t, "text") || strings.HasPrefix(t, "enum") || strings.HasPrefix(t, "set")
}

// SourceTypeOf reads COLUMN_TYPE ("int(11)", "varchar(50)",
// "decimal(12,2)", "bigint(20) unsigned") back into the PostgreSQL type
// that ColumnType maps to it.
func (dialect) SourceTypeOf(colType string) (sqltable.SourceType, bool) {
	t := strings.ToLower(colType)
	if strings.Contains(t, "unsigned") || strings.Contains(t, "zerofill") {
		return sqltable.SourceType{}, false
	}
	base, args, _ := strings.Cut(t, "(")
	args = strings.TrimSuffix(strings.TrimSpace(args), ")")
	name := map[string]string{"smallint": "smallint", "int": "integer", "bigint": "bigint", "float": "real", "double": "double precision"}[base]
	switch base {
	case "decimal":
		name = "numeric(" + args + ")"
	case "varchar":
		name = "character varying(" + args + ")"
	}
	if name == "" {
		return sqltable.SourceType{}, false
	}
	return sqltable.ParseSourceType(name), true
}

// Literal quotes s for MySQL's default sql_mode, where a backslash
// escapes: both quotes and backslashes are doubled.
func (dialect) Literal(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(s) + "'"
}
