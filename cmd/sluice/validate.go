package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
)

// validate parses, resolves, type-checks and compiles each file and prints
// every diagnostic. Exit 1 if any file has an error.
func (c *cli) validate(args []string) int {
	fs := c.flags("validate", "[--json] [--live] FILE...")
	asJSON := fs.Bool("json", false, "print diagnostics as a JSON array")
	live := fs.Bool("live", false, "also check each PostgreSQL source against its database: tables, keys, columns named by transforms, wal_level, privileges, slot and publication")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, -1)
	if !ok {
		return code
	}
	status := exitOK
	all := []json.RawMessage{}
	for _, path := range files {
		cfg, parsed, diags := dsl.LoadFileWith(path, dsl.Options{Vars: vars, Offline: !*live})
		var notes []string // what the live checks found that is fine (TLS on)
		if *live && !diags.HasErrors() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			diags = append(diags, liveProblems(ctx, cfg)...)
			var tlsDiags dsl.Diagnostics
			notes, tlsDiags = liveTLS(ctx, cfg)
			diags = append(diags, tlsDiags...)
			cancel()
		}
		if diags.HasErrors() {
			status = exitFindings
		}
		if !*asJSON {
			if err := dsl.WriteDiagnostics(c.stderr, parsed, diags, false); err != nil {
				c.errorf("%v", err)
			}
			for _, n := range notes {
				fmt.Fprintf(c.stdout, "%s: %s\n", path, n)
			}
			if !diags.HasErrors() {
				fmt.Fprintf(c.stdout, "%s: ok\n", path)
			}
			continue
		}
		var buf bytes.Buffer
		if err := dsl.WriteDiagnostics(&buf, parsed, diags, true); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
		var list []json.RawMessage
		if err := json.Unmarshal(buf.Bytes(), &list); err != nil {
			c.errorf("diagnostics of %s: %v", path, err)
			return exitFindings
		}
		all = append(all, list...)
	}
	if *asJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
	}
	return status
}
