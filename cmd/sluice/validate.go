package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/sluice-cdc/sluice/dsl"
)

// The output formats of validate (--format).
const (
	formatText   = "text"   // compiler-style diagnostics on stderr, "FILE: ok" on stdout
	formatJSON   = "json"   // one JSON array of every file's diagnostics on stdout
	formatGithub = "github" // one GitHub Actions workflow command per diagnostic on stdout
)

// validate parses, resolves, type-checks and compiles each file and prints
// every diagnostic. Exit 1 if any file has an error.
func (c *cli) validate(args []string) int {
	fs := c.flags("validate", "[--format text|json|github] [--live] FILE...")
	format := fs.String("format", formatText, "output: text (diagnostics on stderr), json (one array on stdout) or github (::error/::warning annotations on stdout, one per diagnostic)")
	asJSON := fs.Bool("json", false, "same as --format json")
	live := fs.Bool("live", false, "also check each PostgreSQL source against its database: tables, keys, columns named by transforms, wal_level, privileges, slot and publication")
	vars := varsFlag{}
	fs.Var(vars, "var", "set a variable: -var NAME=value (repeatable)")
	files, code, ok := c.parseFiles(fs, args, 1, -1)
	if !ok {
		return code
	}
	if *asJSON {
		*format = formatJSON
	}
	switch *format {
	case formatText, formatJSON, formatGithub:
	default:
		fmt.Fprintf(c.stderr, "sluice validate: --format %q: want text, json or github\n", *format)
		return exitUsage
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
		if *format == formatText {
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
		if *format == formatGithub {
			if err := writeGithub(c.stdout, path, list, notes); err != nil {
				c.errorf("%v", err)
				return exitFindings
			}
			continue
		}
		all = append(all, list...)
	}
	if *format == formatJSON {
		enc := json.NewEncoder(c.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(all); err != nil {
			c.errorf("%v", err)
			return exitFindings
		}
	}
	return status
}

// writeGithub prints each diagnostic of one file as a GitHub Actions
// workflow command, which the Actions log shows as an annotation on the
// file's line (and the pull request diff shows inline):
//
//	::error file=FILE,line=LINE,col=COL::SUMMARY%0ADETAIL
//	::warning file=FILE,line=LINE,col=COL::SUMMARY%0ADETAIL
//
// A diagnostic without a position (a bad -var flag) names only the file
// that was being loaded; notes of the live checks are ::notice lines.
func writeGithub(w io.Writer, path string, diags []json.RawMessage, notes []string) error {
	var b strings.Builder
	for _, raw := range diags {
		var d struct {
			File     string `json:"file"`
			Line     int    `json:"line"`
			Column   int    `json:"column"`
			Severity string `json:"severity"`
			Summary  string `json:"summary"`
			Detail   string `json:"detail"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			return err
		}
		level := "error"
		if d.Severity == "warning" {
			level = "warning"
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += "\n" + d.Detail
		}
		props := "file=" + githubProperty(path)
		if d.File != "" {
			props = "file=" + githubProperty(d.File) + fmt.Sprintf(",line=%d,col=%d", d.Line, d.Column)
		}
		fmt.Fprintf(&b, "::%s %s::%s\n", level, props, githubData(msg))
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "::notice file=%s::%s\n", githubProperty(path), githubData(n))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// githubData escapes a workflow command's message: %, CR and LF.
func githubData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// githubProperty escapes a workflow command's property value: as
// githubData, and also ":" and ",", which end a property.
func githubProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
