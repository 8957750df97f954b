package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/format"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
)

// dryRun runs events through the pipeline's transforms and prints, per
// sink and in that sink's format, what it would receive. It opens no sink,
// writes nothing and touches no checkpoint.
func (c *cli) dryRun(args []string) int {
	fs := c.flags("dry-run", "FILE (--input EVENTS.jsonl | --sample N | --peek N) [--source NAME]")
	input := fs.String("input", "", "a file of native change events, one JSON object per line (- for stdin)")
	sample := fs.Int("sample", 0, "read up to N rows of each table of the PostgreSQL source, as snapshot events")
	peek := fs.Int("peek", 0, "show the next N changes waiting in the PostgreSQL source's slot, without consuming them")
	sourceName := fs.String("source", "", "the source the events come from; default the pipeline's first source")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	given := 0
	for _, set := range []bool{*input != "", *sample > 0, *peek > 0} {
		if set {
			given++
		}
	}
	if given != 1 {
		c.errorf("dry-run: give exactly one of --input EVENTS.jsonl (native change events, one per line), --sample N or --peek N")
		return exitUsage
	}
	// --input reads no database, so the file loads offline; --sample and
	// --peek connect to the source and need its DSN.
	cfg := c.load(files[0], vars, *input != "")
	if cfg == nil {
		return exitFindings
	}
	src, ok := c.dryRunSource(cfg, *sourceName)
	if !ok {
		return exitUsage
	}
	var events []change.Event
	var err error
	if *input != "" {
		events, err = c.readEvents(*input, src)
	} else {
		events, err = c.readSource(cfg, src, *sample, *peek)
	}
	if err != nil {
		c.errorf("%v", err)
		return exitFindings
	}
	g, err := components.Compile(cfg, components.Registry(), nil)
	if err != nil {
		c.errorf("%v", err)
		return exitFindings
	}
	return c.printRouted(cfg, g, src, events)
}

func (c *cli) dryRunSource(cfg *dsl.Config, name string) (string, bool) {
	if name == "" {
		if len(cfg.Sources) == 0 {
			c.errorf("dry-run: the pipeline has no source")
			return "", false
		}
		return cfg.Sources[0].Name, true
	}
	for _, s := range cfg.Sources {
		if s.Name == name {
			return name, true
		}
	}
	c.errorf("dry-run: --source %q: the pipeline has no such source", name)
	return "", false
}

// readSource reads events from a PostgreSQL source without changing
// anything there: sample rows as snapshot events, or the changes pending
// in its slot.
func (c *cli) readSource(cfg *dsl.Config, source string, sample, peek int) ([]change.Event, error) {
	var block *dsl.Source
	for _, s := range cfg.Sources {
		if s.Name == source {
			block = s
		}
	}
	if block.Postgres == nil {
		return nil, fmt.Errorf("dry-run: --sample and --peek read a PostgreSQL source; source %q is a %s source (use --input)", source, block.Type)
	}
	pg := pgsource.WithDefaults(block.Postgres, cfg.Pipeline.Name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if sample > 0 {
		return pgsource.Sample(ctx, pg, source, sample)
	}
	return pgsource.Peek(ctx, pg, source, peek)
}

// readEvents decodes a native JSON Lines file into events of source,
// each its own transaction, positioned by line number.
func (c *cli) readEvents(path, source string) ([]change.Event, error) {
	var r io.Reader = c.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var events []change.Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		if len(sc.Bytes()) == 0 {
			continue
		}
		e, err := format.DecodeNative(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		e.Position = change.Position{Source: source, Offset: uint64(line)}
		e.Boundary = true
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return events, nil
}

// printRouted routes events from source and prints each sink's share.
func (c *cli) printRouted(cfg *dsl.Config, g *engine.Graph, source string, events []change.Event) int {
	perSink, failed := g.Route(source, events)
	status := exitOK
	for _, f := range failed {
		c.errorf("event at %s (%s) failed: %v", f.Event.Position.String(), f.Event.QualifiedTable(), f.Err)
		status = exitFindings
	}
	w := bufio.NewWriter(c.stdout)
	defer w.Flush()
	for _, s := range cfg.Sinks {
		out, ok := perSink[s.Name]
		if !ok {
			continue
		}
		f, err := format.Lookup(sinkFormat(s))
		if err != nil {
			c.errorf("sink %q: %v", s.Name, err)
			return exitFindings
		}
		n := 0
		for i := range out {
			if out[i].Op != change.Mark {
				n++
			}
		}
		fmt.Fprintf(w, "== sink.%s (%s, %s format): %d event(s)\n", s.Name, s.Type, f.Name(), n)
		var buf []byte
		for i := range out {
			if out[i].Op == change.Mark {
				continue
			}
			buf = f.Append(buf[:0], &out[i])
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				c.errorf("%v", err)
				return exitFindings
			}
		}
	}
	if err := w.Flush(); err != nil && !errors.Is(err, os.ErrClosed) {
		c.errorf("%v", err)
		return exitFindings
	}
	return status
}

// sinkFormat is the format a sink writes; database sinks receive events,
// shown in the native format.
func sinkFormat(s *dsl.Sink) string {
	switch {
	case s.File != nil:
		return s.File.Format
	case s.Kafka != nil:
		return s.Kafka.Format
	case s.Webhook != nil:
		return s.Webhook.Format
	}
	return "native"
}
