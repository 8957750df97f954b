package dbskip

import (
	"fmt"
	"io"
	"os"
	"testing"
)

// Env is the variable that turns a missing server into a skip: set it to 1.
const Env = "SLUICE_SKIP_DB"

// Skip reports whether a test whose database server is missing is
// skipped rather than failed, given the environment getenv reads
// (os.Getenv): only with SLUICE_SKIP_DB=1, and never under CI=true.
func Skip(getenv func(string) string) bool {
	return getenv(Env) == "1" && getenv("CI") != "true"
}

// Message is what a test says when its server is missing: err (the
// harness's error, which names the server and what to install), how to
// get every server, and how to skip instead.
func Message(getenv func(string) string, err error) string {
	switch {
	case Skip(getenv):
		return fmt.Sprintf("database server missing: %v\n(skipped because %s=1; `make test` installs and starts every database the tests need)", err, Env)
	case getenv("CI") == "true" && getenv(Env) == "1":
		return fmt.Sprintf("database server missing: %v\n`make test` installs and starts every database the tests need; %s=1 does not skip under CI=true (a CI run that tests nothing is worse than a red one)", err, Env)
	}
	return fmt.Sprintf("database server missing: %v\n`make test` installs and starts every database the tests need; or set %s=1 to skip the tests that need one instead of failing", err, Env)
}

// Missing ends test t, whose server is missing (err): it skips when Skip
// says so, else it fails. It never returns.
func Missing(t testing.TB, err error) {
	t.Helper()
	msg := Message(os.Getenv, err)
	if Skip(os.Getenv) {
		t.Skip(msg)
		return
	}
	t.Fatal(msg)
}

// Main is Missing for a TestMain that found its server missing (err)
// before running any test: it prints the message to stderr and returns
// the exit code for os.Exit, 0 to skip the package and 1 to fail it.
func Main(err error) int { return exitCode(os.Stderr, os.Getenv, err) }

func exitCode(w io.Writer, getenv func(string) string, err error) int {
	msg := Message(getenv, err)
	if Skip(getenv) {
		fmt.Fprintf(w, "SKIP: %s\n", msg)
		return 0
	}
	fmt.Fprintf(w, "FAIL: %s\n", msg)
	return 1
}
