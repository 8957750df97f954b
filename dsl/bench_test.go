package dsl

import (
	"os"
	"testing"
)

// BenchmarkLoad measures loading the file that sets every attribute.
func BenchmarkLoad(b *testing.B) {
	src, err := os.ReadFile("testdata/valid/every_attribute.hcl")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Load("testdata/valid/every_attribute.hcl", src, nil)
	}
}
