// Package txmeta is what the Kafka, webhook and file sinks share to tell
// their consumers when they have everything (docs/operations.md (Resolved timestamps and transaction metadata)): resolved
// timestamps (`resolved = "10s"`) and transaction metadata
// (`transactions = true`). The sinks write the messages; this package
// decides what they are and when, so the three behave alike.
//
// Transactions numbers the data events of each source transaction as a
// sink writes them: the sink writes a BEGIN before a transaction's first
// data event, each data event with its place in the transaction
// (format.TxOrder), and an END with the counts after its last one, at the
// event that ends it (the Boundary, usually the transaction's Mark).
// Transactions with no data event for the sink (heartbeats, rows a
// transform dropped) get neither. Events without a transaction id, and
// snapshot rows, carry no transaction metadata.
//
// Resolver follows, per source stream, the commit time of the last
// transaction the sink has written (Note, for every event Write gets), and
// at each commit says whether a resolved message is due (Due) and for
// which time T: the lowest of those commit times over the streams that
// carry commit times, less CommitSkew, once T has passed the last one
// emitted and at most once per interval (NewResolver). The sink writes it only after (or
// atomically with) the changes it covers, then records it (Emitted). Its
// state (State, Restore) goes wherever the sink keeps what must survive a
// restart, so T never goes backwards.
//
// Held is the Resolver of a sink whose state lives only in the bytes its
// Flush returns, which the engine saves after Flush returns (webhook,
// file): it holds a due message back until the engine reports those
// bytes saved (engine.SaveNotifier) and sends it at a later Flush, so a
// kill -9 cannot make a restarted sink send a lower T.
//
// None of these types is safe for concurrent use, Held.Saved excepted; a
// sink uses them from the one goroutine that calls Write and Flush.
package txmeta
