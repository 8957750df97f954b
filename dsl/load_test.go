package dsl

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/invalid")

// testEnv sets the environment variables the testdata pipelines read.
func testEnv(t *testing.T) {
	t.Helper()
	t.Setenv("SOURCE_DSN", "postgres://sluice:s3cret@127.0.0.1:5432/app")
	t.Setenv("TARGET_DSN", "root:s3cret@tcp(127.0.0.1:3306)/app")
	t.Setenv("WEBHOOK_URL", "https://hooks.example.com/orders")
	t.Setenv("WEBHOOK_SECRET", "whsec")
	t.Setenv("CRM_TOKEN", "tok")
	t.Setenv("SLUICE_MASK_KEY", "mk")
}

func TestValidFilesLoadClean(t *testing.T) {
	testEnv(t)
	files, _ := filepath.Glob("testdata/valid/*.hcl")
	if len(files) < 5 {
		t.Fatalf("found %d valid files, want the 4 canonical examples and the reference snippets", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, fs, diags := LoadFile(f, nil)
			if len(diags) > 0 {
				var b bytes.Buffer
				_ = WriteDiagnostics(&b, fs, diags, false)
				t.Fatalf("want no diagnostics, got:\n%s", b.String())
			}
			if cfg.Pipeline.Name == "" || len(cfg.Sources) == 0 || len(cfg.Sinks) == 0 {
				t.Fatalf("config is missing blocks: %+v", cfg)
			}
		})
	}
}

// TestInvalidFiles loads each broken pipeline of testdata/invalid and
// compares the printed diagnostics with its .golden file.
func TestInvalidFiles(t *testing.T) {
	testEnv(t)
	t.Setenv("UNSET_FOR_TEST", "")
	os.Unsetenv("UNSET_FOR_TEST")
	files, _ := filepath.Glob("testdata/invalid/*.hcl")
	if len(files) < 30 {
		t.Fatalf("found %d invalid files, want at least 30", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			_, fs, diags := LoadFile(f, varsFor(t, f))
			if !diags.HasErrors() {
				t.Fatalf("%s loaded without errors", f)
			}
			var got bytes.Buffer
			if err := WriteDiagnostics(&got, fs, diags, false); err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(f, ".hcl") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./dsl -run TestInvalidFiles -update to create it)", err)
			}
			if got.String() != string(want) {
				t.Errorf("diagnostics differ from %s\n--- got:\n%s--- want:\n%s", golden, got.String(), want)
			}
		})
	}
}

// varsFor reads `# -var NAME=VALUE` comment lines of a testdata file: the
// command-line overrides that case runs with.
func varsFor(t *testing.T, path string) map[string]string {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var vars map[string]string
	for _, line := range strings.Split(string(src), "\n") {
		if rest, ok := strings.CutPrefix(line, "# -var "); ok {
			name, value, _ := strings.Cut(rest, "=")
			if vars == nil {
				vars = map[string]string{}
			}
			vars[name] = value
		}
	}
	return vars
}

func TestDefaultName(t *testing.T) {
	for in, want := range map[string]string{
		"orders": "sluice_orders", "Orders-EU 2": "sluice_orders_eu_2", "a.b_c": "sluice_a_b_c", "Ünïcode": "sluice__n_code",
	} {
		if got := DefaultName(in); got != want {
			t.Errorf("DefaultName(%q) = %q, want %q", in, got, want)
		}
	}
}
