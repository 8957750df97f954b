package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	c := &cli{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
	code = c.main(args)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const validPipeline = `pipeline "p" {}

source "file" "in" {
  path = "in.jsonl"
}

sink "file" "out" {
  from = source.in
  path = "-"
}
`

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.hcl", validPipeline)
	bad := writeFile(t, dir, "bad.hcl", strings.Replace(validPipeline, "source.in", "source.inn", 1))
	cases := []struct {
		name string
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{"no command", nil, exitUsage, "usage: sluice COMMAND"},
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"unknown flag", []string{"validate", "--nope", good}, exitUsage, "flag provided but not defined: -nope"},
		{"missing file argument", []string{"validate"}, exitUsage, "want one or more pipeline files"},
		{"valid", []string{"validate", good}, exitOK, "good.hcl: ok"},
		{"invalid", []string{"validate", bad}, exitFindings, "bad.hcl:8:10: error: unknown reference source.inn"},
		{"flag after file", []string{"validate", bad, "--json"}, exitFindings, `"line": 8`},
		{"flag before file", []string{"validate", "--json", bad}, exitFindings, `"line": 8`},
		{"graph", []string{"graph", good}, exitOK, "source.in -> sink.out (file)"},
		{"graph dot", []string{"graph", good, "--dot"}, exitOK, `"source.in" -> "sink.out";`},
		{"status before any run", []string{"status", good}, exitFindings, "has the pipeline run yet?"},
		{"dry-run without input", []string{"dry-run", good}, exitUsage, "give exactly one of --input"},
		{"dlq without subcommand", []string{"dlq"}, exitUsage, "want a subcommand"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Chdir(dir)
			code, stdout, stderr := runCLI(t, c.args...)
			if code != c.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, c.code, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, c.out) {
				t.Errorf("output does not contain %q\nstdout: %s\nstderr: %s", c.out, stdout, stderr)
			}
		})
	}
}

func TestValidateJSONIsOneArrayAcrossFiles(t *testing.T) {
	dir := t.TempDir()
	bad1 := writeFile(t, dir, "a.hcl", strings.Replace(validPipeline, "source.in", "source.x", 1))
	bad2 := writeFile(t, dir, "b.hcl", strings.Replace(validPipeline, `path = "-"`, `path = "-"
  colour = "blue"`, 1))
	code, stdout, _ := runCLI(t, "validate", "--json", bad1, bad2)
	if code != exitFindings {
		t.Fatalf("exit code %d, want 1", code)
	}
	var diags []struct {
		File     string `json:"file"`
		Line     int    `json:"line"`
		Column   int    `json:"column"`
		Severity string `json:"severity"`
		Summary  string `json:"summary"`
	}
	if err := json.Unmarshal([]byte(stdout), &diags); err != nil {
		t.Fatalf("not one JSON array: %v\n%s", err, stdout)
	}
	if len(diags) != 2 || !strings.HasSuffix(diags[0].File, "a.hcl") || !strings.HasSuffix(diags[1].File, "b.hcl") {
		t.Fatalf("want one diagnostic per file, got %+v", diags)
	}
	if diags[1].Line != 10 || diags[1].Severity != "error" {
		t.Errorf("b.hcl diagnostic = %+v, want line 10 error", diags[1])
	}
}

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	messy := writeFile(t, dir, "messy.hcl", "pipeline \"p\" {}\nsource \"file\" \"in\" {\npath=\"in.jsonl\"\n  follow   = true\n}\nsink \"file\" \"out\" {\n from = source.in\n path = \"-\"\n}\n")
	if code, stdout, _ := runCLI(t, "fmt", "-check", messy); code != exitFindings || !strings.Contains(stdout, "messy.hcl") {
		t.Fatalf("fmt -check on a messy file: code %d, stdout %q; want 1 and the file listed", code, stdout)
	}
	if code, _, stderr := runCLI(t, "fmt", messy); code != exitOK {
		t.Fatalf("fmt: code %d: %s", code, stderr)
	}
	got, _ := os.ReadFile(messy)
	if !strings.Contains(string(got), "  path   = \"in.jsonl\"\n  follow = true\n") {
		t.Errorf("fmt did not align attributes:\n%s", got)
	}
	if code, stdout, _ := runCLI(t, "fmt", "-check", messy); code != exitOK || stdout != "" {
		t.Errorf("fmt -check after fmt: code %d, stdout %q; want 0 and nothing", code, stdout)
	}
}

func TestTestCommand(t *testing.T) {
	dir := t.TempDir()
	failing := writeFile(t, dir, "t.hcl", validPipeline+`
test "passes" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.out" {
    op = "insert"
  }
}

test "fails" {
  input "public.users" {
    op    = "insert"
    after = { id = 1 }
  }
  expect "sink.out" {
    op = "delete"
  }
}
`)
	code, stdout, _ := runCLI(t, "test", failing)
	if code != exitFindings {
		t.Errorf("exit code %d, want 1", code)
	}
	for _, want := range []string{"PASS passes", "FAIL fails (", "1 passed, 1 failed\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCLI(t, "test", "--json", failing)
	var res struct {
		Passed, Failed int
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != exitFindings || res.Passed != 1 || res.Failed != 1 {
		t.Errorf("--json: code %d, %+v, %v\n%s", code, res, err, stdout)
	}
}

// TestPipelinesDirectory: every example pipeline validates and its tests
// pass (LANGUAGE.md's canonical examples among them).
func TestPipelinesDirectory(t *testing.T) {
	files, err := filepath.Glob("../../pipelines/*.hcl")
	if err != nil || len(files) < 5 {
		t.Fatalf("pipelines/*.hcl: %v, %d files", err, len(files))
	}
	if code, stdout, stderr := runCLI(t, append([]string{"validate"}, files...)...); code != exitOK {
		t.Fatalf("validate: %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := runCLI(t, append([]string{"test"}, files...)...)
	if code != exitOK || !strings.Contains(stdout, " passed, 0 failed") {
		t.Fatalf("test: %d\n%s%s", code, stdout, stderr)
	}
}
