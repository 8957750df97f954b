package dsl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestFileFunc(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "key.txt"), []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin"), []byte{0xff, 0xfe}, 0o600); err != nil {
		t.Fatal(err)
	}
	fn := fileFunc(dir)
	got, err := fn.Call([]cty.Value{cty.StringVal("key.txt")})
	if err != nil || got.AsString() != "secret\n" {
		t.Errorf("relative path: %v, %v", got, err)
	}
	got, err = fn.Call([]cty.Value{cty.StringVal(filepath.Join(dir, "key.txt"))})
	if err != nil || got.AsString() != "secret\n" {
		t.Errorf("absolute path: %v, %v", got, err)
	}
	for _, bad := range []string{"missing.txt", "bin", "."} {
		_, err := fn.Call([]cty.Value{cty.StringVal(bad)})
		var ce *callError
		if !errors.As(err, &ce) {
			t.Errorf("file(%q): err = %v, want a callError", bad, err)
		}
	}
}

// TestFileRelativeToPipeline loads a pipeline from another directory and
// checks file() resolves next to the pipeline file, not the working dir.
func TestFileRelativeToPipeline(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mask.key"), []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "p.hcl")
	if err := os.WriteFile(path, []byte(`pipeline "p" { mask_key = file("mask.key") }`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, diags := LoadFile(path, nil)
	if cfg == nil || cfg.Pipeline.MaskKey.Reveal() != "k" {
		t.Fatalf("mask key not read from the pipeline's directory: %v", diags)
	}
}
