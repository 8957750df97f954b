package engine

import "github.com/sluice-cdc/sluice/engine/change"

// SaveNotifier is implemented by sinks that must not act on what the
// bytes of a Flush record until they are durable: a webhook or standard
// output cannot take back a resolved timestamp it sent, so it sends one
// only once the bytes recording it are in the state file (see
// sinks/txmeta.Held).
//
// The checkpointer calls Saved with the checkpoint of each sink record
// right after the state file Update that saved it returns: every record
// of the sink whose checkpoint is at or before cp (per stream) is then
// durable, with the bytes its Flush returned. Records coalesce, so a sink
// need not hear of every Flush; calls come in the order of the saves.
// Saved is called from the checkpointer's goroutine, concurrently with
// Write and Flush: the sink locks what it shares between them. It must
// not block.
type SaveNotifier interface {
	Saved(cp change.Checkpoint)
}
