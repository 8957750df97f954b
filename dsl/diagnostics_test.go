package dsl

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
)

func TestWriteDiagnosticsJSON(t *testing.T) {
	src := "pipeline \"p\" {\n  on_error = \"oops\"\n}\n"
	_, files, diags := Load("p.hcl", []byte(src), map[string]string{"nope": "1"})
	var b bytes.Buffer
	if err := WriteDiagnostics(&b, files, diags, true); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b.String())
	}
	want := []map[string]any{
		{"file": "", "line": 0.0, "column": 0.0, "severity": "error", "summary": `-var nope: no variable "nope" is declared`},
		{"file": "p.hcl", "line": 2.0, "column": 14.0, "severity": "error", "summary": `on_error = "oops" is not allowed`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d diagnostics, want %d:\n%s", len(got), len(want), b.String())
	}
	for i := range want {
		for k, v := range want[i] {
			if got[i][k] != v {
				t.Errorf("diagnostic %d: %s = %v, want %v", i, k, got[i][k], v)
			}
		}
		if got[i]["detail"] == "" {
			t.Errorf("diagnostic %d has no detail", i)
		}
	}
}

// TestWriteDiagnosticsText checks the header line, and that the caret
// lines up under the token when the line is indented with tabs.
func TestWriteDiagnosticsText(t *testing.T) {
	src := "pipeline \"p\" {\n\ton_eror = \"retry\"\n}\n"
	_, files, diags := Load("tab.hcl", []byte(src), nil)
	var b bytes.Buffer
	if err := WriteDiagnostics(&b, files, diags, false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(b.String(), "\n")
	if lines[0] != `tab.hcl:2:2: error: unknown attribute "on_eror" in pipeline` {
		t.Errorf("header = %q", lines[0])
	}
	if lines[2] != "    \ton_eror = \"retry\"" || lines[3] != "    \t^~~~~~~" {
		t.Errorf("source and caret lines = %q, %q", lines[2], lines[3])
	}
	b.Reset()
	warn := hcl.Diagnostics{{Severity: hcl.DiagWarning, Summary: "w", Subject: &hcl.Range{Filename: "x.hcl", Start: hcl.Pos{Line: 9, Column: 1, Byte: 1000}}}}
	if err := WriteDiagnostics(&b, nil, warn, false); err != nil || b.String() != "x.hcl:9:1: warning: w\n" {
		t.Errorf("warning without source = %q, %v", b.String(), err)
	}
}

// TestSecretsNotPrinted makes mistakes next to secrets from the
// environment and checks no diagnostic or printed config shows them.
func TestSecretsNotPrinted(t *testing.T) {
	t.Setenv("SLUICE_TEST_DSN", "postgres://u:hunter2@db/app")
	t.Setenv("SLUICE_TEST_HOOK", "whsec_hunter2")
	src := `pipeline "p" { mask_key = env("SLUICE_TEST_HOOK") }
source "postgres" "app" {
  dsn       = env("SLUICE_TEST_DSN")
  tables    = [env("SLUICE_TEST_DSN")]
  exclude   = env("SLUICE_TEST_DSN")
  snapshot  = env("SLUICE_TEST_HOOK")
  heartbeat = env("SLUICE_TEST_HOOK")
}
sink "webhook" "w" {
  from    = source.app
  url     = "https://example.com/${env("SLUICE_TEST_HOOK") == "" ? "x" : "y"}"
  secret  = env("SLUICE_TEST_HOOK")
  headers = { Authorization = env("SLUICE_TEST_HOOK") }
  batch   = env("SLUICE_TEST_HOOK")
  retry   = { backoff = env("SLUICE_TEST_HOOK") }
  format  = "${env("SLUICE_TEST_HOOK")}x"
}
`
	cfg, files, diags := Load("s.hcl", []byte(src), nil)
	if !diags.HasErrors() {
		t.Fatal("want errors")
	}
	var b bytes.Buffer
	_ = WriteDiagnostics(&b, files, diags, false)
	_ = WriteDiagnostics(&b, files, diags, true)
	js, _ := json.Marshal(cfg.Pipeline)
	b.Write(js)
	js, _ = json.Marshal(cfg.Sinks[0].Webhook)
	b.Write(js)
	if strings.Contains(b.String(), "hunter2") {
		t.Errorf("a secret was printed:\n%s", b.String())
	}
}
