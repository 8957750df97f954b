package e2e

// The fidelity checker compares a source table with its replica column by
// column without any of sluice's decoders or encoders: each database
// renders its values as text in SQL (renderExpr), and normalise maps both
// renderings of a value to one canonical text, by the value's kind. The
// two canonical texts must be equal byte for byte.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// valueKind says how a column's text is normalised.
type valueKind int

const (
	vInt       valueKind = iota // integers: the decimal value
	vDecimal                    // numeric / DECIMAL: the exact value, no trailing zeros
	vText                       // text: byte for byte
	vBool                       // boolean: true/false from t/f, true/false, 1/0
	vTime                       // timestamptz / DATETIME(6): UTC, nanoseconds; no offset means UTC
	vUUID                       // uuid: lower-case hex, hyphenated
	vBytes                      // bytea / BLOB: lower-case hex (encode(…, 'hex'), HEX(…), or \x…)
	vJSON                       // json / jsonb: keys sorted, numbers exact, no insignificant space
	vIntArray                   // integer[], numeric[]: a JSON array of numbers, from {…} or […]
	vTextArray                  // text[]: a JSON array of strings, from {…} or […]
)

func (k valueKind) String() string {
	return [...]string{"int", "decimal", "text", "bool", "time", "uuid", "bytes", "json", "number[]", "text[]"}[k]
}

// normalise maps one database's text rendering of a value of kind k to the
// canonical text both databases' renderings of that value share. It
// refuses text that is not a rendering of such a value.
func normalise(k valueKind, s string) (string, error) {
	switch k {
	case vInt, vDecimal:
		return canonDecimal(s)
	case vText:
		return s, nil
	case vBool:
		switch s {
		case "t", "true", "1":
			return "true", nil
		case "f", "false", "0":
			return "false", nil
		}
		return "", fmt.Errorf("not a boolean: %q", s)
	case vTime:
		return canonTime(s)
	case vUUID:
		h := strings.ToLower(strings.ReplaceAll(s, "-", ""))
		if len(h) != 32 || !isHex(h) || (len(s) != 32 && !uuidShape.MatchString(s)) {
			return "", fmt.Errorf("not a uuid: %q", s)
		}
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	case vBytes:
		h := strings.TrimPrefix(s, `\x`)
		if len(h)%2 != 0 || !isHex(h) {
			return "", fmt.Errorf("not hex bytes: %q", abbrev(s, 40))
		}
		return strings.ToLower(h), nil
	case vJSON:
		v, err := decodeJSON(s)
		if err != nil {
			return "", err
		}
		return canonJSON(v)
	case vIntArray, vTextArray:
		var v any
		var err error
		if strings.HasPrefix(s, "{") {
			v, err = parsePGArray(s, k == vIntArray)
		} else {
			v, err = decodeJSON(s)
		}
		if err != nil {
			return "", err
		}
		if _, ok := v.([]any); !ok {
			return "", fmt.Errorf("not an array: %q", abbrev(s, 40))
		}
		return canonJSON(v)
	}
	return "", fmt.Errorf("unknown kind %d", k)
}

var uuidShape = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

var decimalShape = regexp.MustCompile(`^([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?$`)

// canonDecimal is the exact value of a decimal text as the shortest plain
// decimal: no exponent, no leading zeros, no trailing fractional zeros,
// no sign on zero. NaN and the infinities are kept as PostgreSQL writes
// them.
func canonDecimal(s string) (string, error) {
	switch s {
	case "NaN", "Infinity", "-Infinity":
		return s, nil
	}
	m := decimalShape.FindStringSubmatch(s)
	if m == nil || m[2] == "" && m[3] == "" {
		return "", fmt.Errorf("not a decimal: %q", abbrev(s, 40))
	}
	digits := strings.TrimLeft(m[2]+m[3], "0")
	exp := -len(m[3])
	if m[4] != "" {
		e, err := strconv.Atoi(m[4])
		if err != nil || e > 100_000 || e < -100_000 {
			return "", fmt.Errorf("decimal exponent out of range: %q", abbrev(s, 40))
		}
		exp += e
	}
	if digits == "" {
		return "0", nil
	}
	for strings.HasSuffix(digits, "0") {
		digits = digits[:len(digits)-1]
		exp++
	}
	var out string
	switch {
	case exp >= 0:
		out = digits + strings.Repeat("0", exp)
	case -exp >= len(digits):
		out = "0." + strings.Repeat("0", -exp-len(digits)) + digits
	default:
		out = digits[:len(digits)+exp] + "." + digits[len(digits)+exp:]
	}
	if m[1] == "-" {
		out = "-" + out
	}
	return out, nil
}

// timeLayouts are the renderings of a timestamp: PostgreSQL's (ISO, the
// offset in hours, or hours and minutes, or with seconds) and MariaDB's
// DATETIME without an offset, which means UTC here.
// (time.Parse takes a fractional second after the seconds unasked.)
var timeLayouts = []string{
	"2006-01-02 15:04:05Z07:00:00",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z07",
	"2006-01-02 15:04:05",
}

// canonTime is a timestamp in UTC with nine fractional digits.
func canonTime(s string) (string, error) {
	switch s {
	case "infinity", "-infinity":
		return s, nil
	}
	t := strings.Replace(s, "T", " ", 1)
	for _, layout := range timeLayouts {
		if v, err := time.Parse(layout, t); err == nil {
			return v.UTC().Format("2006-01-02T15:04:05.000000000Z"), nil
		}
	}
	return "", fmt.Errorf("not a timestamp: %q", abbrev(s, 40))
}

// decodeJSON decodes one JSON value with numbers kept as their text.
func decodeJSON(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %v: %q", err, abbrev(s, 40))
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("not one JSON value: %q", abbrev(s, 40))
	}
	return v, nil
}

// canonJSON writes a decoded JSON value with object keys sorted, numbers
// by canonDecimal and no insignificant white space.
func canonJSON(v any) (string, error) {
	var b bytes.Buffer
	if err := writeCanonJSON(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

func writeCanonJSON(b *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case json.Number:
		n, err := canonDecimal(string(v))
		if err != nil {
			return err
		}
		b.WriteString(n)
	case string:
		writeJSONString(b, v)
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonJSON(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			if err := writeCanonJSON(b, v[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("unexpected JSON value %T", v)
	}
	return nil
}

// writeJSONString writes s as a JSON string, escaping only what JSON
// requires, so that equal strings always give equal texts.
func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// parsePGArray parses PostgreSQL's text form of an array ({1,NULL,3},
// {"a b","NULL",x}, nested for more dimensions) into JSON values: numbers
// when numeric is set, otherwise strings; an unquoted NULL is null.
func parsePGArray(s string, numeric bool) (any, error) {
	p := pgArrayParser{s: s, numeric: numeric}
	v, err := p.array()
	if err == nil && p.i != len(s) {
		err = errors.New("text after the array")
	}
	if err != nil {
		return nil, fmt.Errorf("not a PostgreSQL array (%v at byte %d): %q", err, p.i, abbrev(s, 60))
	}
	return v, nil
}

type pgArrayParser struct {
	s       string
	i       int
	numeric bool
}

func (p *pgArrayParser) array() ([]any, error) {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, errors.New("want {")
	}
	p.i++
	out := []any{}
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return out, nil
	}
	for {
		e, err := p.element()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		if p.i >= len(p.s) {
			return nil, errors.New("unterminated array")
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return out, nil
		default:
			return nil, fmt.Errorf("unexpected %q", p.s[p.i])
		}
	}
}

func (p *pgArrayParser) element() (any, error) {
	if p.i >= len(p.s) {
		return nil, errors.New("unterminated array")
	}
	switch p.s[p.i] {
	case '{':
		return p.array()
	case '"':
		p.i++
		var b strings.Builder
		for {
			if p.i >= len(p.s) {
				return nil, errors.New("unterminated quoted element")
			}
			c := p.s[p.i]
			p.i++
			switch c {
			case '\\':
				if p.i >= len(p.s) {
					return nil, errors.New("unterminated escape")
				}
				b.WriteByte(p.s[p.i])
				p.i++
				continue
			case '"':
				return p.scalar(b.String())
			}
			b.WriteByte(c)
		}
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' {
		if c := p.s[p.i]; c == '"' || c == '{' || c == '\\' {
			return nil, fmt.Errorf("unexpected %q in an unquoted element", c)
		}
		p.i++
	}
	tok := p.s[start:p.i]
	if tok == "" {
		return nil, errors.New("empty unquoted element")
	}
	if strings.EqualFold(tok, "NULL") {
		return nil, nil
	}
	return p.scalar(tok)
}

func (p *pgArrayParser) scalar(s string) (any, error) {
	if !p.numeric {
		return s, nil
	}
	if _, err := canonDecimal(s); err != nil {
		return nil, err
	}
	return json.Number(s), nil
}

// abbrev shortens s for a message: its first n bytes and its length.
func abbrev(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:cut], len(s))
}

// fidColumn is one compared column.
type fidColumn struct {
	name string
	kind valueKind
}

// fidTable is one compared table: the same name on both sides, the key
// columns first.
type fidTable struct {
	name string
	cols []fidColumn
	nkey int
}

// renderExpr is the SQL that makes a database render col as text.
func renderExpr(sink string, c fidColumn) string {
	q := quoteFor(sink)(c.name)
	if sink == "mysql" {
		if c.kind == vBytes {
			return "HEX(" + q + ")"
		}
		return "CAST(" + q + " AS CHAR)"
	}
	if c.kind == vBytes {
		return "encode(" + q + ", 'hex')"
	}
	return q + "::text"
}

// fidRow is one row as read: the raw texts (nil for NULL) and their
// canonical forms (null stays null).
type fidRow struct {
	raw, canon []*string
}

// fidRows reads every row of tb's table from a database of kind sink
// ("postgres" for the source) as canonical texts, keyed by the canonical
// key. cols are the columns to read (a subset of tb.cols when the target
// lacks some). A text normalise refuses is kept as its raw text prefixed
// "unreadable ", so that it differs from any canonical text.
func fidRows(ctx context.Context, db *sql.DB, sink string, tb fidTable, cols []fidColumn) (map[string]fidRow, error) {
	exprs := make([]string, len(cols))
	for i, c := range cols {
		exprs[i] = renderExpr(sink, c)
	}
	q := fmt.Sprintf("SELECT %s FROM %s", strings.Join(exprs, ", "), quoteFor(sink)(tb.name))
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	out := map[string]fidRow{}
	dest := make([]any, len(cols))
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		r := fidRow{raw: make([]*string, len(cols)), canon: make([]*string, len(cols))}
		for i, v := range vals {
			if !v.Valid {
				continue
			}
			raw := v.String
			c, err := normalise(cols[i].kind, raw)
			if err != nil {
				c = "unreadable " + err.Error()
			}
			r.raw[i], r.canon[i] = &raw, &c
		}
		k := keyOf(r, tb.nkey)
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("%s holds two rows with key %s", tb.name, k)
		}
		out[k] = r
	}
	return out, rows.Err()
}

// keySep separates the parts of a composite key in keyOf.
const keySep = "\x1f"

// keyOf is the canonical key of a row: its first n canonical texts.
func keyOf(r fidRow, n int) string {
	parts := make([]string, n)
	for i := 0; i < n; i++ {
		if r.canon[i] == nil {
			parts[i] = "NULL"
		} else {
			parts[i] = *r.canon[i]
		}
	}
	return strings.Join(parts, keySep)
}

// showKey writes a key of tb for a message: col=value, ….
func showKey(tb fidTable, k string) string {
	parts := strings.Split(k, keySep)
	for i, p := range parts {
		if i < len(tb.cols) {
			parts[i] = tb.cols[i].name + "=" + strconv.Quote(p)
		}
	}
	return strings.Join(parts, ", ")
}

// keyLessCanon orders canonical keys part by part, integers by value.
func keyLessCanon(a, b string) bool {
	pa, pb := strings.Split(a, keySep), strings.Split(b, keySep)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		x, okx := new(big.Int).SetString(pa[i], 10)
		y, oky := new(big.Int).SetString(pb[i], 10)
		if okx && oky {
			return x.Cmp(y) < 0
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

// showText quotes a value for a message, NULL for nil, long ones cut.
func showText(s *string, n int) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(abbrev(*s, n))
}

// targetColumns lists the columns a table has in a database of kind sink; nil
// when the table does not exist.
func targetColumns(ctx context.Context, db *sql.DB, sink, table string) (map[string]bool, error) {
	schema := "current_schema()"
	if sink == "mysql" {
		schema = "DATABASE()"
	}
	rows, err := db.QueryContext(ctx, "SELECT column_name FROM information_schema.columns WHERE table_schema = "+schema+" AND table_name = '"+table+"'")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out map[string]bool
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]bool{}
		}
		out[strings.ToLower(c)] = true
	}
	return out, rows.Err()
}

// compareTable compares tb at the PostgreSQL source with the target's
// table of the same name, column by column, through normalise. It returns
// the number of source rows and a description of every problem: missing
// table or columns, and the first differing row (table, key, column, both
// texts) with the count of differing rows. No problems means equal.
func compareTable(ctx context.Context, src *sql.DB, tgt target, tb fidTable) (rows int, problems []string, err error) {
	have, err := targetColumns(ctx, tgt.db, tgt.sink, tb.name)
	if err != nil {
		return 0, nil, fmt.Errorf("target columns of %s: %w", tb.name, err)
	}
	if have == nil {
		n := queryCount(ctx, src, tb.name)
		return n, []string{fmt.Sprintf("table %s: the target has no such table (the source has %d rows)", tb.name, n)}, nil
	}
	var cols []fidColumn
	var lacking []string
	for i, c := range tb.cols {
		if have[c.name] {
			cols = append(cols, c)
		} else if i < tb.nkey {
			return 0, []string{fmt.Sprintf("table %s: the target lacks key column %s", tb.name, c.name)}, nil
		} else {
			lacking = append(lacking, c.name)
		}
	}
	if len(lacking) > 0 {
		problems = append(problems, fmt.Sprintf("table %s: the target lacks column(s) %s; the other columns are compared", tb.name, strings.Join(lacking, ", ")))
	}
	want, err := fidRows(ctx, src, "postgres", tb, cols)
	if err != nil {
		return 0, nil, fmt.Errorf("source: %w", err)
	}
	got, err := fidRows(ctx, tgt.db, tgt.sink, tb, cols)
	if err != nil {
		return len(want), append(problems, fmt.Sprintf("table %s: reading the target: %v", tb.name, err)), nil
	}
	keys := make([]string, 0, len(want)+len(got))
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keyLessCanon(keys[i], keys[j]) })
	var missing, extra, changed int
	var first string
	for _, k := range keys {
		w, inSrc := want[k]
		g, inTgt := got[k]
		var d string
		switch {
		case !inTgt:
			missing++
			d = fmt.Sprintf("key (%s): missing in the target", showKey(tb, k))
		case !inSrc:
			extra++
			d = fmt.Sprintf("key (%s): in the target only (deleted or moved at the source)", showKey(tb, k))
		default:
			for i, c := range cols {
				if i < tb.nkey || eqText(w.canon[i], g.canon[i]) {
					continue
				}
				if d == "" {
					changed++
					d = fmt.Sprintf("key (%s): column %s (%s): source %s, target %s", showKey(tb, k), c.name, c.kind, showText(w.raw[i], 120), showText(g.raw[i], 120))
					if w.raw[i] != nil && g.raw[i] != nil {
						d += fmt.Sprintf("; canonical source %s, target %s", showText(w.canon[i], 120), showText(g.canon[i], 120))
						d += differAt(*w.canon[i], *g.canon[i], 120)
					}
				}
			}
		}
		if first == "" {
			first = d
		}
	}
	if first != "" {
		problems = append(problems, fmt.Sprintf("table %s differs (source %d rows, target %d: %d missing in the target, %d only in the target, %d with other values); first difference at %s",
			tb.name, len(want), len(got), missing, extra, changed, first))
	}
	return len(want), problems, nil
}

// differAt says where two long texts first differ, with some of each
// from there, when the beginnings shown by showText (n bytes) are equal.
func differAt(a, b string, n int) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i < n {
		return ""
	}
	from := i - 20
	for from > 0 && !utf8.RuneStart(a[from]) {
		from--
	}
	return fmt.Sprintf("; they first differ at byte %d: source …%s, target …%s", i, strconv.Quote(abbrev(a[from:], 60)), strconv.Quote(abbrev(b[from:], 60)))
}

func eqText(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// queryCount counts a table's rows, -1 when it cannot.
func queryCount(ctx context.Context, db *sql.DB, table string) int {
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+pgQuote(table)).Scan(&n); err != nil {
		return -1
	}
	return n
}
