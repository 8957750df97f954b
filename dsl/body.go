package dsl

import (
	"fmt"
	"reflect"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// retryPolicy is the decoded `retry = { max, backoff }` of webhook sinks.
type retryPolicy struct {
	Max     int64
	Backoff time.Duration
}

// decodeBody decodes the attributes of b into dsts, pointers to the
// structs the block decodes into, as spec describes: each attribute into
// its spec's Field (in the first struct that has it), defaults for absent
// ones, and the Ranges map (of the first struct that has one) from
// attribute name to the written value. Nested
// blocks that spec does not list are reported; the caller decodes the
// listed ones. It returns the attributes written, by name.
func (l *loader) decodeBody(b *hclsyntax.Block, spec *blockSpec, dsts ...any) map[string]*hclsyntax.Attribute {
	body := b.Body
	rvs := make([]reflect.Value, len(dsts))
	for i, d := range dsts {
		rvs[i] = reflect.ValueOf(d).Elem()
	}
	ranges := map[string]hcl.Range{}
	present := map[string]*hclsyntax.Attribute{}
	misspelt := map[string]bool{} // attributes an unknown one was probably meant to be
	for _, attr := range sortedAttrs(body) {
		a := spec.attr(attr.Name)
		if a == nil {
			misspelt[suggest(attr.Name, spec.attrNames())] = true
			l.errorf(attr.NameRange, didYouMean(attr.Name, spec.attrNames(), "attributes of "+spec.Title()),
				"unknown attribute %q in %s", attr.Name, spec.Title())
			continue
		}
		present[attr.Name] = attr
		ranges[attr.Name] = attr.Expr.Range()
		if v, ok := l.value(attr, a); ok {
			setField(rvs, a, v)
		}
	}
	for _, nb := range body.Blocks {
		if spec.block(nb.Type) != nil {
			continue
		}
		detail := didYouMean(nb.Type, blockNames(spec.Blocks), "blocks allowed in "+spec.Title())
		if spec.attr(nb.Type) != nil {
			detail = fmt.Sprintf("%s is an attribute, not a block: write %s = { ... } with an equals sign.", nb.Type, nb.Type)
		}
		l.errorf(nb.TypeRange, detail, "unknown block %q in %s", nb.Type, spec.Title())
	}
	for i := range spec.Attrs {
		a := &spec.Attrs[i]
		if present[a.Name] != nil {
			continue
		}
		if a.Required && a.Type == tRefs {
			l.unsureFrom = true
		}
		if a.Required && !misspelt[a.Name] {
			l.errorf(b.DefRange(), fmt.Sprintf("Add %s = %s. %s", a.Name, example(a), a.Doc),
				"%s is missing required attribute %q", header(b), a.Name)
			continue
		}
		if a.Default != nil {
			setField(rvs, a, a.Default)
		}
	}
	for _, rv := range rvs {
		if f := rv.FieldByName("Ranges"); f.IsValid() {
			f.Set(reflect.ValueOf(ranges))
			break
		}
	}
	return present
}

// header is a block's header as written: `sink "mysql" "replica"`.
func header(b *hclsyntax.Block) string {
	s := b.Type
	for _, label := range b.Labels {
		s += fmt.Sprintf(" %q", label)
	}
	return s
}

func blockNames(specs []*blockSpec) []string {
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Type
	}
	return names
}

// setField stores a decoded value in the struct field the spec names,
// converting between types of the same kind (int64 → int, string →
// Secret).
func setField(rvs []reflect.Value, a *attrSpec, v any) {
	if r, ok := v.(retryPolicy); ok {
		setField(rvs, &attrSpec{Field: "RetryMax"}, r.Max)
		setField(rvs, &attrSpec{Field: "RetryBackoff"}, r.Backoff)
		return
	}
	val := reflect.ValueOf(v)
	for _, rv := range rvs {
		f := rv.FieldByName(a.Field)
		if f.IsValid() && val.IsValid() && val.Type().ConvertibleTo(f.Type()) {
			f.Set(val.Convert(f.Type()))
			return
		}
	}
}

// example is how to write a value of the attribute's type.
func example(a *attrSpec) string {
	if len(a.Enum) > 0 {
		return fmt.Sprintf("%q", a.Enum[0])
	}
	switch a.Type {
	case tString, tSecret:
		return `"..."`
	case tBool:
		return "true"
	case tInt:
		return "100"
	case tDuration:
		return `"10s"`
	case tStrings:
		return `["...", "..."]`
	case tHeaders:
		return `{ Name = "value" }`
	case tRefs:
		return "source.NAME"
	case tWhere:
		return `"op != 'delete'"`
	case tExpr:
		return `"row.payload"`
	case tSet:
		return `{ column = "expression" }`
	case tMask:
		return `{ column = "hash" }`
	case tRename:
		return `{ old_name = "new_name" }`
	case tRetry:
		return `{ max = 8, backoff = "500ms" }`
	case tRow:
		return "{ id = 1 }"
	case tRows:
		return "[{ id = 1 }]"
	default:
		return `"..."`
	}
}
