package postgres

import (
	"fmt"
	"strings"
)

// parseArray parses PostgreSQL's array text form ("{1,2,NULL}",
// `{"a b","x\"y"}`, "{{1,2},{3,4}}", "[0:1]={1,2}") into []any, nested
// for multi-dimensional arrays, decoding each element with elem. NULL
// elements are nil.
func parseArray(s string, delim byte, elem func(string) (any, error)) (any, error) {
	if strings.HasPrefix(s, "[") { // explicit bounds: the dimensions do not change the values
		_, elems, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("array %q: malformed dimensions", truncate(s))
		}
		s = elems
	}
	p := arrayParser{s: s, delim: delim, elem: elem}
	v, err := p.array()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("array %q: unexpected text after position %d", truncate(s), p.i)
	}
	return v, nil
}

type arrayParser struct {
	s     string
	i     int
	delim byte
	elem  func(string) (any, error)
}

func (p *arrayParser) fail(what string) error {
	return fmt.Errorf("array %q: %s at position %d", truncate(p.s), what, p.i)
}

func (p *arrayParser) array() ([]any, error) {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, p.fail("expected {")
	}
	p.i++
	out := []any{}
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return out, nil
	}
	for {
		if p.i >= len(p.s) {
			return nil, p.fail("unterminated array")
		}
		var v any
		var err error
		switch p.s[p.i] {
		case '{':
			v, err = p.array()
		case '"':
			var str string
			if str, err = p.quoted(); err == nil {
				v, err = p.elem(str)
			}
		default:
			start := p.i
			for p.i < len(p.s) && p.s[p.i] != p.delim && p.s[p.i] != '}' {
				p.i++
			}
			raw := strings.TrimSpace(p.s[start:p.i])
			if raw == "NULL" {
				v = nil
			} else {
				v, err = p.elem(raw)
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if p.i >= len(p.s) {
			return nil, p.fail("unterminated array")
		}
		switch p.s[p.i] {
		case p.delim:
			p.i++
		case '}':
			p.i++
			return out, nil
		default:
			return nil, p.fail("expected delimiter or }")
		}
	}
}

func (p *arrayParser) quoted() (string, error) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch c {
		case '\\':
			p.i++
			if p.i >= len(p.s) {
				return "", p.fail("unterminated escape")
			}
			b.WriteByte(p.s[p.i])
		case '"':
			p.i++
			return b.String(), nil
		default:
			b.WriteByte(c)
		}
		p.i++
	}
	return "", p.fail("unterminated quoted element")
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
