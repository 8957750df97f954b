package postgres

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/internal/tlsfiles"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// dialect is PostgreSQL's SQL.
type dialect struct{}

func (dialect) Name() string { return "postgres" }

func (dialect) Quote(ident string) string { return pgx.Identifier{ident}.Sanitize() }

func (dialect) Placeholder(i int) string { return "$" + strconv.Itoa(i) }

func (dialect) MaxParams() int { return 65535 }

func (d dialect) OnConflict(key, update []string) string {
	keys := make([]string, len(key))
	for i, k := range key {
		keys[i] = d.Quote(k)
	}
	target := " ON CONFLICT (" + strings.Join(keys, ", ") + ")"
	if len(update) == 0 {
		return target + " DO NOTHING"
	}
	sets := make([]string, len(update))
	for i, c := range update {
		q := d.Quote(c)
		sets[i] = q + " = EXCLUDED." + q
	}
	return target + " DO UPDATE SET " + strings.Join(sets, ", ")
}

func (dialect) FoldsCase() bool { return false }

func (dialect) NotDistinct(col, param string) string { return col + " IS NOT DISTINCT FROM " + param }

// TransactionalDDL is true: CREATE and ALTER TABLE commit with the rows.
func (dialect) TransactionalDDL() bool { return true }

// RowsSource is a VALUES list whose placeholders are cast to the
// columns' types, since an untyped VALUES column would be text.
func (d dialect) RowsSource(cols, types []string, rows int) string {
	var b strings.Builder
	b.WriteString("(VALUES ")
	n := 0
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for i := range cols {
			if i > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString(d.Placeholder(n) + "::" + types[i])
		}
		b.WriteByte(')')
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = d.Quote(c)
	}
	b.WriteString(") AS v (" + strings.Join(quoted, ", ") + ")")
	return b.String()
}

func (d dialect) UpdateFrom(table, src, match, changed string, set []string) string {
	sets := make([]string, len(set))
	for i, c := range set {
		sets[i] = d.Quote(c) + " = v." + d.Quote(c)
	}
	return "UPDATE " + table + " AS t SET " + strings.Join(sets, ", ") + " FROM " + src + " WHERE " + match + " AND " + changed
}

func (dialect) UpsertsOnAnyUniqueKey() bool { return false }

func (dialect) AtomicStatements() bool { return false }

func (dialect) TableOptions() string { return "" }

// ColumnType keeps PostgreSQL's built-in types (docs/type-mapping.md);
// enums, domains and other types the target may lack become text.
func (dialect) ColumnType(t sqltable.SourceType, _ bool) string {
	if !t.Builtin() {
		if t.Array {
			return "text[]"
		}
		return "text"
	}
	name := t.Base
	switch t.Base {
	case "numeric":
		if p, ok := t.Arg(0); ok {
			s, _ := t.Arg(1)
			name = fmt.Sprintf("numeric(%d,%d)", p, s)
		}
	case "character varying", "character":
		if n, ok := t.Arg(0); ok {
			name = fmt.Sprintf("%s(%d)", t.Base, n)
		}
	}
	if t.Array {
		name += "[]"
	}
	return name
}

func (dialect) ValueType(v any, _ bool) string {
	switch v.(type) {
	case bool:
		return "boolean"
	case int64, int:
		return "bigint"
	case float64:
		return "double precision"
	case []byte:
		return "bytea"
	case time.Time:
		return "timestamp with time zone"
	case change.Numeric:
		return "numeric"
	case change.JSON, []any, map[string]any:
		return "jsonb"
	}
	return "text"
}

// Value converts v to the text form PostgreSQL parses for a column of
// type colType (as ColumnsQuery reads it), so that the server, not
// the client, decides whether the value fits: a value that does not is a
// data error of that row. bytea stays binary.
func (dialect) Value(v any, colType string) (any, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return v, nil
	case []byte:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		return formatFloat(v), nil
	case time.Time:
		switch {
		case colType == "date":
			return v.UTC().Format("2006-01-02"), nil
		case colType == "time" || colType == "timetz":
			return v.UTC().Format("15:04:05.999999"), nil
		}
		return v.UTC().Format("2006-01-02 15:04:05.999999Z07:00"), nil
	case change.Numeric:
		if err := fitNumeric(string(v), colType); err != nil {
			return nil, err
		}
		return string(v), nil
	case change.JSON:
		return string(v), nil
	case []any:
		if isArray(colType) {
			var b strings.Builder
			if err := writeArray(&b, v); err != nil {
				return nil, err
			}
			return b.String(), nil
		}
		return marshal(v)
	case map[string]any:
		return marshal(v)
	}
	return fmt.Sprint(v), nil
}

func marshal(v any) (any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// writeArray writes an array literal ({1,2,"a b",NULL}), nested arrays
// as nested braces, every element quoted and escaped.
func writeArray(b *strings.Builder, arr []any) error {
	b.WriteByte('{')
	for i, el := range arr {
		if i > 0 {
			b.WriteByte(',')
		}
		switch el := el.(type) {
		case nil:
			b.WriteString("NULL")
			continue
		case []any:
			if err := writeArray(b, el); err != nil {
				return err
			}
			continue
		case []byte:
			quoteElement(b, `\x`+hex.EncodeToString(el)) // bytea's text form
			continue
		}
		text, err := dialect{}.Value(el, "")
		if err != nil {
			return err
		}
		s, ok := text.(string)
		if !ok {
			s = fmt.Sprint(text)
		}
		quoteElement(b, s)
	}
	b.WriteByte('}')
	return nil
}

// ColumnsQuery reads each column's type by its internal name ("int4",
// "varchar", "bpchar", "timestamptz", "_text" for text[], a
// schema-qualified name outside pg_catalog): names without modifiers that
// mean the unrestricted type, so that they can be written in casts. The
// SQL spellings would not do: a cast to "character" means char(1) and
// truncates silently, where assigning a too-long value to the column is
// the error a reject needs. The exception is numeric(p,s), read as such:
// PostgreSQL rounds a value with more than s fractional digits into it
// without a word, so Value refuses those (fitNumeric) before any cast.
func (dialect) ColumnsQuery() string {
	return `SELECT a.attname::text,
  CASE WHEN t.oid = 'numeric'::regtype AND a.atttypmod >= 4 THEN format_type(a.atttypid, a.atttypmod)
    WHEN tn.nspname = 'pg_catalog' THEN t.typname::text ELSE quote_ident(tn.nspname) || '.' || quote_ident(t.typname) END
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid = (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = COALESCE($1::text, current_schema()) AND c.relname = $2::text)`
}

// isArray reports whether an internal type name is an array's.
func isArray(colType string) bool {
	return strings.HasPrefix(colType, "_") || strings.Contains(colType, "._")
}

// ArrayType is colType's array type. Array columns do not unnest, and
// bit without a length means bit(1).
func (dialect) ArrayType(colType string) (string, bool) {
	if colType == "" || colType == "bit" || isArray(colType) {
		return "", false
	}
	return colType + "[]", true
}

// ArrayParam writes values as an array literal, bytea as hex.
func (dialect) ArrayParam(vals []any) (any, error) {
	var b strings.Builder
	b.WriteByte('{')
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(',')
		}
		switch v := v.(type) {
		case nil:
			b.WriteString("NULL")
		case string:
			quoteElement(&b, v)
		case []byte:
			quoteElement(&b, `\x`+hex.EncodeToString(v))
		default:
			return nil, fmt.Errorf("unexpected %T in an array parameter", v)
		}
	}
	b.WriteByte('}')
	return b.String(), nil
}

var elementEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

// quoteElement writes one quoted, escaped array element.
func quoteElement(b *strings.Builder, s string) {
	b.WriteByte('"')
	elementEscaper.WriteString(b, s)
	b.WriteByte('"')
}

func (dialect) UniqueKeysQuery() string {
	return `SELECT string_agg(a.attname::text, ',' ORDER BY array_position(i.indkey::int2[], a.attnum))
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])
WHERE i.indisunique AND i.indpred IS NULL AND i.indrelid = (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE n.nspname = COALESCE($1::text, current_schema()) AND c.relname = $2::text)
GROUP BY i.indexrelid`
}

// Classify sorts server errors by SQLSTATE class.
func (dialect) Classify(err error) sqltable.Class {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		if tlsfiles.Untrusted(err) {
			return sqltable.Fatal // no retry makes the certificate trusted
		}
		return sqltable.Retry
	}
	switch {
	case strings.HasPrefix(pe.Code, "22"), // data exception: too long, out of range, invalid text
		strings.HasPrefix(pe.Code, "23"), // integrity constraint violation
		pe.Code == "42804":               // datatype mismatch
		return sqltable.Reject
	case strings.HasPrefix(pe.Code, "28"), // invalid authorization
		pe.Code == "3D000", // no such database
		pe.Code == "42501", // insufficient privilege
		pe.Code == "42P01", // undefined table
		pe.Code == "42703", // undefined column
		pe.Code == "42701", // duplicate column
		pe.Code == "42P10", // no unique index matches the key
		pe.Code == "42601": // syntax error
		return sqltable.Fatal
	}
	return sqltable.Retry // 40001 serialization, 40P01 deadlock, 57P01 shutdown, 08 connection
}

// formatFloat writes a float as PostgreSQL parses it, including its
// spellings of the non-finite values.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// fitNumeric refuses a number with more fractional digits than a
// numeric(p,s) column keeps, which PostgreSQL would round; too many
// integer digits are the server's own error (numeric field overflow).
func fitNumeric(n, colType string) error {
	rest, ok := strings.CutPrefix(colType, "numeric(")
	if !ok {
		return nil
	}
	_, scale, _ := strings.Cut(strings.TrimSuffix(rest, ")"), ",")
	s, err := strconv.Atoi(scale)
	if err != nil {
		s = 0 // numeric(p)
	}
	if _, frac, ok := sqltable.DecimalDigits(n); ok && frac > s {
		return fmt.Errorf("value %s has %d fractional digits, column is %s; PostgreSQL would round it: ALTER the column to a numeric with scale %d or more, or to numeric", n, frac, colType, frac)
	}
	return nil
}

// Hint says how to fix a certificate the sink does not trust
// (sqltable.Hinter).
func (dialect) Hint(err error) string {
	if tlsfiles.Untrusted(err) {
		return ": the server's certificate is not trusted: set sslrootcert in dsn to the CA that signed it (with sslmode=verify-full), or check the host name it carries"
	}
	return ""
}
