package dsl

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/sluice-cdc/sluice/dsl/eventexpr"
)

// exprDetail explains what a per-event expression can use.
const exprDetail = "Expressions are expr-lang over one change event: op, schema, table, before, after, row, changed, key, tx and position, " +
	"with strings in single quotes, e.g. \"op != 'delete' && after.total >= 50\"."

// program compiles a per-event expression written as an HCL string, and
// reports a mistake at its place inside the string.
func (l *loader) program(expr hcl.Expression, name string, predicate bool) (*eventexpr.Program, bool) {
	v, ok := l.eval(expr)
	if !ok {
		return nil, false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() {
		l.errorf(expr.Range(), "Write the expression as a string: "+name+" = \"op != 'delete'\".", "%s must be an expression string, not %s", name, typeText(v))
		return nil, false
	}
	kind := eventexpr.Value
	if predicate {
		kind = eventexpr.Predicate
	}
	p, err := eventexpr.Compile(s.AsString(), kind)
	if err != nil {
		var ee *eventexpr.Error
		at := expr.Range()
		msg := err.Error()
		if errors.As(err, &ee) {
			at = l.offsetRange(expr, ee.Offset)
			msg = ee.Message
		}
		msg, _, _ = strings.Cut(msg, "\n")
		l.errorf(at, exprSuggestion(msg)+exprDetail, "%s: %s", name, msg)
		return nil, false
	}
	return p, true
}

// exprSuggestion proposes a name for expr-lang's "unknown name X" and for
// op compared with a value it never takes, or returns "".
func exprSuggestion(msg string) string {
	var got, quote string
	var candidates []string
	if rest, ok := strings.CutPrefix(msg, "unknown name "); ok {
		got, _, _ = strings.Cut(rest, ";")
		candidates = eventexpr.Names
	} else if rest, ok := strings.CutPrefix(msg, "op is never "); ok {
		quoted, _, _ := strings.Cut(rest, ";")
		got = strings.Trim(quoted, `"`)
		candidates, quote = eventexpr.Ops, "'"
	}
	if s := suggest(got, candidates); got != "" && s != "" {
		return fmt.Sprintf("Did you mean %s%s%s? ", quote, s, quote)
	}
	return ""
}

// columnMap decodes set, mask and rename: an object written in the file,
// kept in the order written.
func (l *loader) columnMap(expr hcl.Expression, a *attrSpec) (any, bool) {
	pairs, diags := hcl.ExprMap(expr)
	if diags.HasErrors() {
		l.errorf(expr.Range(), fmt.Sprintf("Write %s = %s.", a.Name, example(a)), "%s must be an object", a.Name)
		return nil, false
	}
	var (
		set    = []SetColumn{}
		mask   = []MaskColumn{}
		rename = []RenameColumn{}
		seen   = map[string]bool{}
		ok     = true
	)
	for _, kv := range pairs {
		col, good := l.key(kv.Key, a.Name)
		if !good {
			ok = false
			continue
		}
		if seen[col] {
			l.errorf(kv.Key.Range(), "Write each column once.", "column %q appears twice in %s", col, a.Name)
			ok = false
			continue
		}
		seen[col] = true
		switch a.Type {
		case tSet:
			p, good := l.program(kv.Value, a.Name+"."+col, false)
			ok = ok && good
			set = append(set, SetColumn{Column: col, Expr: p})
		case tMask:
			kind, good := l.text(kv.Value, &attrSpec{Name: a.Name + "." + col, Type: tString, Enum: maskKinds})
			ok = ok && good
			mask = append(mask, MaskColumn{Column: col, Kind: kind})
		case tRename:
			to, good := l.text(kv.Value, &attrSpec{Name: a.Name + "." + col, Type: tString})
			ok = ok && good
			rename = append(rename, RenameColumn{From: col, To: to})
		}
	}
	switch a.Type {
	case tSet:
		return set, ok
	case tMask:
		return mask, ok
	default:
		return rename, ok
	}
}

// key reads an object key: a bare name or a string.
func (l *loader) key(expr hcl.Expression, attr string) (string, bool) {
	if k := hcl.ExprAsKeyword(expr); k != "" {
		return k, true
	}
	v, ok := l.eval(expr)
	if !ok {
		return "", false
	}
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() || s.AsString() == "" {
		l.errorf(expr.Range(), "Keys are column names.", "key of %s must be a column name", attr)
		return "", false
	}
	return s.AsString(), true
}

// text evaluates one string value with the checks of a.
func (l *loader) text(expr hcl.Expression, a *attrSpec) (string, bool) {
	v, ok := l.eval(expr)
	if !ok {
		return "", false
	}
	return l.str(expr, a, v)
}

// refs decodes `from`: one reference or a list of them, each kept with
// the range of its own tokens.
func (l *loader) refs(expr hcl.Expression) ([]Ref, bool) {
	exprs := []hcl.Expression{expr}
	if tup, isList := expr.(*hclsyntax.TupleConsExpr); isList {
		list, _ := hcl.ExprList(tup)
		exprs = list
		if len(exprs) == 0 {
			l.errorf(expr.Range(), "Write from = source.NAME, or a list of sources and transforms.", "from is empty")
			return nil, false
		}
	}
	refs := []Ref{}
	ok := true
	for _, e := range exprs {
		r, good := l.ref(e)
		if !good {
			ok = false
			continue
		}
		if slices.ContainsFunc(refs, func(x Ref) bool { return x.Kind == r.Kind && x.Name == r.Name }) {
			l.errorf(r.Range, "List each input once.", "%s is listed twice in from", r)
			ok = false
			continue
		}
		refs = append(refs, r)
	}
	return refs, ok
}

func (l *loader) ref(e hcl.Expression) (Ref, bool) {
	const how = "Write from = source.NAME or transform.NAME, without quotes; a list [source.a, transform.b] merges several inputs."
	tr, diags := hcl.AbsTraversalForExpr(e)
	if diags.HasErrors() {
		l.errorf(e.Range(), how, "from takes references like source.NAME")
		return Ref{}, false
	}
	var name string
	if len(tr) == 2 {
		if a, ok := tr[1].(hcl.TraverseAttr); ok {
			name = a.Name
		}
	}
	kind := tr.RootName()
	switch {
	case kind == "sink":
		l.errorf(tr.SourceRange(), "A sink has no output. To send the same events to two sinks, give both the same from.",
			"%s cannot be read from", traversalText(tr))
		return Ref{}, false
	case kind != "source" && kind != "transform":
		l.errorf(tr[0].SourceRange(), didYouMean(kind, []string{"source", "transform"}, "kinds of reference")+" "+how,
			"unknown reference kind %q", kind)
		return Ref{}, false
	case name == "":
		l.errorf(tr.SourceRange(), how, "from takes references like %s.NAME", kind)
		return Ref{}, false
	}
	return Ref{Kind: RefKind(kind), Name: name, Range: tr.SourceRange()}, true
}

// offsetRange maps a byte offset in the text of a string expression to the
// place in the file: through escapes, heredoc indentation and, for strings
// built with ${...}, the interpolated values (an offset inside one points
// at the interpolation).
func (l *loader) offsetRange(expr hcl.Expression, offset int) hcl.Range {
	te, ok := expr.(*hclsyntax.TemplateExpr)
	if !ok || offset < 0 {
		return expr.Range()
	}
	quoted := te.SrcRange.Start.Byte < len(l.src) && l.src[te.SrcRange.Start.Byte] == '"'
	for _, part := range te.Parts {
		lit, isLit := part.(*hclsyntax.LiteralValueExpr)
		if !isLit {
			v, diags := part.Value(l.evalContext())
			s, err := convert.Convert(v, cty.String)
			if diags.HasErrors() || err != nil || !s.IsKnown() || s.IsNull() {
				return expr.Range()
			}
			if n := len(s.AsString()); offset >= n {
				offset -= n
				continue
			}
			return part.Range()
		}
		if lit.Val.Type() != cty.String {
			return expr.Range()
		}
		decoded := lit.Val.AsString()
		if offset > len(decoded) {
			offset -= len(decoded)
			continue
		}
		r := lit.SrcRange
		if r.Start.Byte < 0 || r.End.Byte > len(l.src) || r.Start.Byte > r.End.Byte {
			return expr.Range()
		}
		raw := l.src[r.Start.Byte:r.End.Byte]
		return pointAt(r.Filename, r.Start, raw, sourceOffset(raw, decoded, offset, quoted))
	}
	return expr.Range()
}

// sourceOffset returns the index in raw (a string literal's source text)
// of the byte that became byte n of decoded: it undoes the escapes of
// quoted strings and the indentation that <<- heredocs strip.
func sourceOffset(raw []byte, decoded string, n int, quoted bool) int {
	i, dec := 0, 0
	lineStart := !quoted
	for i < len(raw) {
		if lineStart {
			if skip := leadingSpace(raw[i:]) - leadingSpace([]byte(decoded[min(dec, len(decoded)):])); skip > 0 {
				i += skip
			}
			lineStart = false
			continue
		}
		if dec >= n {
			break
		}
		step, width := 1, 1
		switch {
		case quoted && raw[i] == '\\' && i+1 < len(raw):
			step = 2
			switch raw[i+1] {
			case 'u':
				step, width = escapeWidth(raw[i:], 6)
			case 'U':
				step, width = escapeWidth(raw[i:], 10)
			}
		case (raw[i] == '$' || raw[i] == '%') && i+2 < len(raw) && raw[i+1] == raw[i] && raw[i+2] == '{':
			step = 2 // "$${" is written for "${"
		case raw[i] == '\n' && !quoted:
			lineStart = true
		}
		i += step
		dec += width
	}
	return min(i, len(raw))
}

func leadingSpace(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == ' ' || b[n] == '\t') {
		n++
	}
	return n
}

// escapeWidth measures a \uNNNN or \UNNNNNNNN escape: its length in the
// source and the UTF-8 length of the character it stands for.
func escapeWidth(raw []byte, size int) (int, int) {
	if len(raw) < size {
		return len(raw), 1
	}
	var r rune
	for _, c := range raw[2:size] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		}
	}
	return size, len(string(r))
}

// pointAt is the one-character range at raw[i], raw starting at start.
func pointAt(filename string, start hcl.Pos, raw []byte, i int) hcl.Range {
	pos := start
	for _, r := range string(raw[:i]) {
		if r == '\n' {
			pos.Line++
			pos.Column = 1
		} else {
			pos.Column++
		}
	}
	pos.Byte = start.Byte + i
	end := pos
	if i < len(raw) {
		end.Byte++
		end.Column++
	}
	return hcl.Range{Filename: filename, Start: pos, End: end}
}
