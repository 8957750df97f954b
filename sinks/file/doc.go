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
// "10s", at most once per interval a Flush finds a resolved line
// ({"resolved": T, ...}) due: every change committed at or before T is on
// an earlier line. It is held back (txmeta.Held): recorded as pending in
// the saved bytes and written, after the lines of a later Flush, once the
// engine has reported those bytes saved (Saved, engine.SaveNotifier). It
// is synced with the lines before it, so Open's truncation removes it
// together with them, and a restarted sink goes on from the later of the
// last T written and the pending one, so T never goes backwards, in the
// file, on standard output, or for a process tailing the file, also
// across a kill -9. The cost is one flush of delay (see docs/operations.md
// (Resolved timestamps and transaction metadata)).
package file
