package mysql

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
)

// fitDecimal returns nil if the number n (PostgreSQL's numeric text, or
// any decimal with an exponent) is exactly a value of a column of type
// colType ("decimal(p,s)", perhaps "unsigned"), and otherwise an error
// naming what does not fit and the fix. MySQL and MariaDB round excess
// fractional digits with only a note, even in strict mode.
func fitDecimal(n, colType string) error {
	p, s, ok := decimalArgs(colType)
	if !ok {
		return nil // not a type this can read: the server decides
	}
	intDigits, fracDigits, ok := sqltable.DecimalDigits(n)
	if !ok {
		switch strings.ToLower(strings.TrimLeft(n, "+-")) {
		case "nan", "infinity", "inf":
			return fmt.Errorf("value %s cannot be stored in a %s column: ALTER the column to VARCHAR(%d) to keep such values as text", n, colType, p+3)
		}
		return fmt.Errorf("value %q is not a number, column is %s", short(n), colType)
	}
	if intDigits <= p-s && fracDigits <= s {
		return nil
	}
	// The DECIMAL that would hold it, if one can.
	needScale := max(s, fracDigits)
	needDigits := max(p-s, intDigits) + needScale
	fix := fmt.Sprintf("ALTER the column to DECIMAL(%d,%d)", needDigits, needScale)
	if needDigits > maxDecimalDigits || needScale > maxDecimalScale {
		fix = fmt.Sprintf("ALTER the column to VARCHAR(%d) (DECIMAL holds at most %d digits, %d after the point) to keep such values exactly", needDigits+3, maxDecimalDigits, maxDecimalScale)
	}
	if fracDigits > s {
		return fmt.Errorf("value %s has %d fractional digits, column is decimal(%d,%d); the server would round it: %s", short(n), fracDigits, p, s, fix)
	}
	return fmt.Errorf("value %s has %d integer digits, column is decimal(%d,%d), which holds %d: %s", short(n), intDigits, p, s, p-s, fix)
}

// decimalArgs reads p and s of "decimal(p,s)" or "decimal(p)".
func decimalArgs(colType string) (p, s int, ok bool) {
	rest, found := strings.CutPrefix(colType, "decimal(")
	if !found {
		return 0, 0, false
	}
	args, _, found := strings.Cut(rest, ")")
	if !found {
		return 0, 0, false
	}
	ps, ss, _ := strings.Cut(args, ",")
	p, err1 := strconv.Atoi(strings.TrimSpace(ps))
	if ss != "" {
		var err2 error
		s, err2 = strconv.Atoi(strings.TrimSpace(ss))
		if err2 != nil {
			return 0, 0, false
		}
	}
	return p, s, err1 == nil
}

// short cuts a long value for an error message.
func short(s string) string {
	if len(s) > 48 {
		return s[:20] + "…" + s[len(s)-20:] + fmt.Sprintf(" (%d characters)", len(s))
	}
	return s
}

// appendJSON appends v as PostgreSQL's to_json renders it, for a JSON
// column: numbers as JSON numbers with the source's digits (NaN and
// ±Infinity, which JSON lacks, as strings), bytea as "\\x0102" hex,
// times in ISO 8601 (UTC), NULLs as null, nested arrays kept, JSON
// values embedded as they are, strings unescaped but for what JSON needs.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case float64:
		switch {
		case math.IsNaN(v):
			return append(b, `"NaN"`...), nil
		case math.IsInf(v, 1):
			return append(b, `"Infinity"`...), nil
		case math.IsInf(v, -1):
			return append(b, `"-Infinity"`...), nil
		}
		j, err := json.Marshal(v)
		return append(b, j...), err
	case change.Numeric:
		if jsonNumber(string(v)) {
			return append(b, v...), nil
		}
		return appendJSONString(b, string(v)), nil // NaN, Infinity
	case string:
		return appendJSONString(b, v), nil
	case []byte:
		return appendJSONString(b, `\x`+hex.EncodeToString(v)), nil
	case time.Time:
		return appendJSONString(b, v.UTC().Format("2006-01-02T15:04:05.999999")+"+00:00"), nil
	case change.JSON:
		if !json.Valid([]byte(v)) {
			return nil, fmt.Errorf("invalid JSON in an array: %s", short(string(v)))
		}
		return append(b, v...), nil
	case []any:
		b = append(b, '[')
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, x); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		// Sorted keys, as encoding/json writes them.
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, v[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// jsonNumber reports whether s is a number in JSON's grammar.
func jsonNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	start := i
	n := digits()
	if n == 0 || (n > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// appendJSONString appends s as a JSON string; unlike encoding/json it
// leaves <, > and & as they are, as PostgreSQL does.
func appendJSONString(b []byte, s string) []byte {
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, strings.TrimSuffix(buf.String(), "\n")...)
}
