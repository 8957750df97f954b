package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/dsl"
	"github.com/sluice-cdc/sluice/pipelinetest"
	"github.com/sluice-cdc/sluice/pipelinetest/live"
)

// fileResults is what `sluice test` found for one pipeline file.
type fileResults struct {
	path     string
	pipeline string
	results  []pipelinetest.Result
	// loadError holds the diagnostics of a file that could not be loaded
	// (no results then).
	loadError string
	// plan says what ran live (--live), empty otherwise.
	plan string
}

// test runs every test block of each file in memory, with no database or
// network, and with --live also against the real databases the file
// names (pipelinetest/live), and ends with the line "N passed, N
// failed". --junit-xml also writes the results as JUnit XML. Exit 1 if a
// test failed or a file is invalid.
func (c *cli) test(args []string) int {
	fs := c.flags("test", "[--live [--live-timeout D]] [--json] [--junit-xml FILE] FILE...")
	asJSON := fs.Bool("json", false, "print results as JSON")
	liveRun := fs.Bool("live", false, "also run every test against the real source and sinks the file names (their dsn), in scratch schemas, databases, publications and slots that are removed afterwards")
	timeout := fs.Duration("live-timeout", live.DefaultTimeout, "with --live: how long one test waits for its sinks")
	junitPath := fs.String("junit-xml", "", "also write the results to `FILE` as JUnit XML: one testsuite per pipeline file, one testcase per test")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, -1)
	if !ok {
		return code
	}
	if *timeout <= 0 {
		c.errorf("test: --live-timeout must be positive")
		return exitUsage
	}
	type jsonRun struct {
		Runner    string   `json:"runner"`
		Passed    bool     `json:"passed"`
		Failure   string   `json:"failure,omitempty"`
		Notes     []string `json:"notes,omitempty"`
		ElapsedMS float64  `json:"elapsed_ms"`
	}
	type jsonResult struct {
		File    string    `json:"file"`
		Name    string    `json:"name"`
		Pos     string    `json:"pos"`
		Passed  bool      `json:"passed"`
		Failure string    `json:"failure,omitempty"`
		Runs    []jsonRun `json:"runs,omitempty"`
	}
	var notes []string // what the live session did besides the tests
	var session *live.Session
	ctx := context.Background()
	if *liveRun {
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		session = live.NewSession(live.Options{Timeout: *timeout, Log: func(msg string) {
			notes = append(notes, msg)
			if !*asJSON {
				fmt.Fprintf(c.stdout, "sluice test --live: %s\n", msg)
			}
		}})
		defer func() {
			if err := session.Close(); err != nil {
				c.errorf("test --live: %v", err)
			}
		}()
	}
	reg := components.Registry()
	var all []pipelinetest.Result
	var reports []fileResults
	var out []jsonResult
	invalid := 0
	for _, path := range files {
		cfg, diags := c.loadTest(path, vars)
		if cfg == nil {
			invalid++
			reports = append(reports, fileResults{path: path, loadError: diags})
			continue
		}
		rep := fileResults{path: path, pipeline: cfg.Pipeline.Name, results: pipelinetest.Run(cfg, reg)}
		if !*asJSON && (len(files) > 1 || *liveRun) && len(rep.results) > 0 {
			fmt.Fprintf(c.stdout, "%s\n", path)
		}
		if *liveRun && len(cfg.Tests) > 0 {
			rep.plan = live.PlanFor(cfg).String()
			if !*asJSON {
				fmt.Fprintf(c.stdout, "  %s\n", rep.plan)
			}
			outcomes := session.Run(ctx, cfg, reg)
			for i := range rep.results {
				rep.results[i] = rep.results[i].With(outcomes[i])
			}
		}
		for _, r := range rep.results {
			if *asJSON {
				j := jsonResult{File: path, Name: r.Name, Pos: r.Pos, Passed: r.Passed, Failure: r.Failure}
				if *liveRun {
					for _, o := range r.Runs {
						j.Runs = append(j.Runs, jsonRun{o.Runner, o.Passed, o.Failure, o.Notes, float64(o.Elapsed) / float64(time.Millisecond)})
					}
				}
				out = append(out, j)
			} else {
				fmt.Fprintln(c.stdout, r.String())
			}
		}
		all = append(all, rep.results...)
		reports = append(reports, rep)
	}
	passed, failed := pipelinetest.Count(all)
	failed += invalid
	status := exitOK
	if failed > 0 {
		status = exitFindings
	}
	if *junitPath != "" {
		if err := writeJUnitFile(*junitPath, reports); err != nil {
			c.errorf("test: --junit-xml: %v", err)
			status = exitFindings
		}
	}
	if *asJSON {
		if out == nil {
			out = []jsonResult{}
		}
		doc := map[string]any{"results": out, "passed": passed, "failed": failed}
		if *liveRun {
			if notes == nil {
				notes = []string{}
			}
			doc["notes"] = notes
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			c.errorf("%v", err)
		}
		return status
	}
	if invalid > 0 {
		fmt.Fprintf(c.stdout, "%d file(s) could not be loaded (see the diagnostics above)\n", invalid)
	}
	fmt.Fprintf(c.stdout, "%d passed, %d failed\n", passed, failed)
	return status
}

// loadTest loads a file offline as load does, and also returns the text
// of its errors (for the JUnit report) when it cannot be loaded.
func (c *cli) loadTest(path string, vars map[string]string) (*dsl.Config, string) {
	cfg, files, diags := dsl.LoadFileWith(path, dsl.Options{Vars: vars, Offline: true})
	diags = dsl.Errors(diags)
	var buf bytes.Buffer
	if len(diags) > 0 {
		if err := dsl.WriteDiagnostics(&buf, files, diags, false); err != nil {
			c.errorf("printing diagnostics: %v", err)
		}
		_, _ = c.stderr.Write(buf.Bytes())
	}
	if diags.HasErrors() {
		return nil, buf.String()
	}
	return cfg, ""
}
