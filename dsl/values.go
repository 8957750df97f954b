package dsl

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"github.com/sluice-cdc/sluice/engine/change"
)

// value decodes one attribute as its spec says. ok is false when the
// value is unusable (a diagnostic says why) or null without a default.
func (l *loader) value(attr *hclsyntax.Attribute, a *attrSpec) (any, bool) {
	switch a.Type {
	case tRefs:
		refs, ok := l.refs(attr.Expr)
		l.unsureFrom = l.unsureFrom || !ok
		return refs, ok
	case tWhere:
		return l.program(attr.Expr, a.Name, true)
	case tExpr:
		return l.program(attr.Expr, a.Name, false)
	case tSet, tMask, tRename:
		return l.columnMap(attr.Expr, a)
	}
	v, ok := l.eval(attr.Expr)
	if !ok {
		return nil, false
	}
	if v.IsNull() {
		if a.Required {
			l.errorf(attr.Expr.Range(), fmt.Sprintf("Write %s = %s. %s", a.Name, example(a), a.Doc), "%s must not be null", a.Name)
		}
		return a.Default, a.Default != nil
	}
	return l.typed(attr.Expr, a, v)
}

// eval evaluates a load-time expression: literals, var.NAME, env() and
// file(). References to blocks and unknown names are reported here, with
// clearer words than HCL's.
func (l *loader) eval(expr hcl.Expression) (cty.Value, bool) {
	if !l.checkNames(expr) {
		return cty.NilVal, false
	}
	v, diags := expr.Value(l.evalContext())
	lowerSummaries(diags)
	for _, d := range diags {
		rephraseCall(d)
	}
	l.diags = append(l.diags, diags...)
	if diags.HasErrors() {
		return cty.NilVal, false
	}
	if !v.IsWhollyKnown() {
		l.warnUnsetEnv(expr)
		return cty.NilVal, false
	}
	v, _ = v.Unmark()
	return v, true
}

// rephraseCall replaces HCL's generic "Error in function call" with the
// function's own words, and suggests a function for an unknown one.
func rephraseCall(d *hcl.Diagnostic) {
	if x, ok := d.Extra.(hclsyntax.FunctionCallUnknownDiagExtra); ok {
		d.Summary = fmt.Sprintf("unknown function %s", x.CalledFunctionName())
		d.Detail = didYouMean(x.CalledFunctionName(), []string{"env", "file"}, "load-time functions") +
			" Per-event functions such as lower() belong inside the quoted expressions of where and set."
		return
	}
	x, ok := d.Extra.(hclsyntax.FunctionCallDiagExtra)
	if !ok {
		return
	}
	var ce *callError
	if errors.As(x.FunctionCallError(), &ce) {
		d.Summary, d.Detail = ce.Summary, ce.Detail
	}
}

// checkNames reports names an expression may not use: only var.NAME of a
// declared variable is allowed outside `from`.
func (l *loader) checkNames(expr hcl.Expression) bool {
	ok := true
	for _, tr := range expr.Variables() {
		root, at := tr.RootName(), tr.SourceRange()
		switch root {
		case "var":
			attr, isAttr := hcl.TraverseAttr{}, len(tr) > 1
			if isAttr {
				attr, isAttr = tr[1].(hcl.TraverseAttr)
			}
			if !isAttr {
				l.errorf(at, "Write var.NAME to use the variable NAME.", "var needs a variable name")
				ok = false
				continue
			}
			if _, declared := l.vars[attr.Name]; !declared {
				l.errorf(at, didYouMean(attr.Name, sortedKeys(l.vars), "declared variables")+
					fmt.Sprintf(" Declare it with variable %q { default = \"...\" }.", attr.Name),
					"unknown variable var.%s", attr.Name)
				ok = false
			}
		case "source", "transform", "sink":
			l.errorf(at, "Only from = ... takes references to blocks. Here write a value: a literal, var.NAME, env(\"NAME\") or file(\"path\").",
				"%s cannot be used here", traversalText(tr))
			ok = false
		default:
			l.errorf(at, "A value is a literal (quote text: \""+root+"\"), var.NAME, env(\"NAME\") or file(\"path\").",
				"unknown name %s", root)
			ok = false
		}
	}
	return ok
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func traversalText(tr hcl.Traversal) string {
	s := tr.RootName()
	for _, step := range tr[1:] {
		if a, ok := step.(hcl.TraverseAttr); ok {
			s += "." + a.Name
		}
	}
	return s
}

// typed converts an evaluated value to the Go value of the attribute's
// type, checking enums, ranges and formats.
func (l *loader) typed(expr hcl.Expression, a *attrSpec, v cty.Value) (any, bool) {
	at := expr.Range()
	switch a.Type {
	case tString, tSecret:
		s, ok := l.str(expr, a, v)
		if !ok {
			return nil, false
		}
		if a.Type == tSecret {
			return Secret(s), true
		}
		return s, true
	case tBool:
		b, err := convert.Convert(v, cty.Bool)
		if err != nil || b.IsNull() {
			return l.wrongType(at, a, v)
		}
		return b.True(), true
	case tInt:
		return l.integer(at, a, v)
	case tDuration:
		s, ok := l.str(expr, a, v)
		if !ok {
			return nil, false
		}
		return l.duration(at, a.Name, shown(expr, s), s)
	case tStrings:
		return l.strings(expr, a, v)
	case tHeaders:
		m, err := convert.Convert(v, cty.Map(cty.String))
		if err != nil || !v.Type().IsObjectType() && !v.Type().IsMapType() {
			return l.wrongType(at, a, v)
		}
		out := map[string]Secret{}
		for k, e := range m.AsValueMap() {
			if e.IsNull() {
				l.errorf(at, "Give every header a value.", "header %q of %s is null", k, a.Name)
				return nil, false
			}
			out[k] = Secret(e.AsString())
		}
		return out, true
	case tRetry:
		return l.retry(expr, a, v)
	case tRow:
		if !isObject(v) {
			return l.wrongType(at, a, v)
		}
		return change.RowOf(toGo(v).(map[string]any)), true
	case tRows:
		if !v.Type().IsTupleType() && !v.Type().IsListType() {
			return l.wrongType(at, a, v)
		}
		rows := []change.Row{}
		for _, e := range v.AsValueSlice() {
			if !isObject(e) {
				return l.wrongType(at, a, v)
			}
			rows = append(rows, change.RowOf(toGo(e).(map[string]any)))
		}
		return rows, true
	case tAny:
		return v, true
	}
	return nil, false
}

func isObject(v cty.Value) bool {
	return !v.IsNull() && (v.Type().IsObjectType() || v.Type().IsMapType())
}

// str converts to a string and checks the attribute's enum and format.
func (l *loader) str(expr hcl.Expression, a *attrSpec, v cty.Value) (string, bool) {
	s, err := convert.Convert(v, cty.String)
	if err != nil || s.IsNull() {
		l.wrongType(expr.Range(), a, v)
		return "", false
	}
	str := s.AsString()
	if len(a.Enum) > 0 && !slices.Contains(a.Enum, str) {
		detail := "The allowed values are " + quoteList(a.Enum) + "."
		if isLiteral(expr) {
			detail = didYouMean(str, a.Enum, "allowed values")
		}
		l.errorf(expr.Range(), detail, "%s = %s is not allowed", a.Name, shown(expr, str))
		return "", false
	}
	if a.Check != nil {
		if problem, fix := a.Check(str); problem != "" {
			l.errorf(expr.Range(), fix, "%s: %s %s", a.Name, shown(expr, str), problem)
			return "", false
		}
	}
	return str, true
}

func (l *loader) strings(expr hcl.Expression, a *attrSpec, v cty.Value) ([]string, bool) {
	if !v.Type().IsTupleType() && !v.Type().IsListType() && !v.Type().IsSetType() {
		l.wrongType(expr.Range(), a, v)
		return nil, false
	}
	// point at the element when the list is written out
	var elems []hclsyntax.Expression
	if tup, ok := expr.(*hclsyntax.TupleConsExpr); ok {
		elems = tup.Exprs
	}
	out := []string{}
	ok := true
	for i, e := range v.AsValueSlice() {
		at := expr
		if i < len(elems) {
			at = elems[i]
		}
		s, err := convert.Convert(e, cty.String)
		if err != nil || s.IsNull() {
			l.errorf(at.Range(), fmt.Sprintf("Write %s = %s.", a.Name, example(a)), "%s must be a list of strings; element %d is %s", a.Name, i+1, typeText(e))
			ok = false
			continue
		}
		if a.Check != nil {
			if problem, fix := a.Check(s.AsString()); problem != "" {
				l.errorf(at.Range(), fix, "%s: %s %s", a.Name, shown(at, s.AsString()), problem)
				ok = false
				continue
			}
		}
		out = append(out, s.AsString())
	}
	return out, ok
}

func (l *loader) integer(at hcl.Range, a *attrSpec, v cty.Value) (int64, bool) {
	n, err := convert.Convert(v, cty.Number)
	if err != nil || n.IsNull() {
		l.wrongType(at, a, v)
		return 0, false
	}
	f := n.AsBigFloat()
	i, acc := f.Int64()
	if !f.IsInt() || acc != big.Exact {
		l.errorf(at, fmt.Sprintf("Write a whole number, like %s = %s.", a.Name, example(a)), "%s must be a whole number", a.Name)
		return 0, false
	}
	if i < a.Min {
		l.errorf(at, fmt.Sprintf("Write %s = %d or more.", a.Name, a.Min), "%s must be at least %d, not %d", a.Name, a.Min, i)
		return 0, false
	}
	return i, true
}

// duration parses s; shown is s as a diagnostic may print it.
func (l *loader) duration(at hcl.Range, name, shown, s string) (time.Duration, bool) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		l.errorf(at, `Write a positive number with a unit: "500ms", "10s", "1m" or "1h30m".`, "%s = %s is not a duration", name, shown)
		return 0, false
	}
	return d, true
}

// retry decodes `retry = { max = 8, backoff = "500ms" }`; an absent key
// keeps its default.
func (l *loader) retry(expr hcl.Expression, a *attrSpec, v cty.Value) (any, bool) {
	at := expr.Range()
	if !isObject(v) {
		return l.wrongType(at, a, v)
	}
	r := a.Default.(retryPolicy)
	ok := true
	for k, e := range v.AsValueMap() {
		switch k {
		case "max":
			n, good := l.integer(at, &attrSpec{Name: "retry.max", Type: tInt}, e)
			r.Max, ok = n, ok && good
		case "backoff":
			s, err := convert.Convert(e, cty.String)
			if err != nil || s.IsNull() {
				l.errorf(at, `Write backoff = "500ms".`, "retry.backoff must be a duration string, not %s", typeText(e))
				ok = false
				continue
			}
			d, good := l.duration(at, "retry.backoff", shown(expr, s.AsString()), s.AsString())
			r.Backoff, ok = d, ok && good
		default:
			l.errorf(at, didYouMean(k, []string{"max", "backoff"}, "keys of retry"), "unknown key %q in retry", k)
			ok = false
		}
	}
	return r, ok
}

func (l *loader) wrongType(at hcl.Range, a *attrSpec, v cty.Value) (any, bool) {
	l.errorf(at, fmt.Sprintf("Write %s = %s.", a.Name, example(a)), "%s must be %s, not %s", a.Name, article(a.Type.String()), typeText(v))
	return nil, false
}

func article(s string) string {
	if strings.HasPrefix(s, "a") || strings.HasPrefix(s, "e") || strings.HasPrefix(s, "o") {
		return "an " + s
	}
	return "a " + s
}

// typeText names a value's type the way the reference does.
func typeText(v cty.Value) string {
	t := v.Type()
	switch {
	case v.IsNull():
		return "null"
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "an object"
	}
	return t.FriendlyName()
}

// toGo converts a cty value to the Go values rows hold: whole numbers →
// int64, other numbers → float64, strings, bools, null → nil, lists →
// []any, objects → map[string]any.
func toGo(v cty.Value) any {
	if v.IsNull() || !v.IsKnown() {
		return nil
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Bool:
		return v.True()
	case t == cty.Number:
		f := v.AsBigFloat()
		if i, acc := f.Int64(); f.IsInt() && acc == big.Exact {
			return i
		}
		x, _ := f.Float64()
		return x
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		out := make([]any, 0, v.LengthInt())
		for _, e := range v.AsValueSlice() {
			out = append(out, toGo(e))
		}
		return out
	case t.IsObjectType() || t.IsMapType():
		out := make(map[string]any, v.LengthInt())
		for k, e := range v.AsValueMap() {
			out[k] = toGo(e)
		}
		return out
	}
	return nil
}

// shown is a value as diagnostics print it: quoted when it is written in
// the file, hidden when it comes from env(), file() or a variable, which
// may hold secrets.
func shown(expr hcl.Expression, s string) string {
	if isLiteral(expr) {
		return fmt.Sprintf("%q", s)
	}
	return "(a value from env, file or var)"
}

// isLiteral reports whether expr is written out in the file: no
// variables and no function calls.
func isLiteral(expr hcl.Expression) bool {
	if len(expr.Variables()) > 0 {
		return false
	}
	literal := true
	if e, ok := expr.(hclsyntax.Expression); ok {
		hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
			if _, call := n.(*hclsyntax.FunctionCallExpr); call {
				literal = false
			}
			return nil
		})
	}
	return literal
}

// warnUnsetEnv reports, in offline mode, the env() calls in expr whose
// variable is unset: the value they stand for is unknown, so the
// attribute is skipped.
func (l *loader) warnUnsetEnv(expr hcl.Expression) {
	e, ok := expr.(hclsyntax.Expression)
	if !ok {
		return
	}
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok || call.Name != "env" || len(call.Args) != 1 {
			return nil
		}
		name, diags := call.Args[0].Value(l.evalContext())
		if diags.HasErrors() || !name.IsKnown() || name.IsNull() || name.Type() != cty.String {
			return nil
		}
		if _, set := os.LookupEnv(name.AsString()); !set {
			l.warnf(call.Range(), fmt.Sprintf("The value is not checked now; sluice run and dry-run need it: export %s=... or give a default, env(%q, \"...\").", name.AsString(), name.AsString()),
				"environment variable %s is not set", name.AsString())
		}
		return nil
	})
}
