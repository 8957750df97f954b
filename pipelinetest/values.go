package pipelinetest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math/big"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Equal reports whether two column values are the same value, the way a
// test author means it: numbers by value whatever their Go type (int64 1,
// float64 1.0 and Numeric "1" are equal), times with their RFC 3339 text,
// []byte with the string of its bytes, JSON documents by content, lists
// and maps element by element. Strings are never numbers ("1" is not 1).
func Equal(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	if x, ok := a.(change.JSON); ok {
		return equalJSON(x, b)
	}
	if y, ok := b.(change.JSON); ok {
		return equalJSON(y, a)
	}
	if x, ok := toNumber(a); ok {
		y, ok := toNumber(b)
		return ok && x.equal(y)
	}
	if _, ok := toNumber(b); ok {
		return false
	}
	switch x := a.(type) {
	case string:
		return equalString(x, b)
	case []byte:
		return equalString(string(x), b)
	case time.Time:
		return equalTime(x, b)
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	switch b.(type) {
	case string, []byte, time.Time:
		return Equal(b, a)
	}
	if x, ok := toMap(a); ok {
		y, ok := toMap(b)
		return ok && maps.EqualFunc(x, y, Equal)
	}
	if x, ok := toList(a); ok {
		y, ok := toList(b)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

func equalString(s string, b any) bool {
	switch y := b.(type) {
	case string:
		return s == y
	case []byte:
		return s == string(y)
	case time.Time:
		return equalTime(y, s)
	}
	return false
}

// timeLayouts are the ways a test may write a time value.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999", "2006-01-02"}

func equalTime(t time.Time, b any) bool {
	switch y := b.(type) {
	case time.Time:
		return t.Equal(y)
	case string:
		for _, layout := range timeLayouts {
			if p, err := time.Parse(layout, y); err == nil {
				return t.Equal(p)
			}
		}
	}
	return false
}

func equalJSON(doc change.JSON, b any) bool {
	var x any
	d := json.NewDecoder(strings.NewReader(string(doc)))
	d.UseNumber()
	if err := d.Decode(&x); err != nil {
		y, ok := b.(change.JSON)
		return ok && doc == y
	}
	if y, ok := b.(change.JSON); ok {
		return Equal(x, y)
	}
	return Equal(x, b)
}

func toMap(v any) (map[string]any, bool) {
	switch m := v.(type) {
	case map[string]any:
		return m, true
	case change.Row:
		return m.Map(), true
	}
	return nil, false
}

func toList(v any) ([]any, bool) {
	if l, ok := v.([]any); ok {
		return l, true
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
		return nil, false
	}
	out := make([]any, rv.Len())
	for i := range out {
		out[i] = rv.Index(i).Interface()
	}
	return out, true
}

// number is a numeric value: exact where it can be, float otherwise.
type number struct {
	rat   *big.Rat // nil for floats and for Numeric specials such as "NaN"
	float float64
	text  string // a Numeric that is not a finite number
}

func toNumber(v any) (number, bool) {
	switch x := v.(type) {
	case int64:
		return number{rat: new(big.Rat).SetInt64(x)}, true
	case int:
		return number{rat: new(big.Rat).SetInt64(int64(x))}, true
	case int32:
		return number{rat: new(big.Rat).SetInt64(int64(x))}, true
	case uint64:
		return number{rat: new(big.Rat).SetUint64(x)}, true
	case float64:
		return number{float: x}, true
	case float32:
		return number{float: float64(x)}, true
	case change.Numeric:
		if r, ok := new(big.Rat).SetString(string(x)); ok {
			return number{rat: r}, true
		}
		return number{text: string(x)}, true
	case json.Number:
		if r, ok := new(big.Rat).SetString(string(x)); ok {
			return number{rat: r}, true
		}
	}
	return number{}, false
}

// equal compares exactly when both sides are exact; when one side is a
// float, the other is rounded to a float too, so that 0.1 equals
// Numeric "0.1".
func (n number) equal(m number) bool {
	switch {
	case n.text != "" || m.text != "":
		return n.text == m.text
	case n.rat != nil && m.rat != nil:
		return n.rat.Cmp(m.rat) == 0
	}
	return n.asFloat() == m.asFloat()
}

func (n number) asFloat() float64 {
	if n.rat != nil {
		f, _ := n.rat.Float64()
		return f
	}
	return n.float
}

// keyText is a canonical text of a key value such that Equal values have
// the same text: it indexes rows by key.
func keyText(v any) string {
	if n, ok := toNumber(v); ok && n.text == "" {
		if n.rat == nil {
			if r, ok := new(big.Rat).SetString(strconv.FormatFloat(n.float, 'g', -1, 64)); ok {
				return r.RatString()
			}
			return strconv.FormatFloat(n.float, 'g', -1, 64)
		}
		return n.rat.RatString()
	}
	switch x := v.(type) {
	case []byte:
		return strconv.Quote(string(x))
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	return Format(v)
}

// Format writes a value the way a pipeline file would: strings quoted,
// null for nil, objects as { a = 1, b = "x" } with sorted keys. Diffs use
// it so that what they show can be pasted into a test.
func Format(v any) string {
	var b strings.Builder
	format(&b, v)
	return b.String()
}

func format(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case string:
		b.WriteString(strconv.Quote(x))
	case []byte:
		if utf8.Valid(x) {
			b.WriteString(strconv.Quote(string(x)))
		} else {
			b.WriteString(strconv.Quote(base64.StdEncoding.EncodeToString(x)))
		}
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case change.Numeric:
		b.WriteString(string(x))
	case change.JSON:
		var buf bytes.Buffer
		if json.Compact(&buf, []byte(x)) == nil {
			b.WriteString(buf.String())
		} else {
			b.WriteString(string(x))
		}
	case time.Time:
		b.WriteString(strconv.Quote(x.UTC().Format(time.RFC3339Nano)))
	default:
		if m, ok := toMap(v); ok {
			formatMap(b, m)
			return
		}
		if l, ok := toList(v); ok {
			b.WriteByte('[')
			for i, e := range l {
				if i > 0 {
					b.WriteString(", ")
				}
				format(b, e)
			}
			b.WriteByte(']')
			return
		}
		j, err := json.Marshal(v)
		if err != nil {
			j = []byte(strconv.Quote(reflect.TypeOf(v).String()))
		}
		b.Write(j)
	}
}

func formatMap(b *strings.Builder, m map[string]any) {
	if len(m) == 0 {
		b.WriteString("{}")
		return
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("{ ")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		if isIdent(k) {
			b.WriteString(k)
		} else {
			b.WriteString(strconv.Quote(k))
		}
		b.WriteString(" = ")
		format(b, m[k])
	}
	b.WriteString(" }")
}

func isIdent(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && (r >= '0' && r <= '9' || r == '-')) {
			return false
		}
	}
	return s != ""
}
