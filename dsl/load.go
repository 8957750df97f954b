package dsl

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Files holds the sources that Load parsed, so diagnostics can be printed
// with the offending line. The zero value holds nothing.
type Files struct {
	files map[string]*hcl.File
}

// Source returns the bytes of a parsed file, or nil.
func (f *Files) Source(filename string) []byte {
	if f == nil || f.files[filename] == nil {
		return nil
	}
	return f.files[filename].Bytes
}

// Options change how a file is loaded.
type Options struct {
	// Vars are the `-var NAME=value` overrides.
	Vars map[string]string
	// Offline is for commands that never connect anywhere (`sluice
	// validate`, `sluice test`), so that CI can check a pipeline without
	// its secrets: env("NAME") of an unset variable without a default is
	// then a warning at the call instead of an error, and the attribute is
	// left unset (its value is not checked).
	Offline bool
}

// LoadFile reads and loads the pipeline file at path. vars are the
// `-var NAME=value` overrides.
func LoadFile(path string, vars map[string]string) (*Config, *Files, hcl.Diagnostics) {
	return LoadFileWith(path, Options{Vars: vars})
}

// LoadFileWith is LoadFile with options.
func LoadFileWith(path string, opts Options) (*Config, *Files, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Files{}, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("cannot read pipeline file %s", path),
			Detail:   "Check the path; " + err.Error() + ".",
		}}
	}
	return LoadWith(path, src, opts)
}

// Load parses and checks one pipeline file. filename names it in
// diagnostics, and file() paths are relative to its directory. It returns
// every problem found, in one pass; the Config is nil when the file has a
// syntax error, and must not be run when diags has errors.
func Load(filename string, src []byte, vars map[string]string) (*Config, *Files, hcl.Diagnostics) {
	return LoadWith(filename, src, Options{Vars: vars})
}

// LoadWith is Load with options.
func LoadWith(filename string, src []byte, opts Options) (*Config, *Files, hcl.Diagnostics) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	files := &Files{files: map[string]*hcl.File{filename: file}}
	lowerSummaries(diags)
	if diags.HasErrors() {
		return nil, files, diags
	}
	body, ok := file.Body.(*hclsyntax.Body)
	if !ok {
		return nil, files, diags
	}
	l := &loader{
		cfg:     &Config{Filename: filename},
		src:     src,
		vars:    map[string]cty.Value{},
		dropped: map[Ref]bool{},
		funcs: map[string]function.Function{
			"env":  envFunc(os.LookupEnv, opts.Offline),
			"file": fileFunc(filepath.Dir(filename)),
		},
		diags: diags,
	}
	l.load(body, opts.Vars)
	sortDiagnostics(l.diags)
	return l.cfg, files, l.diags
}

// sortDiagnostics orders diagnostics as a reader meets them in the file;
// those without a position (about -var flags) come first.
func sortDiagnostics(diags hcl.Diagnostics) {
	sort.SliceStable(diags, func(i, j int) bool {
		a, b := diags[i].Subject, diags[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		default:
			return a.Start.Byte < b.Start.Byte
		}
	})
}

// lowerSummaries makes HCL's capitalized summaries ("Missing item
// separator") read like sluice's own, which are lower case like
// compiler messages.
func lowerSummaries(diags hcl.Diagnostics) {
	for _, d := range diags {
		r := []rune(d.Summary)
		if len(r) > 1 && unicode.IsUpper(r[0]) && unicode.IsLower(r[1]) {
			r[0] = unicode.ToLower(r[0])
			d.Summary = string(r)
		}
	}
}

// loader decodes one file. Every method adds what it finds wrong to diags
// and carries on, so that one run reports every mistake.
type loader struct {
	cfg   *Config
	src   []byte
	vars  map[string]cty.Value
	funcs map[string]function.Function
	diags hcl.Diagnostics
	// dropped are blocks whose header was wrong, so references to them
	// are not reported again as unknown.
	dropped map[Ref]bool
	// unsureFrom is set when some `from` could not be decoded: then a
	// source may look unread only because of that mistake.
	unsureFrom bool
}

func (l *loader) errorf(subject hcl.Range, detail, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf(format, args...),
		Detail:   detail,
		Subject:  subject.Ptr(),
	})
}

func (l *loader) warnf(subject hcl.Range, detail, format string, args ...any) {
	l.diags = append(l.diags, &hcl.Diagnostic{
		Severity: hcl.DiagWarning,
		Summary:  fmt.Sprintf(format, args...),
		Detail:   detail,
		Subject:  subject.Ptr(),
	})
}

func (l *loader) evalContext() *hcl.EvalContext {
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(l.vars)},
		Functions: l.funcs,
	}
}

func (l *loader) load(body *hclsyntax.Body, vars map[string]string) {
	for _, attr := range sortedAttrs(body) {
		l.errorf(attr.NameRange, "The top level of a pipeline file holds only blocks: "+strings.Join(topBlockTypes, ", ")+". Move the attribute into the block it belongs to.",
			"attribute %q is not allowed at the top level", attr.Name)
	}
	byType := map[string][]*hclsyntax.Block{}
	for _, b := range body.Blocks {
		switch b.Type {
		case "pipeline", "variable", "source", "transform", "sink", "test":
			byType[b.Type] = append(byType[b.Type], b)
		default:
			l.errorf(b.TypeRange, didYouMean(b.Type, topBlockTypes, "block types"), "unknown block type %q", b.Type)
		}
	}
	l.variables(byType["variable"], vars)
	l.pipeline(body, byType["pipeline"])
	seen := map[string]hcl.Range{}
	for _, b := range byType["source"] {
		if s := l.source(b, seen); s != nil {
			l.cfg.Sources = append(l.cfg.Sources, s)
		}
	}
	seen = map[string]hcl.Range{}
	for _, b := range byType["transform"] {
		if t := l.transform(b, seen); t != nil {
			l.cfg.Transforms = append(l.cfg.Transforms, t)
		}
	}
	seen = map[string]hcl.Range{}
	for _, b := range byType["sink"] {
		if s := l.sink(b, seen); s != nil {
			l.cfg.Sinks = append(l.cfg.Sinks, s)
		}
	}
	l.resolve()
	seen = map[string]hcl.Range{}
	for _, b := range byType["test"] {
		if t := l.test(b, seen); t != nil {
			l.cfg.Tests = append(l.cfg.Tests, t)
		}
	}
}

// sortedAttrs returns a body's attributes in the order written.
func sortedAttrs(body *hclsyntax.Body) []*hclsyntax.Attribute {
	attrs := make([]*hclsyntax.Attribute, 0, len(body.Attributes))
	for _, a := range body.Attributes {
		attrs = append(attrs, a)
	}
	sort.Slice(attrs, func(i, j int) bool { return attrs[i].SrcRange.Start.Byte < attrs[j].SrcRange.Start.Byte })
	return attrs
}

// labels checks that b has the labels spec wants (after the TYPE label of
// typed blocks, which the caller checked) and reports a mistake at the
// first missing or extra label.
func (l *loader) labels(b *hclsyntax.Block, spec *blockSpec) bool {
	want := len(spec.Labels)
	if len(b.Labels) == want {
		return true
	}
	at := b.OpenBraceRange
	if len(b.Labels) > want {
		at = b.LabelRanges[want]
	}
	l.errorf(at, fmt.Sprintf("Write %s { ... }.", spec.Usage()),
		"%s block needs %d label(s), got %d", b.Type, want, len(b.Labels))
	return false
}

// name checks a source, transform or sink name: unique within its kind
// and usable in a reference such as source.NAME.
func (l *loader) name(b *hclsyntax.Block, kind string, seen map[string]hcl.Range) bool {
	i := len(b.Labels) - 1
	name, at := b.Labels[i], b.LabelRanges[i]
	if !hclsyntax.ValidIdentifier(name) {
		l.errorf(at, fmt.Sprintf("A %s name is used in references like %s.NAME, so it must start with a letter and hold only letters, digits, _ and -.", kind, kind),
			"%s name %q is not a valid identifier", kind, name)
		return false
	}
	if prev, dup := seen[name]; dup {
		l.errorf(at, fmt.Sprintf("The first %s %q is at %s. Give each %s its own name.", kind, name, where(prev), kind),
			"duplicate %s %q", kind, name)
		return false
	}
	seen[name] = at
	return true
}

func (l *loader) variables(blocks []*hclsyntax.Block, overrides map[string]string) {
	decls := map[string]*Variable{}
	for _, b := range blocks {
		if !l.labels(b, variableSpec) {
			continue
		}
		v := &Variable{Name: b.Labels[0], DeclRange: b.DefRange()}
		if prev, dup := decls[v.Name]; dup {
			l.errorf(b.LabelRanges[0], fmt.Sprintf("The first variable %q is at %s.", v.Name, where(prev.DeclRange)), "duplicate variable %q", v.Name)
			continue
		}
		decls[v.Name] = v
		var fields struct{ Default cty.Value }
		present := l.decodeBody(b, variableSpec, &fields)
		switch {
		case hasKey(overrides, v.Name):
			l.vars[v.Name] = cty.StringVal(overrides[v.Name])
			v.Default = overrides[v.Name]
		case present["default"] != nil && fields.Default != cty.NilVal:
			l.vars[v.Name] = fields.Default
			v.Default = displayDefault(fields.Default)
		case present["default"] == nil:
			l.errorf(b.DefRange(), fmt.Sprintf("Give it a default (default = \"...\") or set it on the command line with -var %s=VALUE.", v.Name),
				"variable %q has no value", v.Name)
		}
		l.cfg.Variables = append(l.cfg.Variables, v)
	}
	names := make([]string, 0, len(overrides))
	for name := range overrides {
		names = append(names, name)
	}
	sort.Strings(names)
	declared := make([]string, 0, len(decls))
	for name := range decls {
		declared = append(declared, name)
	}
	sort.Strings(declared)
	for _, name := range names {
		if decls[name] == nil {
			l.diags = append(l.diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("-var %s: no variable %q is declared", name, name),
				Detail:   didYouMean(name, declared, "declared variables") + fmt.Sprintf(" Declare it with variable %q { default = \"...\" } or drop the -var flag.", name),
			})
		}
	}
}

// where is a position as diagnostics print it: FILE:LINE:COL.
func where(r hcl.Range) string {
	return fmt.Sprintf("%s:%d:%d", r.Filename, r.Start.Line, r.Start.Column)
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// displayDefault renders a variable's default as text; lists and objects
// have no single text form and give "".
func displayDefault(v cty.Value) string {
	if v.IsNull() || !v.Type().IsPrimitiveType() {
		return ""
	}
	switch v.Type() {
	case cty.String:
		return v.AsString()
	case cty.Bool:
		return fmt.Sprint(v.True())
	default:
		return v.AsBigFloat().Text('f', -1)
	}
}

func (l *loader) pipeline(body *hclsyntax.Body, blocks []*hclsyntax.Block) {
	p := &l.cfg.Pipeline
	if len(blocks) == 0 {
		start := hcl.Range{Filename: body.SrcRange.Filename, Start: hcl.InitialPos, End: hcl.InitialPos}
		l.errorf(start, `Every pipeline file starts with pipeline "NAME" {} naming the pipeline.`, "no pipeline block")
		return
	}
	for _, extra := range blocks[1:] {
		l.errorf(extra.DefRange(), fmt.Sprintf("The pipeline block is at %s; a file holds exactly one pipeline. Merge the two, or split the file.", where(blocks[0].DefRange())),
			"more than one pipeline block")
	}
	b := blocks[0]
	if !l.labels(b, pipelineSpec) {
		return
	}
	p.Name, p.DeclRange = b.Labels[0], b.DefRange()
	present := l.decodeBody(b, pipelineSpec, p)
	if present["state"] == nil {
		p.State = filepath.Join(".sluice", p.Name+".db")
	}
	if present["mask_key"] == nil {
		p.MaskKey = Secret(os.Getenv("SLUICE_MASK_KEY"))
	}
}

// DefaultName is the default name of what a pipeline owns in a source
// (a PostgreSQL slot and publication, a Kafka consumer group):
// "sluice_" and the pipeline name as a PostgreSQL identifier, lower
// case, [a-z0-9_] only. It is the one owner of that default: the loader
// fills it in, and sources that are built without a file ask it.
func DefaultName(pipeline string) string {
	var b strings.Builder
	b.WriteString("sluice_")
	for _, r := range strings.ToLower(pipeline) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
