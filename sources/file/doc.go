// Package file is the `source "file"` block: change events in the native
// format (format.DecodeNative), one JSON object per line.
//
// Each line is its own unit: its event is a Boundary, and its Position is
// the byte offset of the line in the stream {Source: block name}, so a
// restart seeks past the last committed line. Blank lines are skipped.
// Without follow the source ends (io.EOF) at the end of the file; with
// follow = true it keeps polling for appended lines, and a last line
// without its newline is read once it is complete.
//
// Memory is bounded: a buffered reader, at most BatchSize events per
// Read, and lines of at most MaxLine bytes.
package file
