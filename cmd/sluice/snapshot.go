package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/engine/state"
	"github.com/sluice-cdc/sluice/observe"
	"github.com/sluice-cdc/sluice/sources/postgres"
)

// stringsFlag collects a repeatable flag's values.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// snapshot asks a pipeline to copy tables again while it streams (an
// incremental snapshot): it files a request beside the state file, which
// the running pipeline takes within a second, or the next `sluice run`
// takes at start. The copy goes chunk by chunk in key order, resumes
// where it stopped after a crash, and reaches the sinks in stream order;
// `sluice status` shows its progress.
func (c *cli) snapshot(args []string) int {
	fs := c.flags("snapshot", "FILE --table schema.table [--table ...] [--sink NAME] [--where SQL] [--source NAME] [--wait]")
	var tables stringsFlag
	fs.Var(&tables, "table", "a table to copy again, as schema.table (repeatable)")
	sink := fs.String("sink", "", "copy for this sink only (default: every sink of the source)")
	where := fs.String("where", "", "an SQL predicate over the table's columns: copy only the rows it selects")
	source := fs.String("source", "", "the source block (default: the postgres source that captures the tables)")
	waitDone := fs.Bool("wait", false, "wait until the copy is done, printing its progress")
	timeout := fs.Duration("timeout", 10*time.Second, "how long to wait for a running pipeline to take the request")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, 1)
	if !ok {
		return code
	}
	if len(tables) == 0 || *timeout <= 0 {
		c.errorf("snapshot: name at least one --table schema.table (and a positive --timeout)")
		return exitUsage
	}
	cfg := c.load(files[0], vars, false)
	if cfg == nil {
		return exitFindings
	}
	req := state.SnapshotRequest{ID: "snapshot-" + time.Now().UTC().Format("20060102T150405.000Z"), Tables: tables, Sink: *sink, Where: *where, Source: *source}
	if err := checkRequest(cfg, &req); err != nil {
		c.errorf("snapshot: %v", err)
		return exitFindings
	}
	if !c.fileRequest(cfg, req, *timeout) {
		return exitFindings
	}
	if *waitDone && !c.waitResync(cfg, req, 0) {
		return exitFindings
	}
	return exitOK
}

// checkRequest fills in the request's source and checks it: the tables
// are captured by that postgres source, the sink reads it, and the
// database accepts the tables and the predicate.
func checkRequest(cfg *dsl.Config, req *state.SnapshotRequest) error {
	var src *dsl.Source
	for _, s := range cfg.Sources {
		if s.Postgres == nil || (req.Source != "" && s.Name != req.Source) {
			continue
		}
		if !slices.ContainsFunc(req.Tables, func(t string) bool { return !captures(s.Postgres, t) }) {
			if src != nil {
				return fmt.Errorf("sources %q and %q both capture %s: say which with --source", src.Name, s.Name, strings.Join(req.Tables, ", "))
			}
			src = s
		}
	}
	if src == nil {
		return fmt.Errorf("no postgres source of %s captures all of %s (incremental snapshots copy PostgreSQL tables)", cfg.Pipeline.Name, strings.Join(req.Tables, ", "))
	}
	req.Source = src.Name
	if req.Sink != "" {
		g, err := components.Compile(cfg, components.Registry(), nil)
		if err != nil {
			return err
		}
		if !slices.Contains(g.SinksOf(src.Name), req.Sink) {
			return fmt.Errorf("sink %q does not read source %q (its sinks: %s)", req.Sink, src.Name, strings.Join(g.SinksOf(src.Name), ", "))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return postgres.CheckResync(ctx, src.Postgres, req.Tables, req.Where)
}

// captures reports whether a postgres source block names the table, or
// its schema as "schema.*", or "*.*".
func captures(s *dsl.PostgresSource, table string) bool {
	schema, _, _ := strings.Cut(table, ".")
	return slices.Contains(s.Tables, table) || slices.Contains(s.Tables, schema+".*") || slices.Contains(s.Tables, "*.*")
}

// fileRequest writes the request and, when the pipeline runs, waits for
// it to be taken; it says what happens next.
func (c *cli) fileRequest(cfg *dsl.Config, req state.SnapshotRequest, timeout time.Duration) bool {
	path := components.Settings(cfg).StatePath()
	st, err := state.Inspect(path)
	running := err == nil && st.Running
	req.Requested = time.Now().UTC()
	if err := state.RequestSnapshot(path, req); err != nil {
		c.errorf("%v", err)
		return false
	}
	what := fmt.Sprintf("copy of %s (request %s)", strings.Join(req.Tables, ", "), req.ID)
	if !running {
		fmt.Fprintf(c.stdout, "pipeline %q is not running: the %s starts when `sluice run` next starts it\n", cfg.Pipeline.Name, what)
		return true
	}
	deadline := time.Now().Add(timeout)
	for state.SnapshotRequestPending(path, req.ID) {
		if time.Now().After(deadline) {
			fmt.Fprintf(c.stdout, "the running pipeline did not take the %s within %s; it stays filed, for the pipeline's next start\n", what, timeout)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	if why := state.SnapshotRequestFailure(path, req.ID); why != "" {
		c.errorf("the pipeline refused the %s: %s", what, why)
		return false
	}
	fmt.Fprintf(c.stdout, "the running pipeline took the %s: it is copied chunk by chunk while streaming goes on; `sluice status %s` shows the progress\n", what, cfg.Pipeline.Name)
	return true
}

// waitResync waits until every table of the request is copied, printing
// progress every few seconds; limit > 0 gives up after it.
func (c *cli) waitResync(cfg *dsl.Config, req state.SnapshotRequest, limit time.Duration) bool {
	start := time.Now()
	lastPrint := time.Time{}
	for {
		jobs, err := c.requestJobs(cfg, req)
		if err != nil {
			c.errorf("%v", err)
			return false
		}
		pending, failed := 0, 0
		for _, j := range jobs {
			if j.Error != "" {
				failed++
				c.errorf("copy of %s (request %s) stopped: %s", j.Table, j.Request, j.Error)
			}
			if j.Pending() {
				pending++
			}
		}
		if len(jobs) > 0 && pending == 0 {
			writeResync(c.stdout, req.Source, jobs)
			return failed == 0
		}
		if time.Since(lastPrint) > 5*time.Second && len(jobs) > 0 {
			writeResync(c.stdout, req.Source, jobs)
			lastPrint = time.Now()
		}
		if limit > 0 && time.Since(start) > limit {
			c.errorf("the copy is not done after %s (see `sluice status`)", limit)
			return false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// requestJobs returns the jobs of a request (or of its ranges, "ID#n").
func (c *cli) requestJobs(cfg *dsl.Config, req state.SnapshotRequest) ([]observe.Resync, error) {
	st, err := c.pipelineStatus(cfg, false)
	if err != nil {
		return nil, err
	}
	var out []observe.Resync
	for _, s := range st.Sources {
		if s.Name != req.Source {
			continue
		}
		for _, j := range s.Resync {
			if j.Request == req.ID || strings.HasPrefix(j.Request, req.ID+"#") {
				out = append(out, j)
			}
		}
	}
	return out, nil
}

// writeResync prints incremental snapshots, one line per table.
func writeResync(w io.Writer, source string, jobs []observe.Resync) {
	fmt.Fprintf(w, "\nincremental snapshots of source %s:\n", source)
	for _, j := range jobs {
		state := "copying"
		switch {
		case j.Error != "":
			state = "stopped: " + j.Error
		case j.Done:
			state = "done"
		}
		rows := rowsText(j.RowsDone, j.RowsEstimated)
		if !j.Pending() {
			rows = fmt.Sprintf("%d rows", j.RowsDone)
		}
		line := fmt.Sprintf("  %s %s: %s, %s", j.Request, j.Table, state, rows)
		if j.Sink != "" {
			line += ", for sink " + j.Sink
		}
		if j.Where != "" {
			line += fmt.Sprintf(", where %s", j.Where)
		}
		if j.RowsPerSecond > 0 {
			line += fmt.Sprintf(", %.0f rows/s", j.RowsPerSecond)
		}
		if j.ETASeconds != nil {
			line += fmt.Sprintf(", about %s left", time.Duration(*j.ETASeconds*float64(time.Second)).Round(time.Second))
		}
		fmt.Fprintln(w, line)
	}
}
