package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/sluice-cdc/sluice/internal/dbskip"
	"github.com/sluice-cdc/sluice/internal/mariadbtest"
	"github.com/sluice-cdc/sluice/internal/pgtest"
)

var (
	// sluiceBin is the binary under test, built once by TestMain.
	sluiceBin string
	// pg is a private PostgreSQL with wal_level=logical: sources and
	// PostgreSQL targets live there, each test in databases of its own.
	pg *pgtest.Cluster
	// maria is the shared MariaDB (or a private one when none answers).
	maria *mariadbtest.Server
	// repoRoot is the module's directory (pipelines/ holds the canonical
	// pipeline files).
	repoRoot string
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

// runTests exists so that deferred cleanups run before os.Exit.
func runTests(m *testing.M) int {
	cl, err := pgtest.Start()
	if errors.Is(err, pgtest.ErrNoBinaries) {
		return dbskip.Main(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start PostgreSQL: %v\n", err)
		return 1
	}
	defer cl.Stop()
	pg = cl

	srv, err := mariadbtest.Start()
	if errors.Is(err, mariadbtest.ErrNoServer) {
		return dbskip.Main(err)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: no MariaDB: %v\n", err)
		return 1
	}
	defer srv.Stop()
	maria = srv

	dir, err := os.MkdirTemp("", "sluice-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sluiceBin = filepath.Join(dir, "sluice")
	_, here, _, _ := runtime.Caller(0)
	repoRoot = filepath.Join(filepath.Dir(here), "..", "..")
	build := exec.Command("go", "build", "-o", sluiceBin, "./cmd/sluice")
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building sluice:", err)
		return 1
	}
	return m.Run()
}
