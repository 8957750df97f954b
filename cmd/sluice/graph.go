package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/sluice-cdc/sluice/dsl"
)

// graph prints the pipeline's DAG: one line per edge as text, or Graphviz
// with --dot.
func (c *cli) graph(args []string) int {
	fs := c.flags("graph", "[--dot] FILE")
	dot := fs.Bool("dot", false, "print Graphviz dot")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	cfg := c.load(files[0], vars, true)
	if cfg == nil {
		return exitFindings
	}
	if *dot {
		writeDot(c.stdout, cfg)
	} else {
		writeGraph(c.stdout, cfg)
	}
	return exitOK
}

// node names as the language spells references: source.app, sink.replica.
func sourceID(s *dsl.Source) string       { return "source." + s.Name }
func transformID(t *dsl.Transform) string { return "transform." + t.Name }
func sinkID(s *dsl.Sink) string           { return "sink." + s.Name }

func writeGraph(w io.Writer, cfg *dsl.Config) {
	fmt.Fprintf(w, "pipeline %q\n", cfg.Pipeline.Name)
	for _, s := range cfg.Sources {
		fmt.Fprintf(w, "  %s (%s)\n", sourceID(s), s.Type)
	}
	for _, t := range cfg.Transforms {
		for _, f := range t.From {
			fmt.Fprintf(w, "  %s -> %s\n", f, transformID(t))
		}
	}
	for _, s := range cfg.Sinks {
		for _, f := range s.From {
			fmt.Fprintf(w, "  %s -> %s (%s)\n", f, sinkID(s), s.Type)
		}
	}
}

func writeDot(w io.Writer, cfg *dsl.Config) {
	fmt.Fprintf(w, "digraph %s {\n  rankdir=LR;\n", strconv.Quote(cfg.Pipeline.Name))
	for _, s := range cfg.Sources {
		fmt.Fprintf(w, "  %q [shape=cylinder, label=%q];\n", sourceID(s), sourceID(s)+"\n"+s.Type)
	}
	for _, t := range cfg.Transforms {
		fmt.Fprintf(w, "  %q [shape=box];\n", transformID(t))
		for _, f := range t.From {
			fmt.Fprintf(w, "  %q -> %q;\n", f.String(), transformID(t))
		}
	}
	for _, s := range cfg.Sinks {
		fmt.Fprintf(w, "  %q [shape=folder, label=%q];\n", sinkID(s), sinkID(s)+"\n"+s.Type)
		for _, f := range s.From {
			fmt.Fprintf(w, "  %q -> %q;\n", f.String(), sinkID(s))
		}
	}
	fmt.Fprintln(w, "}")
}
