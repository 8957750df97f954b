// Package change defines the one value that flows through a sluice pipeline:
// a row change Event, its Position in the source, and the Checkpoint that
// records how far a sink has durably committed.
//
// It is a leaf package (standard library only) so that sources, transforms,
// sinks and the engine can all speak it without import cycles.
//
// Ownership: an Event's Before, After and Key maps may be shared between
// the branches of a DAG. A stage that changes a row copies it first
// (Row.Clone); nothing ever mutates a row it did not create.
package change
