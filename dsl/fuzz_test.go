package dsl

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary files to the parser and loader: no input may
// panic, and whatever comes back must print. Seeds are the small testdata
// files: the fuzzer minimizes each new input, and minimizing a large one
// (a load compiles its expressions) would eat a 30-second run.
func FuzzLoad(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.hcl"))
		for _, p := range files {
			if src, err := os.ReadFile(p); err == nil && len(src) <= 1024 {
				f.Add(src)
			}
		}
	}
	f.Add([]byte("pipeline \"p\" {}\ntransform \"t\" { from = transform.t\n where = \"\\u00\" }"))
	f.Add([]byte("test \"x\" { input \"a.b\" { op = \"insert\"\n after = { a = [1, {b = null}] } } }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, files, diags := Load("fuzz.hcl", src, map[string]string{"v": "1"})
		var b bytes.Buffer
		if err := WriteDiagnostics(&b, files, diags, false); err != nil {
			t.Fatal(err)
		}
		if err := WriteDiagnostics(&b, files, diags, true); err != nil {
			t.Fatal(err)
		}
		if cfg == nil && !diags.HasErrors() {
			t.Fatal("nil config without an error")
		}
		if _, err := Format(src); err != nil && !diags.HasErrors() {
			t.Fatalf("Format fails on a file that loads: %v", err)
		}
	})
}
