package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/observe"
)

// dropTimeout bounds the PostgreSQL work of drop.
const dropTimeout = 30 * time.Second

// drop removes what a pipeline keeps to resume: each PostgreSQL source's
// replication slot (which makes the server keep WAL) and publication, the
// checkpoint each sink keeps in its target (engine.Forgetter), then the
// state file. It asks first unless --yes, and
// refuses while a `sluice run` holds the state file. The state file goes
// last, and only when every slot and publication is gone, so a failed
// drop can be run again.
func (c *cli) drop(args []string) int {
	fs := c.flags("drop", "FILE [--yes]")
	yes := fs.Bool("yes", false, "do not ask for confirmation (scripts)")
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
	path := components.Settings(cfg).StatePath()
	if _, err := os.Stat(path); err == nil {
		store, err := state.Open(path) // takes the lock: fails while a run holds it
		if err != nil {
			c.errorf("drop: %v", err)
			return exitFindings
		}
		store.Close()
	}
	fmt.Fprintf(c.stdout, "This removes, for pipeline %q:\n", cfg.Pipeline.Name)
	for _, s := range cfg.Sources {
		if s.Type == "postgres" && s.Postgres != nil {
			fmt.Fprintf(c.stdout, "  - the replication slot and the publication of source %s\n", s.Name)
		}
	}
	forgetters := c.forgetters(cfg)
	for _, f := range forgetters {
		fmt.Fprintf(c.stdout, "  - the checkpoint that sink %s keeps in its target\n", f.name)
	}
	fmt.Fprintf(c.stdout, "  - the state file %s (positions, snapshot progress, dead letters)\n", path)
	fmt.Fprintln(c.stdout, "The next run starts from scratch (a new snapshot). The targets' rows are not touched.")
	if !*yes {
		fmt.Fprint(c.stdout, "Type yes to remove them: ")
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			fmt.Fprintln(c.stdout, "nothing removed")
			return exitFindings
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), dropTimeout)
	defer cancel()
	failed := false
	for _, s := range cfg.Sources {
		if s.Type != "postgres" || s.Postgres == nil {
			continue
		}
		slot, dropped, err := observe.DropSlot(ctx, cfg.Pipeline.Name, s.Postgres)
		c.dropped(fmt.Sprintf("replication slot %s (source %s)", slot, s.Name), dropped, err)
		if err != nil {
			failed = true
			continue
		}
		pub, dropped, err := observe.DropPublication(ctx, cfg.Pipeline.Name, s.Postgres)
		c.dropped(fmt.Sprintf("publication %s (source %s)", pub, s.Name), dropped, err)
		failed = failed || err != nil
	}
	for _, f := range forgetters {
		removed, err := f.Forget(ctx)
		c.dropped(fmt.Sprintf("checkpoint of sink %s in its target", f.name), removed, err)
		failed = failed || err != nil
	}
	if failed {
		c.errorf("drop: kept the state file %s because something above could not be removed; fix it and run drop again", path)
		return exitFindings
	}
	for _, p := range []string{path, path + ".status"} {
		err := os.Remove(p)
		if errors.Is(err, os.ErrNotExist) {
			if p == path {
				fmt.Fprintf(c.stdout, "no state file %s\n", p)
			}
			continue
		}
		c.dropped("state file "+p, err == nil, err)
		if err != nil {
			return exitFindings
		}
	}
	return exitOK
}

// namedForgetter is a sink that keeps its checkpoint in its target.
type namedForgetter struct {
	name string
	engine.Forgetter
}

// forgetters builds each sink of cfg (without connecting) and returns
// those that keep a checkpoint in their target, which drop must remove
// for the next run to start over: left there, it would make that run
// resume from where the dropped slot was. A sink that cannot be built is
// left out; the run reports its configuration error.
func (c *cli) forgetters(cfg *dsl.Config) []namedForgetter {
	reg := components.Registry()
	var out []namedForgetter
	for _, s := range cfg.Sinks {
		build, ok := reg.Sinks[s.Type]
		if !ok {
			continue
		}
		sink, err := build(engine.Build{Pipeline: components.Settings(cfg), Logger: slog.New(slog.DiscardHandler)}, s)
		if err != nil {
			continue
		}
		if f, ok := sink.(engine.Forgetter); ok {
			out = append(out, namedForgetter{s.Name, f})
		}
	}
	return out
}

// dropped reports one thing drop removed, found absent, or failed on.
func (c *cli) dropped(what string, removed bool, err error) {
	switch {
	case err != nil:
		c.errorf("drop: %s: %v", what, err)
	case removed:
		fmt.Fprintf(c.stdout, "removed %s\n", what)
	default:
		fmt.Fprintf(c.stdout, "no %s: nothing to remove\n", what)
	}
}
