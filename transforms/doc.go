// Package transforms implements the `transform` block of the pipeline
// language: a pure, per-event function that filters, computes, masks,
// projects and renames the columns of row changes.
//
// The steps always run in the order where → set → mask → select/exclude
// → rename, and every column step is applied to Before, After and Key
// alike (and select/exclude/rename to Changed), so that a masked or
// excluded column never leaks through any part of an event.
//
// An event's Relation is replaced by the transform's view of it (see
// relations): without dropped columns, with renamed and computed ones,
// so that sinks creating tables from it create what they will receive.
//
// Events of tables outside the block's `tables`, Marks and Truncates pass
// through untouched: they carry no row the steps could change.
//
// Rows are columnar (change.Row): the column steps are planned once per
// input Columns (a shape: for each output column, the input column or
// computed value it takes and the masks to apply), so that a row costs
// one slice of values and no name is looked up per row. A row no step
// changes passes as is: rows are shared between the branches of a DAG,
// and a transform never writes into one.
//
// Concurrency: Apply may be called concurrently (a transform read by two
// sources is applied from each source's goroutine); each call takes its
// own expression evaluator and hashing state from a sync.Pool.
package transforms
