package components

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
)

// Kinds maps each kind of the language to its constructor: what the
// engine builds a `source "TYPE"`, a `sink "TYPE"` and a transform with.
type Kinds struct {
	Sources   map[string]func(engine.Build, *dsl.Source) (engine.Source, error)
	Sinks     map[string]func(engine.Build, *dsl.Sink) (engine.Sink, error)
	Transform func(engine.Build, *dsl.Transform) (engine.Transform, error)
}

// Settings returns the engine's view of cfg's pipeline block. The
// instance is the process's (SLUICE_INSTANCE, which `sluice run
// --instance` sets): components get it from here, never from the
// environment themselves.
func Settings(cfg *dsl.Config) engine.Pipeline {
	return engine.Pipeline{
		Name:     cfg.Pipeline.Name,
		State:    cfg.Pipeline.State,
		OnError:  cfg.Pipeline.OnError,
		MaskKey:  cfg.Pipeline.MaskKey.Reveal(),
		Instance: os.Getenv(engine.InstanceEnv),
	}
}

// Spec compiles a checked pipeline file into the graph the engine runs,
// each node with the constructor of its kind in k. A kind k lacks fails
// when its node is built (permanently), not here: a graph that is only
// routed through (dry runs, pipeline tests) needs no source or sink.
func Spec(cfg *dsl.Config, k Kinds) (engine.Spec, error) {
	spec := engine.Spec{Pipeline: Settings(cfg)}
	for _, s := range cfg.Sources {
		newSource := k.Sources[s.Type]
		spec.Sources = append(spec.Sources, engine.SourceNode{Name: s.Name, Type: s.Type,
			New: func(b engine.Build) (engine.Source, error) {
				if newSource == nil {
					return nil, missing("source", s.Type)
				}
				return newSource(b, s)
			}})
	}
	for _, t := range cfg.Transforms {
		if k.Transform == nil {
			return spec, fmt.Errorf("%s: transform %q: no transforms are built into this sluice", t.DeclRange, t.Name)
		}
		spec.Transforms = append(spec.Transforms, engine.TransformNode{Name: t.Name, From: refs(t.From), At: t.DeclRange.String(),
			New: func(b engine.Build) (engine.Transform, error) { return k.Transform(b, t) }})
	}
	for _, s := range cfg.Sinks {
		newSink := k.Sinks[s.Type]
		spec.Sinks = append(spec.Sinks, engine.SinkNode{Name: s.Name, Type: s.Type, From: refs(s.From), Linger: s.Linger,
			New: func(b engine.Build) (engine.Sink, error) {
				if newSink == nil {
					return nil, missing("sink", s.Type)
				}
				return newSink(b, s)
			}})
	}
	return spec, nil
}

// missing is the error of a node whose kind is not built in; the engine
// prefixes the node.
func missing(what, kind string) error {
	return engine.Permanent(fmt.Errorf("no %s of type %q is built into this sluice", what, kind))
}

func refs(from []dsl.Ref) []engine.Ref {
	out := make([]engine.Ref, len(from))
	for i, r := range from {
		out[i] = engine.Ref{Transform: r.Kind == dsl.TransformRef, Name: r.Name, At: r.Range.String()}
	}
	return out
}

// Compile compiles cfg with the kinds k and builds its graph.
func Compile(cfg *dsl.Config, k Kinds, logger *slog.Logger) (*engine.Graph, error) {
	spec, err := Spec(cfg, k)
	if err != nil {
		return nil, err
	}
	return engine.Compile(spec, logger)
}
