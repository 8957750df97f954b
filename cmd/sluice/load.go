package main

import (
	"fmt"

	"github.com/sluice-cdc/sluice/dsl"
)

// load reads and checks one pipeline file, printing its diagnostics
// (warnings included) to stderr. It returns nil if there were errors.
// Commands that connect nowhere load offline: an unset env() is then a
// warning, so pipelines can be checked in CI without their secrets.
func (c *cli) load(path string, vars map[string]string, offline bool) *dsl.Config {
	cfg, files, diags := dsl.LoadFileWith(path, dsl.Options{Vars: vars, Offline: offline})
	if offline {
		// The checking commands other than validate stay quiet about
		// what validate warns of (unset environment variables).
		diags = dsl.Errors(diags)
	}
	if len(diags) > 0 {
		if err := dsl.WriteDiagnostics(c.stderr, files, diags, false); err != nil {
			c.errorf("printing diagnostics: %v", err)
		}
	}
	if diags.HasErrors() {
		return nil
	}
	return cfg
}

// errorf prints a one-line error for a command.
func (c *cli) errorf(format string, args ...any) {
	fmt.Fprintf(c.stderr, "sluice: "+format+"\n", args...)
}
