package dsl

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
)

// The language's sink types are open: a component package adds one with
// RegisterSink (from an init function), giving its block schema and the
// struct its attributes decode into, and the loader decodes, checks,
// suggests and documents the block from that schema exactly as it does
// the built-in ones. Nothing else in dsl knows the kind.

// BlockSpec describes a block type: its keyword (Type, "sink"), its TYPE
// label (Kind), what its labels mean, its attributes and nested blocks
// and its documentation, one sentence or two.
type BlockSpec = blockSpec

// AttrSpec describes one attribute of a block: its name and type,
// whether it is required, its default (Default, or DefaultDoc for one the
// component computes), the allowed values of a string (Enum), the least
// number (Min), a Check of each string, the config struct Field it
// decodes into and its Doc.
type AttrSpec = attrSpec

// AttrType is the kind of value an attribute takes.
type AttrType = attrType

// The attribute types a component's block may use.
const (
	AttrString   = tString   // a string
	AttrSecret   = tSecret   // a string that is never printed (decode it into a Secret)
	AttrBool     = tBool     // true | false
	AttrInt      = tInt      // a whole number
	AttrDuration = tDuration // "10s", "500ms"
	AttrStrings  = tStrings  // a list of strings
	AttrHeaders  = tHeaders  // a map of string → string (values are secrets)
)

// SinkKind is a `sink "TYPE"` a component package adds to the language.
type SinkKind struct {
	// Spec is the block's schema; Spec.Type must be "sink", Spec.Kind the
	// TYPE label, and Spec.Labels {"TYPE", "NAME"} (the default when nil).
	// RegisterSink adds the attributes every sink has (from, linger).
	Spec *BlockSpec
	// Config returns a pointer to a new config struct: each attribute is
	// decoded into its AttrSpec.Field, absent ones get their Default, and
	// a field `Ranges map[string]hcl.Range` (if any) gets where each
	// attribute was written. The decoded block's Sink.Config holds it.
	Config func() any
	// Defaults, when set, fills what depends on the pipeline (a name
	// derived from the pipeline's, say) after decoding; present lists the
	// attributes written.
	Defaults func(cfg any, pipeline string, present map[string]bool)
}

var (
	registryMu sync.RWMutex
	registered []SinkKind
)

// RegisterSink adds k to the language. It panics when k is incomplete or
// its kind is already taken: a programming error of the component.
func RegisterSink(k SinkKind) {
	if k.Spec == nil || k.Spec.Kind == "" || k.Config == nil {
		panic("dsl.RegisterSink: a kind needs a Spec with a Kind and a Config")
	}
	if k.Spec.Type == "" {
		k.Spec.Type = "sink"
	}
	if k.Spec.Labels == nil {
		k.Spec.Labels = []string{"TYPE", "NAME"}
	}
	if k.Spec.Type != "sink" {
		panic(fmt.Sprintf("dsl.RegisterSink(%q): Spec.Type is %q, want \"sink\"", k.Spec.Kind, k.Spec.Type))
	}
	cfgType := reflect.TypeOf(k.Config())
	if cfgType.Kind() != reflect.Pointer || cfgType.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("dsl.RegisterSink(%q): Config returns a %s, want a pointer to a struct", k.Spec.Kind, cfgType))
	}
	for _, a := range k.Spec.Attrs {
		if _, ok := cfgType.Elem().FieldByName(a.Field); !ok {
			panic(fmt.Sprintf("dsl.RegisterSink(%q): attribute %q decodes into field %q, which %s lacks", k.Spec.Kind, a.Name, a.Field, cfgType.Elem()))
		}
	}
	// Every sink reads `from` and flushes after `linger`: the engine's
	// attributes, decoded into the Sink, which the kind need not list.
	if k.Spec.attr("from") == nil {
		k.Spec.Attrs = append([]attrSpec{fromAttr("sink"), lingerAttr}, k.Spec.Attrs...)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	if specOf(sinkSpecs, k.Spec.Kind) != nil || slices.ContainsFunc(registered, func(r SinkKind) bool { return r.Spec.Kind == k.Spec.Kind }) {
		panic(fmt.Sprintf("dsl.RegisterSink: sink %q is registered twice", k.Spec.Kind))
	}
	registered = append(registered, k)
}

// allSinkSpecs returns the built-in sink specs and the registered ones.
func allSinkSpecs() []*blockSpec {
	registryMu.RLock()
	defer registryMu.RUnlock()
	specs := slices.Clone(sinkSpecs)
	for _, k := range registered {
		specs = append(specs, k.Spec)
	}
	return specs
}

// registeredSink returns the registered kind, if kind is one.
func registeredSink(kind string) (SinkKind, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	for _, k := range registered {
		if k.Spec.Kind == kind {
			return k, true
		}
	}
	return SinkKind{}, false
}

// Specs returns every block type of the language, registered sinks
// included, in the order the reference lists them: for the test that
// keeps docs/reference.md complete.
func Specs() []*BlockSpec { return topSpecs() }

// unregisterSink removes a kind a test registered.
func unregisterSink(kind string) {
	registryMu.Lock()
	defer registryMu.Unlock()
	registered = slices.DeleteFunc(registered, func(k SinkKind) bool { return k.Spec.Kind == kind })
}
