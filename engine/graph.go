package engine

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Graph is a compiled pipeline: transforms built, the DAG in topological
// order. Route is safe to call from one goroutine per source.
type Graph struct {
	Spec Spec
	// transforms in topological order (a transform after all it reads)
	order      []*node
	transforms map[string]*node
	// sinkInputs[sink] lists the nodes it reads, in `from` order
	sinkInputs map[string][]*node
	// sinksOf[source] lists the sinks downstream of a source
	sinksOf map[string][]string
}

type node struct {
	ref  Ref
	t    Transform // nil for sources
	from []*node   // inputs
	srcs []string  // sources upstream of this node
}

// Compile builds the transforms and orders the graph. Errors are
// references to nodes that do not exist, cycles, and the transforms'
// constructors' (a Spec compiled from a checked pipeline file has none
// of the first two).
func Compile(spec Spec, logger *slog.Logger) (*Graph, error) {
	if logger == nil {
		logger = slog.Default()
	}
	g := &Graph{Spec: spec, transforms: map[string]*node{}, sinkInputs: map[string][]*node{}, sinksOf: map[string][]string{}}
	sources := map[string]*node{}
	for _, s := range spec.Sources {
		sources[s.Name] = &node{ref: Ref{Name: s.Name}, srcs: []string{s.Name}}
	}
	byName := map[string]*TransformNode{}
	for i := range spec.Transforms {
		byName[spec.Transforms[i].Name] = &spec.Transforms[i]
	}
	b := Build{Pipeline: spec.Pipeline, Logger: logger}
	var visit func(r Ref, path []string) (*node, error)
	visit = func(r Ref, path []string) (*node, error) {
		if !r.Transform {
			n, ok := sources[r.Name]
			if !ok {
				return nil, fmt.Errorf("%sunknown reference %s", at(r.At), r)
			}
			return n, nil
		}
		if n, ok := g.transforms[r.Name]; ok {
			return n, nil
		}
		for _, p := range path {
			if p == r.Name {
				return nil, fmt.Errorf("%scycle through transform %q", at(r.At), r.Name)
			}
		}
		tc, ok := byName[r.Name]
		if !ok {
			return nil, fmt.Errorf("%sunknown reference %s", at(r.At), r)
		}
		n := &node{ref: r}
		for _, in := range tc.From {
			up, err := visit(in, append(path, r.Name))
			if err != nil {
				return nil, err
			}
			n.from = append(n.from, up)
			n.srcs = appendNew(n.srcs, up.srcs...)
		}
		t, err := tc.New(b)
		if err != nil {
			return nil, fmt.Errorf("transform %q: %w", tc.Name, err)
		}
		n.t = t
		g.transforms[r.Name] = n
		g.order = append(g.order, n)
		return n, nil
	}
	for _, t := range spec.Transforms {
		if _, err := visit(Ref{Transform: true, Name: t.Name, At: t.At}, nil); err != nil {
			return nil, err
		}
	}
	for _, s := range spec.Sinks {
		for _, in := range s.From {
			n, err := visit(in, nil)
			if err != nil {
				return nil, err
			}
			g.sinkInputs[s.Name] = append(g.sinkInputs[s.Name], n)
			for _, src := range n.srcs {
				g.sinksOf[src] = appendNew(g.sinksOf[src], s.Name)
			}
		}
	}
	return g, nil
}

// at prefixes a message with where it is written, if known.
func at(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// appendNew appends the items list lacks.
func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !slices.Contains(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// SinksOf returns the names of the sinks downstream of a source.
func (g *Graph) SinksOf(source string) []string { return g.sinksOf[source] }

// Route runs one batch read from a source through the transform DAG and
// returns, per sink name, the events that sink receives, in position
// order; sinks not downstream of the source are absent. Each transform
// runs once per batch however many branches read it. Where a sink reads
// several nodes fed by this source (fan-in), their outputs are merged in
// position order; an event reaching a sink twice (two branches passing
// it) is delivered twice, in `from` order. failed lists the events that
// transforms could not process, for the on_error policy.
func (g *Graph) Route(source string, batch []change.Event) (perSink map[string][]change.Event, failed []Failure) {
	outputs := map[*node][]change.Event{}
	var eval func(n *node) []change.Event
	eval = func(n *node) []change.Event {
		if out, ok := outputs[n]; ok {
			return out
		}
		var out []change.Event
		switch {
		case n.t == nil && n.ref.Name == source:
			out = batch
		case n.t == nil:
			out = nil
		default:
			var in []change.Event
			for _, up := range n.from {
				in = mergeByPosition(in, eval(up))
			}
			var f []Failure
			out, f = n.t.Apply(in)
			for i := range f {
				f[i].Stage = transformStage(n.ref.Name)
			}
			failed = append(failed, f...)
		}
		outputs[n] = out
		return out
	}
	perSink = map[string][]change.Event{}
	addressed := slices.ContainsFunc(batch, func(e change.Event) bool { return e.Sink != "" })
	for _, sink := range g.sinksOf[source] {
		var merged []change.Event
		for _, n := range g.sinkInputs[sink] {
			if !slices.Contains(n.srcs, source) {
				continue
			}
			merged = mergeByPosition(merged, eval(n))
		}
		if addressed {
			merged = slices.DeleteFunc(slices.Clone(merged), func(e change.Event) bool { return e.Sink != "" && e.Sink != sink })
		}
		perSink[sink] = merged
	}
	return perSink, failed
}

// mergeByPosition merges two position-ordered slices of one source's
// events, stably (a before b on equal positions).
func mergeByPosition(a, b []change.Event) []change.Event {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]change.Event, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		if b[j].Position.Compare(a[i].Position) < 0 {
			out = append(out, b[j])
			j++
		} else {
			out = append(out, a[i])
			i++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}
