// Package state is a pipeline's state file: one bbolt database holding,
// per sink, the checkpoint it last committed and the bytes its Flush
// returned; per source, the checkpoint last acknowledged to it; per
// component, a private key/value corner (snapshot progress and the like);
// and the dead-letter queue of events that a transform failed on or a sink
// rejected.
//
// Every record is versioned (a leading format byte, then JSON), so that a
// newer sluice can read an older file and an older one refuses a newer
// file instead of misreading it. Each save is one bbolt Update, so a crash
// leaves either the old or the new state, never half of it.
//
// A Store is opened by one process at a time: bbolt's file lock makes a
// second Open fail fast with ErrLocked ("pipeline is running"). A running
// pipeline also keeps a small status file beside the state file (PATH +
// ".status"), rewritten at most once a second, so that Inspect can report
// positions while the state file is locked.
//
// A Store is safe for concurrent use.
package state
