package main

import (
	"encoding/json"
	"fmt"

	"github.com/sluice-cdc/sluice/components"
	"github.com/sluice-cdc/sluice/pipelinetest"
)

// test runs every test block of each file in memory, with no database or
// network, and ends with the line "N passed, N failed". Exit 1 if a test
// failed or a file is invalid.
func (c *cli) test(args []string) int {
	fs := c.flags("test", "[--json] FILE...")
	asJSON := fs.Bool("json", false, "print results as JSON")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, -1)
	if !ok {
		return code
	}
	type jsonResult struct {
		File    string `json:"file"`
		Name    string `json:"name"`
		Pos     string `json:"pos"`
		Passed  bool   `json:"passed"`
		Failure string `json:"failure,omitempty"`
	}
	var all []pipelinetest.Result
	var out []jsonResult
	invalid := 0
	for _, path := range files {
		cfg := c.load(path, vars, true)
		if cfg == nil {
			invalid++
			continue
		}
		results := pipelinetest.Run(cfg, components.Registry())
		if !*asJSON && len(files) > 1 && len(results) > 0 {
			fmt.Fprintf(c.stdout, "%s\n", path)
		}
		for _, r := range results {
			if *asJSON {
				out = append(out, jsonResult{path, r.Name, r.Pos, r.Passed, r.Failure})
			} else {
				fmt.Fprintln(c.stdout, r.String())
			}
		}
		all = append(all, results...)
	}
	passed, failed := pipelinetest.Count(all)
	failed += invalid
	if *asJSON {
		if out == nil {
			out = []jsonResult{}
		}
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(map[string]any{"results": out, "passed": passed, "failed": failed}); err != nil {
			c.errorf("%v", err)
		}
	} else {
		if invalid > 0 {
			fmt.Fprintf(c.stdout, "%d file(s) could not be loaded (see the diagnostics above)\n", invalid)
		}
		fmt.Fprintf(c.stdout, "%d passed, %d failed\n", passed, failed)
	}
	if failed > 0 {
		return exitFindings
	}
	return exitOK
}
