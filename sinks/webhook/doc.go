// Package webhook is the `sink "webhook"` block: it POSTs batches of
// change events as a JSON array to an HTTP endpoint, signed and retried.
//
// Each request carries Content-Type: application/json, an Idempotency-Key
// derived from the source positions of the batch's events (the same on
// every retry of that batch, so a receiver can drop repeats), and, when a
// secret is set, X-Sluice-Signature: sha256=<hex HMAC-SHA256 of the body>.
// Network errors, timeouts, 408, 429 and 5xx are retried with exponential
// backoff and jitter (a Retry-After header wins over the backoff); any
// other 4xx means the receiver refused an event, which the sink isolates
// by resending the batch one event per request and reports as an
// *engine.RejectError so the pipeline's on_error policy applies.
//
// A webhook cannot store a checkpoint, so delivery is at least once: Flush
// returns only when every written event has been answered with a 2xx,
// and gives back the checkpoint as bytes for the engine's state file;
// Open reads them back.
//
// With transactions = true, each source transaction's events are framed
// by a BEGIN and an END element (with its counts) in the batches' arrays,
// and each event carries its "transaction" block (package txmeta numbers
// them); a batch may end inside a transaction. With resolved = "10s", at
// most once per interval a Flush, once every written event is delivered,
// POSTs a resolved request whose body is the resolved object ({"resolved":
// T, ...}, not an array): every change committed at or before T was in an
// earlier request that was answered 2xx. It is signed and retried like a
// batch (Idempotency-Key: ResolvedKey). T never goes backwards, also
// across a kill -9: the engine saves the bytes Flush returns after Flush
// returns, so a T found due at a Flush is held back (txmeta.Held), recorded
// as pending in those bytes, and sent at the first Flush after the engine
// has reported them saved (Saved, engine.SaveNotifier); a restarted sink
// goes on from the later of the last T sent and the pending one. The cost
// is one flush of delay (see docs/operations.md (Resolved timestamps and
// transaction metadata)).
//
// A Sink is used from one goroutine, as engine.Sink requires; Saved may be
// called from another. It holds at most one batch of events in memory.
package webhook
