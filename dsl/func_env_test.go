package dsl

import (
	"errors"
	"os"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestEnvFunc(t *testing.T) {
	env := map[string]string{"SET": "value", "EMPTY": ""}
	fn := envFunc(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, false)
	cases := []struct {
		name string
		args []cty.Value
		want string
	}{
		{"set", []cty.Value{cty.StringVal("SET")}, "value"},
		{"set wins over default", []cty.Value{cty.StringVal("SET"), cty.StringVal("d")}, "value"},
		{"set to empty is empty", []cty.Value{cty.StringVal("EMPTY"), cty.StringVal("d")}, ""},
		{"unset uses default", []cty.Value{cty.StringVal("UNSET"), cty.StringVal("d")}, "d"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := fn.Call(c.args)
			if err != nil {
				t.Fatal(err)
			}
			if got.AsString() != c.want {
				t.Errorf("got %q, want %q", got.AsString(), c.want)
			}
		})
	}
	_, err := fn.Call([]cty.Value{cty.StringVal("UNSET")})
	var ce *callError
	if !errors.As(err, &ce) || ce.Summary != "environment variable UNSET is not set" {
		t.Errorf("unset without default: err = %v", err)
	}
	if _, err := fn.Call([]cty.Value{cty.StringVal("SET"), cty.StringVal("a"), cty.StringVal("b")}); err == nil {
		t.Error("three arguments: want an error")
	}
}

// TestEnvInFile checks the diagnostic for an unset variable points at
// the call and says how to set it.
func TestEnvInFile(t *testing.T) {
	src := "pipeline \"p\" {\n  mask_key = env(\"SLUICE_TEST_NEVER_SET\")\n}\n"
	_, _, diags := Load("env.hcl", []byte(src), nil)
	if len(diags) == 0 {
		t.Fatal("want a diagnostic")
	}
	d := diags[0]
	if d.Subject == nil || d.Subject.Start.Line != 2 || d.Subject.Start.Column != 14 {
		t.Errorf("subject = %v, want env.hcl:2:14", d.Subject)
	}
	if d.Summary != "environment variable SLUICE_TEST_NEVER_SET is not set" {
		t.Errorf("summary = %q", d.Summary)
	}
}

// TestOfflineUnsetEnv loads a canonical example without its environment
// in offline mode: warnings at each env() call, no errors, and the
// attributes left unset.
func TestOfflineUnsetEnv(t *testing.T) {
	for _, name := range []string{"SOURCE_DSN", "TARGET_DSN"} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
	cfg, _, diags := LoadFileWith("testdata/valid/users_to_mysql.hcl", Options{Offline: true})
	if diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	if len(diags) != 2 || diags[0].Summary != "environment variable SOURCE_DSN is not set" || diags[0].Subject.Start.Line != 5 || diags[0].Subject.Start.Column != 13 {
		t.Fatalf("want a warning at each env() call, got %v", diags)
	}
	if cfg.Sources[0].Postgres.DSN != "" || cfg.Sinks[0].MySQL.DSN != "" {
		t.Error("an unknown DSN was given a value")
	}
	if _, _, diags := LoadFile("testdata/valid/users_to_mysql.hcl", nil); !diags.HasErrors() {
		t.Error("without Offline an unset variable must be an error")
	}
}
