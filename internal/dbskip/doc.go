// Package dbskip decides what a test does when a database server it
// needs is missing: by default it fails, so that a plain `go test ./...`
// on a machine without the databases is red and says so, rather than
// passing with SKIP lines a developer can miss.
//
// The rule, in Skip:
//
//   - without SLUICE_SKIP_DB=1 a missing server fails the test (or the
//     package, from TestMain), with a message naming the server, saying
//     that `make test` installs and starts every database, and that
//     SLUICE_SKIP_DB=1 turns the failures into skips;
//   - with SLUICE_SKIP_DB=1 the test is skipped;
//   - under CI=true it fails even with SLUICE_SKIP_DB=1: a CI run that
//     silently tests nothing is worse than a red one.
//
// The harnesses (internal/pgtest, internal/mariadbtest) and the tests that
// start a server themselves call Missing (in a test) or Main (in a
// TestMain) with the harness's "not found" error, which names the server
// and what to install.
package dbskip
