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
//
// With transactions = true each source transaction's lines are framed by a
// BEGIN line and an END line with its counts, and each event line carries
// its "transaction" block (package txmeta numbers them). With resolved =
// "10s", at most once per interval a Flush ends the lines it writes with a
// resolved line ({"resolved": T, ...}): every change committed at or before
// T is on an earlier line. It is synced with them, so Open's truncation
// removes it together with them, and the last T is part of the saved
// bytes, so a restarted sink goes on from it and T never goes backwards in
// the file. On standard output a kill -9 between printing a resolved line
// and the state file saving its Flush can print a lower T after the
// restart (see docs/operations.md (Resolved timestamps and transaction metadata)).
package file
