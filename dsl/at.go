package dsl

import (
	"fmt"

	"github.com/hashicorp/hcl/v2"
)

// At formats where attribute attr of a block is written, as the prefix of
// a component's error: "FILE:LINE:COL: ". It returns "" when the block was
// not loaded from a file (built in code) or does not set attr. Components
// call it with their block's Ranges map so that errors found after
// loading (a bad URL, an unknown table) still point into the file.
func At(ranges map[string]hcl.Range, attr string) string {
	r, ok := ranges[attr]
	if !ok || r.Filename == "" {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d: ", r.Filename, r.Start.Line, r.Start.Column)
}

// Errors returns the error diagnostics of diags, without the warnings.
func Errors(diags hcl.Diagnostics) hcl.Diagnostics {
	var errs hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	return errs
}

// Problem builds a diagnostic for something found after loading (say, by
// `sluice validate --live` against the database), pointing at subject.
func Problem(warning bool, subject hcl.Range, summary, detail string) *hcl.Diagnostic {
	sev := hcl.DiagError
	if warning {
		sev = hcl.DiagWarning
	}
	return &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: subject.Ptr()}
}

// Diagnostics is hcl.Diagnostics under dsl's name, so that callers (the
// command) handle diagnostics without importing HCL themselves.
type Diagnostics = hcl.Diagnostics
