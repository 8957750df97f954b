package engine

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/change"
)

// Registry maps block types to component constructors.
type Registry struct {
	Sources   map[string]func(b Build, s *dsl.Source) (Source, error)
	Sinks     map[string]func(b Build, s *dsl.Sink) (Sink, error)
	Transform func(b Build, t *dsl.Transform) (Transform, error)
}

// Build is what constructors get besides their block.
type Build struct {
	Config *dsl.Config
	Logger *slog.Logger
	// Observer is the run's observer (never nil from the engine; may be
	// nil in tests): a component reports what only it sees through the
	// optional hooks it implements, such as RecoveryObserver.
	Observer Observer
}

// Graph is a compiled pipeline: transforms built, the DAG in topological
// order. Route is safe to call from one goroutine per source.
type Graph struct {
	Config *dsl.Config
	reg    Registry
	// transforms in topological order (a transform after all it reads)
	order      []*node
	transforms map[string]*node
	// sinkInputs[sink] lists the nodes it reads, in `from` order
	sinkInputs map[string][]*node
	// sinksOf[source] lists the sinks downstream of a source
	sinksOf map[string][]string
}

type node struct {
	ref  dsl.Ref
	t    Transform // nil for sources
	from []*node   // inputs
	srcs []string  // sources upstream of this node
}

// Compile builds the transforms and orders the graph. The config has been
// checked by dsl (references exist, no cycles), so errors here come from
// component constructors.
func Compile(cfg *dsl.Config, reg Registry, logger *slog.Logger) (*Graph, error) {
	if logger == nil {
		logger = slog.Default()
	}
	g := &Graph{Config: cfg, reg: reg, transforms: map[string]*node{}, sinkInputs: map[string][]*node{}, sinksOf: map[string][]string{}}
	sources := map[string]*node{}
	for _, s := range cfg.Sources {
		sources[s.Name] = &node{ref: dsl.Ref{Kind: dsl.SourceRef, Name: s.Name}, srcs: []string{s.Name}}
	}
	byName := map[string]*dsl.Transform{}
	for _, t := range cfg.Transforms {
		byName[t.Name] = t
	}
	var visit func(r dsl.Ref, path []string) (*node, error)
	visit = func(r dsl.Ref, path []string) (*node, error) {
		switch r.Kind {
		case dsl.SourceRef:
			n, ok := sources[r.Name]
			if !ok {
				return nil, fmt.Errorf("%s: unknown reference %s", r.Range, r)
			}
			return n, nil
		case dsl.TransformRef:
		default:
			return nil, fmt.Errorf("%s: %s cannot be read from", r.Range, r)
		}
		if n, ok := g.transforms[r.Name]; ok {
			return n, nil
		}
		for _, p := range path {
			if p == r.Name {
				return nil, fmt.Errorf("%s: cycle through transform %q", r.Range, r.Name)
			}
		}
		tc, ok := byName[r.Name]
		if !ok {
			return nil, fmt.Errorf("%s: unknown reference %s", r.Range, r)
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
		t, err := reg.Transform(Build{Config: cfg, Logger: logger}, tc)
		if err != nil {
			return nil, fmt.Errorf("transform %q: %w", tc.Name, err)
		}
		n.t = t
		g.transforms[r.Name] = n
		g.order = append(g.order, n)
		return n, nil
	}
	for _, t := range cfg.Transforms {
		if _, err := visit(dsl.Ref{Kind: dsl.TransformRef, Name: t.Name, Range: t.DeclRange}, nil); err != nil {
			return nil, err
		}
	}
	for _, s := range cfg.Sinks {
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

func appendNew(list []string, items ...string) []string {
outer:
	for _, it := range items {
		for _, have := range list {
			if have == it {
				continue outer
			}
		}
		list = append(list, it)
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
			if !contains(n.srcs, source) {
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
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
