package main

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/format"
)

// dlq lists, replays or purges the dead-letter queue of a pipeline's
// state file. It cannot run while the pipeline runs (the state file has
// one writer).
func (c *cli) dlq(args []string) int {
	if len(args) == 0 {
		c.errorf("dlq: want a subcommand: list, replay or purge")
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := c.flags("dlq "+sub, "FILE [--stage sink.NAME|transform] [--json]")
	stage := fs.String("stage", "", `only this stage's letters: "sink.NAME" or "transform.NAME", or "sink" or "transform" for every stage of the kind`)
	asJSON := fs.Bool("json", false, "print JSON (list)")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	switch sub {
	case "list", "replay", "purge":
	default:
		c.errorf("dlq: unknown subcommand %q: want list, replay or purge", sub)
		return exitUsage
	}
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	cfg := c.load(files[0], vars, false)
	if cfg == nil {
		return exitFindings
	}
	path := engine.StatePath(cfg)
	switch sub {
	case "replay":
		g, err := engine.Compile(cfg, components.Registry(), nil)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		res, err := g.ReplayDeadLetters(context.Background(), engine.ReplayOptions{Stage: *stage})
		fmt.Fprintf(c.stdout, "replayed %d, still failing %d\n", res.Replayed, res.Failed)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		if res.Failed > 0 {
			return exitFindings
		}
		return exitOK
	}
	store, err := state.Open(path)
	if err != nil {
		c.errorf("%v", err)
		return exitFindings
	}
	defer store.Close()
	if sub == "purge" {
		n, err := store.Purge(*stage)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		fmt.Fprintf(c.stdout, "purged %d dead letter(s)\n", n)
		return exitOK
	}
	return c.listLetters(store, *stage, *asJSON)
}

func (c *cli) listLetters(store *state.Store, stage string, asJSON bool) int {
	type jsonLetter struct {
		ID       uint64          `json:"id"`
		Stage    string          `json:"stage"`
		Time     string          `json:"time"`
		Table    string          `json:"table"`
		Position string          `json:"position"`
		Error    string          `json:"error"`
		Event    json.RawMessage `json:"event"`
	}
	var out []jsonLetter
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "ID\tSTAGE\tTABLE\tPOSITION\tERROR")
	}
	var after uint64
	total := 0
	for {
		page, err := store.Letters(stage, after, 100)
		if err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		if len(page) == 0 {
			break
		}
		for _, l := range page {
			after = l.ID
			total++
			if asJSON {
				ev := format.Native{}.Append(nil, &l.Event)
				out = append(out, jsonLetter{l.ID, l.Stage, l.Time.UTC().Format("2006-01-02T15:04:05.000Z"), l.Event.QualifiedTable(), l.Event.Position.Stream().String() + "@" + l.Event.Position.String(), l.Err, ev})
				continue
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s@%s\t%s\n", l.ID, l.Stage, l.Event.QualifiedTable(), l.Event.Position.Stream(), l.Event.Position.String(), l.Err)
		}
	}
	if asJSON {
		if out == nil {
			out = []jsonLetter{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		return exitOK
	}
	tw.Flush()
	fmt.Fprintf(c.stdout, "%d dead letter(s)\n", total)
	return exitOK
}
