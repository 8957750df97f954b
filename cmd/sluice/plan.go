package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/change"
	"github.com/sluice-cdc/sluice/sinks/sqltable"
	pgsource "github.com/sluice-cdc/sluice/sources/postgres"
)

// ddlPlanner is a sink that can say what DDL it would run
// (sqltable.Sink.PlanDDL).
type ddlPlanner interface {
	PlanDDL(ctx context.Context, rels []*change.Relation) ([]sqltable.TablePlan, error)
}

// sinkPlan is one sink's part of plan's output.
type sinkPlan struct {
	Sink   string               `json:"sink"`
	Type   string               `json:"type"`
	Tables []sqltable.TablePlan `json:"tables"`
	Error  string               `json:"error,omitempty"`
}

// plan prints, for each SQL sink, the statements auto_create and schema
// changes would run against its live target for the tables of the
// PostgreSQL sources it reads (directly or through transforms; renames
// by transforms are not followed), and how existing tables differ. It
// reads the source's catalog and the targets' and changes nothing. Exit
// 1 when a source or target could not be read.
func (c *cli) plan(args []string) int {
	fs := c.flags("plan", "[--json] FILE")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	cfg := c.load(files[0], vars, false)
	if cfg == nil {
		return exitFindings
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	status := exitOK
	described := map[string][]*change.Relation{}
	for _, s := range cfg.Sources {
		if s.Postgres == nil {
			continue
		}
		rels, err := pgsource.Describe(ctx, pgsource.WithDefaults(s.Postgres, cfg.Pipeline.Name))
		if err != nil {
			c.errorf("plan: source %q: %s", s.Name, redactDSN(err, s.Postgres.DSN))
			status = exitFindings
			continue
		}
		described[s.Name] = rels
	}
	reg := components.Registry()
	var out []sinkPlan
	for _, s := range cfg.Sinks {
		if s.MySQL == nil && s.Postgres == nil {
			continue
		}
		sp := sinkPlan{Sink: s.Name, Type: s.Type, Tables: []sqltable.TablePlan{}}
		var rels []*change.Relation
		for _, src := range feedingSources(cfg, s.From, map[string]bool{}) {
			rels = append(rels, described[src]...)
		}
		build, ok := reg.Sinks[s.Type]
		var sink engine.Sink
		var err error
		if ok {
			sink, err = build(engine.Build{Pipeline: components.Settings(cfg), Logger: slog.New(slog.DiscardHandler)}, s)
		}
		p, isPlanner := sink.(ddlPlanner)
		switch {
		case err != nil:
			sp.Error = err.Error()
		case !isPlanner:
			sp.Error = "this sink cannot plan its DDL"
		default:
			if sp.Tables, err = p.PlanDDL(ctx, rels); err != nil {
				sp.Error = err.Error()
			}
		}
		if sp.Error != "" {
			status = exitFindings
		}
		out = append(out, sp)
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		return status
	}
	for i, sp := range out {
		if i > 0 {
			fmt.Fprintln(c.stdout)
		}
		fmt.Fprintf(c.stdout, "sink %q (%s):\n", sp.Sink, sp.Type)
		if sp.Error != "" {
			fmt.Fprintf(c.stdout, "  error: %s\n", sp.Error)
		}
		for _, t := range sp.Tables {
			state := "to create"
			switch {
			case t.Exists && len(t.Statements) == 0 && len(t.Differences) == 0:
				state = "exists, as sluice would create it"
			case t.Exists:
				state = "exists"
			case len(t.Statements) == 0:
				state = "missing"
			}
			fmt.Fprintf(c.stdout, "  %s -> %s: %s\n", t.Source, t.Target, state)
			for _, d := range t.Differences {
				fmt.Fprintf(c.stdout, "    ~ %s\n", d)
			}
			for _, stmt := range t.Statements {
				fmt.Fprintf(c.stdout, "    %s;\n", strings.TrimSpace(stmt))
			}
		}
	}
	return status
}
