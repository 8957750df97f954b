package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestValidateFormatGithub: --format github prints one workflow command
// per diagnostic, ::error or ::warning, each with the file, line and
// column the diagnostic points at, and nothing else; the exit code is
// validate's.
func TestValidateFormatGithub(t *testing.T) {
	dir := t.TempDir()
	// An unknown reference and an unknown attribute (errors), and an
	// env() of an unset variable (a warning offline).
	bad := writeFile(t, dir, "bad.hcl", `pipeline "p" {}

source "file" "in" {
  path = env("SLUICE_TEST_SURELY_UNSET_VARIABLE")
}

sink "file" "out" {
  from   = source.inn
  path   = "-"
  colour = "blue"
}
`)
	good := writeFile(t, dir, "good.hcl", validPipeline)
	code, stdout, stderr := runCLI(t, "validate", "--format", "github", bad, good)
	if code != exitFindings {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	_, jsonOut, _ := runCLI(t, "validate", "--format", "json", bad, good)
	var diags []struct {
		File     string `json:"file"`
		Line     int    `json:"line"`
		Column   int    `json:"column"`
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
	}
	if err := json.Unmarshal([]byte(jsonOut), &diags); err != nil {
		t.Fatalf("--format json: %v\n%s", err, jsonOut)
	}
	annotation := regexp.MustCompile(`^::(error|warning) file=([^,:]+),line=(\d+),col=(\d+)::(.+)$`)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(diags) || len(diags) < 3 {
		t.Fatalf("%d annotation lines for %d diagnostics (want one each, at least 3):\n%s", len(lines), len(diags), stdout)
	}
	var errors, warnings int
	for i, l := range lines {
		m := annotation.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("line %d is not an annotation with file, line and col: %q", i+1, l)
		}
		d := diags[i]
		if m[1] != d.Severity || m[2] != d.File || m[3] != itoa(d.Line) || m[4] != itoa(d.Column) || !strings.HasPrefix(m[5], d.Summary) {
			t.Errorf("annotation %q does not match diagnostic %+v", l, d)
		}
		if m[1] == "error" {
			errors++
		} else {
			warnings++
		}
	}
	if errors < 2 || warnings < 1 {
		t.Errorf("%d errors and %d warnings, want at least 2 and 1:\n%s", errors, warnings, stdout)
	}
	if !strings.Contains(stdout, "file="+bad+",line=8,col=12::unknown reference source.inn") {
		t.Errorf("no annotation at the unknown reference (8:12):\n%s", stdout)
	}

	if code, stdout, _ := runCLI(t, "validate", "--format", "github", good); code != exitOK || stdout != "" {
		t.Errorf("a valid file: exit %d, output %q; want 0 and no annotations", code, stdout)
	}
	if code, _, stderr := runCLI(t, "validate", "--format", "yaml", good); code != exitUsage || !strings.Contains(stderr, "want text, json or github") {
		t.Errorf("--format yaml: exit %d, %s", code, stderr)
	}
}

func TestGithubEscapes(t *testing.T) {
	if got := githubData("50% done\nnext: a, b"); got != "50%25 done%0Anext: a, b" {
		t.Errorf("githubData = %q", got)
	}
	if got := githubProperty("dir,x/a:b.hcl"); got != "dir%2Cx/a%3Ab.hcl" {
		t.Errorf("githubProperty = %q", got)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
