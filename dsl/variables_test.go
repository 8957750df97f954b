package dsl

import (
	"strings"
	"testing"
)

func TestVariables(t *testing.T) {
	src := `pipeline "p" {}
variable "tables" { default = ["public.users"] }
variable "batch" { default = 10 }
variable "dsn" {}
source "postgres" "app" {
  dsn    = var.dsn
  tables = var.tables
}
sink "mysql" "m" {
  from       = source.app
  dsn        = "${var.dsn}?tls=true"
  batch_size = var.batch
}
`
	cfg, _, diags := Load("v.hcl", []byte(src), map[string]string{"dsn": "postgres://x", "batch": "25"})
	if len(diags) > 0 {
		t.Fatal(diags.Error())
	}
	eq(t, "dsn", cfg.Sources[0].Postgres.DSN, "postgres://x")
	eq(t, "tables from a list default", cfg.Sources[0].Postgres.Tables, []string{"public.users"})
	eq(t, "interpolated", cfg.Sinks[0].MySQL.DSN, "postgres://x?tls=true")
	eq(t, "-var overrides a number default", cfg.Sinks[0].MySQL.BatchSize, 25)

	_, _, diags = Load("v.hcl", []byte(src), nil)
	if !diags.HasErrors() || !strings.Contains(diags.Error(), `variable "dsn" has no value`) {
		t.Errorf("missing -var: %v", diags)
	}
}

// TestExpressionOffsets checks expression errors land on the exact
// character inside the string, through escapes and heredocs.
func TestExpressionOffsets(t *testing.T) {
	cases := []struct {
		name, where string
		line, col   int
	}{
		{"plain", `"op == 'insert' && usr.id > 1"`, 7, 30},
		{"escaped quotes", `"after.name == \"x\" && usr.id > 1"`, 7, 35},
		{"unicode escape", `"after.name == '\u00e9' && usr.id > 1"`, 7, 38},
		{"literal dollar", `"after.name == '$${x}' && usr.id > 1"`, 7, 37},
		{"heredoc", "<<EOT\nop == 'insert' &&\n  usr.id > 1\nEOT", 9, 3},
		{"indented heredoc", "<<-EOT\n    op == 'insert' &&\n      usr.id > 1\n    EOT", 9, 7},
		{"interpolation before", `"after.kind == '${var.kind}' && usr.id > 1"`, 7, 43},
		{"inside interpolation", `"${var.bad} && op == 'insert'"`, 7, 14},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "pipeline \"p\" {}\nvariable \"kind\" { default = \"vip\" }\nvariable \"bad\" { default = \"usr.id > 1\" }\nsource \"file\" \"f\" { path = \"x\" }\ntransform \"t\" {\n  from = source.f\n  where = " + c.where + "\n}\nsink \"file\" \"o\" {\n  from = transform.t\n  path = \"-\"\n}\n"
			_, _, diags := Load("e.hcl", []byte(src), nil)
			if len(diags) != 1 {
				t.Fatalf("want 1 diagnostic, got %v", diags)
			}
			s := diags[0].Subject
			if s.Start.Line != c.line || s.Start.Column != c.col || !strings.Contains(diags[0].Summary, "unknown name usr") {
				t.Errorf("got %d:%d %q, want %d:%d", s.Start.Line, s.Start.Column, diags[0].Summary, c.line, c.col)
			}
		})
	}
}
