// Package file is the `sink "file"` block: change events as JSON Lines,
// in the native or the Debezium format (package format). Marks are not
// written.
//
// For a real path the sink is exactly-once. Flush writes and fsyncs, then
// returns saved bytes holding the checkpoint and the file's length at that
// moment; the engine stores them in the state file. Open truncates the
// file back to the saved length, dropping a tail written after the last
// checkpoint the state file recorded (those events are delivered again),
// and returns the saved checkpoint. With no saved state the file is
// started empty: it belongs to the pipeline. A file shorter than the saved
// length was changed outside sluice and is refused.
//
// path = "-" writes to standard output, which cannot be truncated: it is
// at-least-once (events after the last saved checkpoint are printed again
// after a crash).
package file
