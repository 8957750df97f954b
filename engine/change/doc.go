// Package change defines the one value that flows through a sluice pipeline:
// a row change Event, its Position in the source, and the Checkpoint that
// records how far a sink has durably committed.
//
// It is a leaf package (standard library only) so that sources, transforms,
// sinks and the engine can all speak it without import cycles.
//
// Rows are columnar: a Row is a slice of values indexed by a Columns, the
// ordered column names that every row of one table shape shares (a source
// makes one per Relation version). A row costs one slice, a stage that
// reshapes rows plans the reshaping once per Columns, and a sink or format
// reads columns by position or in an order computed once.
//
// Ownership: an Event's Before, After and Key may be shared between the
// branches of a DAG. A stage that changes a row copies it first
// (Row.Clone) or builds a new one (MakeRow); nothing ever mutates a row
// it did not create. A Row is a value, like a slice header: Set on a copy
// that adds a column changes only that copy.
package change
