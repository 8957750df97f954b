// Package pipelinetest runs the `test` blocks of a pipeline file in
// memory, with no database or network (`sluice test`), and is the one
// test language and report that every runner of them shares (package
// pipelinetest/live runs the same blocks against real databases: `sluice
// test --live`).
//
// Run builds each test's graph (only transforms are built; sources and
// sinks are never opened), turns the test's inputs into change events as
// a source would deliver them, routes them through the transform DAG and
// compares what reaches each sink with the test's `expect` blocks, and
// the target table a sink would leave with its `expect_table` blocks.
// Table models a target table with the semantics the database sinks
// document (upsert by key, primary-key moves, hard/soft/skip deletes,
// append and update modes, absent columns left alone). Tests are
// hermetic: the "hash" mask is keyed by MaskKey.
//
// Judge is the comparison itself: given an Observation (what each sink
// received, and each target table as a run left it) it returns the
// problems and a View per expectation, with the same rules and messages
// whichever runner observed. A Result holds the Outcome of every run of
// a test; when runs disagree its Failure shows them side by side
// (SideBySide), naming the first row that differs. Write prints the
// results and the closing "N passed, N failed" line.
//
// Values compare semantically (Equal): int64 1, float64 1.0 and
// Numeric "1" are the same number, so a test need not know which Go type
// a source or an expression produces.
package pipelinetest
