package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// sluiceBin is the sluice binary built once for the tests that run it as
// a separate process (crash tests need a process to kill).
var sluiceBin string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests exists so that deferred cleanups run before os.Exit.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sluice-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sluiceBin = filepath.Join(dir, "sluice")
	build := exec.Command("go", "build", "-o", sluiceBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building sluice:", err)
		return 1
	}
	return m.Run()
}
