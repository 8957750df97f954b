package verify

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// kind says how a column's values are normalised before they are hashed
// and compared, so that the same value reads the same from PostgreSQL and
// from MySQL whatever Go type each driver gives it.
type kind uint8

const (
	kindText    kind = iota // strings as they are
	kindChar                // fixed-width text: trailing spaces dropped (MySQL CHAR drops them)
	kindNumber              // integers, decimals, doubles and booleans, by value
	kindFloat32             // single precision: compared to 6 significant digits
	kindTime                // dates and timestamps: UTC microseconds
	kindClock               // time of day: fraction without trailing zeros
	kindJSON                // JSON documents and arrays: canonical value (sorted keys, numbers by value)
	kindBytes               // binary: hex
)

// kindOf picks the normalisation of a column from the target's column
// type (lower-case, as its catalog spells it) and, where the target type
// cannot tell (MariaDB keeps JSON in LONGTEXT), from the expected value.
func kindOf(targetType string, expected any) kind {
	switch expected.(type) {
	case change.JSON, []any, map[string]any:
		return kindJSON
	}
	t := strings.ToLower(targetType)
	base := t
	if i := strings.IndexAny(t, "( "); i >= 0 {
		base = t[:i]
	}
	switch {
	case strings.HasSuffix(t, "[]") || base == "json" || base == "jsonb":
		return kindJSON
	case base == "float" || base == "real":
		return kindFloat32
	case strings.Contains(base, "int") || base == "decimal" || base == "numeric" || base == "double" ||
		base == "boolean" || base == "bool" || base == "bit" || base == "money" || base == "oid":
		return kindNumber
	case base == "date" || base == "datetime" || strings.HasPrefix(t, "timestamp"):
		return kindTime
	case base == "time":
		return kindClock
	case strings.HasSuffix(base, "blob") || strings.HasSuffix(base, "binary") || base == "bytea":
		return kindBytes
	case base == "char" || base == "character" || base == "bpchar":
		return kindChar
	}
	return kindText
}

// canonical returns the normalised form of v for kind k. NULL is its own
// value (tagged so that it never equals a string), and a value that does
// not parse as its kind keeps its text, so it differs from every value
// that does.
func canonical(v any, k kind) string {
	if v == nil {
		return "\x00"
	}
	var s string
	switch k {
	case kindNumber:
		s = number(v, 15)
	case kindFloat32:
		s = number(v, 6)
	case kindTime:
		s = timeValue(v)
	case kindClock:
		s = clock(text(v))
	case kindJSON:
		s = jsonValue(v)
	case kindBytes:
		if b, ok := v.([]byte); ok {
			s = hex.EncodeToString(b)
		} else {
			s = hex.EncodeToString([]byte(text(v)))
		}
	case kindChar:
		s = strings.TrimRight(text(v), " ")
	default:
		s = text(v)
	}
	return "\x01" + s
}

// text is the text form of a value: strings as they are, others as the
// pipeline's native format writes them.
func text(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case change.Numeric:
		return string(v)
	case change.JSON:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	case time.Time:
		return v.UTC().Format("2006-01-02T15:04:05.999999Z07:00")
	}
	return fmt.Sprint(v)
}

// number normalises a number to its decimal value: no exponent, no
// leading or trailing zeros, floats rounded to digits significant digits
// (what a MySQL DOUBLE or FLOAT prints), booleans as 1 and 0.
func number(v any, digits int) string {
	var f float64
	switch v := v.(type) {
	case bool:
		if v {
			return "1"
		}
		return "0"
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case int:
		return strconv.Itoa(v)
	case uint64:
		return strconv.FormatUint(v, 10)
	case float32:
		f = float64(v)
	case float64:
		f = v
	default:
		s := text(v)
		if !strings.ContainsAny(s, "eEnN") { // exact decimal text ("NaN" and exponents go through float)
			if d, ok := decimal(s); ok {
				return d
			}
			return s
		}
		var err error
		if f, err = strconv.ParseFloat(s, 64); err != nil {
			return s
		}
	}
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if digits > 0 {
		f, _ = strconv.ParseFloat(strconv.FormatFloat(f, 'g', digits, 64), 64)
	}
	d, _ := decimal(strconv.FormatFloat(f, 'f', -1, 64))
	return d
}

// decimal normalises decimal text: "-012.500" → "-12.5", "-0.0" → "0".
func decimal(s string) (string, bool) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimLeft(s, "+-")
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" && fp == "" {
		return "", false
	}
	for _, part := range []string{ip, fp} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return "", false
			}
		}
	}
	ip = strings.TrimLeft(ip, "0")
	fp = strings.TrimRight(fp, "0")
	if ip == "" {
		ip = "0"
	}
	out := ip
	if fp != "" {
		out += "." + fp
	}
	if neg && out != "0" {
		out = "-" + out
	}
	return out, true
}

// timeLayouts are the text forms of dates and timestamps the drivers
// return for columns read as text.
var timeLayouts = []string{
	"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05Z07", "2006-01-02 15:04:05",
	time.RFC3339Nano, "2006-01-02",
}

// timeValue is a date or timestamp as UTC microseconds since the epoch.
func timeValue(v any) string {
	if t, ok := v.(time.Time); ok {
		return strconv.FormatInt(t.UTC().UnixMicro(), 10)
	}
	s := text(v)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return strconv.FormatInt(t.UTC().UnixMicro(), 10)
		}
	}
	return s // infinity and the like stay text
}

// clock drops trailing zeros of a time of day's fraction: MySQL's TIME(6)
// prints 12:00:00.000000 where PostgreSQL prints 12:00:00.
func clock(s string) string {
	if i := strings.IndexByte(s, '.'); i >= 0 {
		end := i + 1
		for end < len(s) && s[end] >= '0' && s[end] <= '9' {
			end++
		}
		frac := strings.TrimRight(s[i+1:end], "0")
		if frac == "" {
			return s[:i] + s[end:]
		}
		return s[:i+1] + frac + s[end:]
	}
	return s
}

// jsonValue is a JSON document re-encoded canonically: object keys
// sorted, no spaces, numbers by value. Arrays and objects of the event
// are first encoded the way the sinks write them (encoding/json).
func jsonValue(v any) string {
	var raw []byte
	switch v := v.(type) {
	case change.JSON:
		raw = []byte(v)
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return text(v)
		}
		raw = b
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return string(raw)
	}
	var b strings.Builder
	writeJSON(&b, doc)
	return b.String()
}

func writeJSON(b *strings.Builder, v any) {
	switch v := v.(type) {
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
			kb, _ := json.Marshal(k)
			b.Write(kb)
			b.WriteByte(':')
			writeJSON(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, x := range v {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, x)
		}
		b.WriteByte(']')
	case json.Number:
		b.WriteString(number(string(v), 15))
	default:
		vb, _ := json.Marshal(v)
		b.Write(vb)
	}
}
