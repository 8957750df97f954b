package format

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/sluice-cdc/sluice/engine/change"
)

// scanner is DecodeNative's fast path: a one-pass reader of well-formed
// native events. It gives up (ok = false) on anything unusual, from a
// syntax error to an escaped surrogate pair or a duplicate field, and
// DecodeNative then decodes the line with encoding/json, which either
// accepts it or says precisely what is wrong. So the fast path only has to
// be right about what it accepts; FuzzDecodeNative checks that it agrees
// with the careful path there.
type scanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *scanner) fail() { s.bad = true }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) {
	if s.peek() != c {
		s.fail()
		return
	}
	s.i++
}

// literal consumes word (true, false, null) if it is next.
func (s *scanner) literal(word string) bool {
	s.ws()
	if len(s.b)-s.i >= len(word) && string(s.b[s.i:s.i+len(word)]) == word {
		s.i += len(word)
		return true
	}
	return false
}

// list reads open, then items separated by commas, then close, calling
// item for each; an empty list calls it never.
func (s *scanner) list(open, close byte, item func()) {
	s.expect(open)
	if s.peek() == close {
		s.i++
		return
	}
	for !s.bad {
		item()
		if s.peek() == ',' {
			s.i++
			continue
		}
		s.expect(close)
		return
	}
}

func (s *scanner) str() string {
	if s.peek() != '"' {
		s.fail()
		return ""
	}
	s.i++
	start := s.i
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			out := string(s.b[start:s.i])
			s.i++
			if !ascii && !utf8.ValidString(out) {
				s.fail()
			}
			return out
		case c == '\\':
			return s.escaped(start)
		case c < 0x20:
			s.fail()
			return ""
		case c >= utf8.RuneSelf:
			ascii = false
		}
		s.i++
	}
	s.fail()
	return ""
}

// escaped finishes a string that has escapes, from its start.
func (s *scanner) escaped(start int) string {
	out := append([]byte(nil), s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(out) {
				s.fail()
			}
			return string(out)
		case c < 0x20:
			s.fail()
			return ""
		case c != '\\':
			out = append(out, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			break
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if s.i+4 > len(s.b) {
				s.fail()
				return ""
			}
			r, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
			if err != nil || (r >= 0xD800 && r < 0xE000) {
				s.fail() // surrogates: left to encoding/json
				return ""
			}
			out = utf8.AppendRune(out, rune(r))
			s.i += 4
		default:
			s.fail()
			return ""
		}
	}
	s.fail()
	return ""
}

func (s *scanner) number() any {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	lit := string(s.b[start:s.i])
	if !isJSONNumber(lit) {
		s.fail()
		return nil
	}
	if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return n
	}
	return change.Numeric(lit)
}

// value reads any JSON value as DecodeNative represents it in rows.
func (s *scanner) value(depth int) any {
	if depth > 100 {
		s.fail()
		return nil
	}
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		out := []any{}
		s.list('[', ']', func() { out = append(out, s.value(depth+1)) })
		return out
	case c == 't' && s.literal("true"):
		return true
	case c == 'f' && s.literal("false"):
		return false
	case c == 'n' && s.literal("null"):
		return nil
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	s.fail()
	return nil
}

// object reads {"name": value, ...}; a later duplicate name wins, as in
// encoding/json.
func (s *scanner) object(depth int) map[string]any {
	m := map[string]any{}
	s.list('{', '}', func() {
		k := s.str()
		s.expect(':')
		m[k] = s.value(depth)
	})
	return m
}

// rowOrNull reads an object of columns or null.
func (s *scanner) rowOrNull() change.Row {
	if s.peek() == 'n' && s.literal("null") {
		return change.Row{}
	}
	if s.peek() != '{' {
		s.fail()
		return change.Row{}
	}
	return change.RowOf(s.object(1))
}

// fastNative decodes a well-formed native event in one pass; ok is false
// when the line needs the careful path.
func fastNative(line []byte) (e change.Event, ok bool) {
	s := &scanner{b: line}
	var seen [16]bool // room for every one of nativeFields, on the stack
	var op, pos string
	changedSet := false
	s.list('{', '}', func() {
		name := s.str()
		s.expect(':')
		field := -1
		for i, f := range nativeFields {
			if f == name {
				field = i
			}
		}
		if field < 0 || seen[field] || s.bad {
			s.fail()
			return
		}
		seen[field] = true
		switch name {
		case "op":
			op = s.str()
		case "schema":
			e.Schema = s.str()
		case "table":
			e.Table = s.str()
		case "key":
			e.Key = s.rowOrNull()
		case "before":
			e.Before = s.rowOrNull()
		case "after":
			e.After = s.rowOrNull()
		case "changed":
			e.Changed, changedSet = s.names(), true
		case "tx":
			e.Tx = s.tx()
		case "partition":
			s.str() // the stream's, which the reader assigns
		case "position":
			pos = s.str()
		case "transaction":
			s.value(1) // the sink's output, not part of the change
		}
	})
	if s.bad || s.peek() != 0 {
		return e, false
	}
	var err error
	if e.Op, err = change.ParseOp(op); err != nil || e.Op == change.Mark || e.Table == "" {
		return e, false
	}
	switch {
	case (e.Op == change.Insert || e.Op == change.Snapshot || e.Op == change.Update) && e.After.IsZero(),
		e.Op == change.Delete && e.Before.IsZero() && e.Key.IsZero():
		return e, false
	}
	if !changedSet {
		e.Changed = deriveChanged(&e)
	}
	if pos != "" {
		if e.Position, err = change.ParsePosition(change.Stream{}, pos); err != nil {
			return e, false
		}
	}
	return e, true
}

// names reads an array of strings.
func (s *scanner) names() []string {
	out := []string{}
	s.list('[', ']', func() { out = append(out, s.str()) })
	return out
}

// tx reads {"id": N, "commit_time": "..."}, both optional.
func (s *scanner) tx() change.Tx {
	var tx change.Tx
	s.list('{', '}', func() {
		switch s.str() {
		case "id":
			s.expect(':')
			s.ws()
			start := s.i
			s.i = skipDigits(string(s.b[s.i:]), 0) + s.i
			id, err := strconv.ParseUint(string(s.b[start:s.i]), 10, 64)
			if err != nil || (s.b[start] == '0' && s.i-start > 1) {
				s.fail()
			}
			tx.ID = id
		case "commit_time":
			s.expect(':')
			t, err := time.Parse(time.RFC3339Nano, s.str())
			if err != nil {
				s.fail()
			}
			tx.CommitTime = t.UTC()
		default:
			s.fail()
		}
	})
	return tx
}
