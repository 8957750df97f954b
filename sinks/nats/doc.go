// Package nats is the `sink "nats"` block: it publishes each change event
// as one message to NATS JetStream, exactly once.
//
//	sink "nats" "events" {
//	  from    = source.app
//	  url     = "nats://nats.internal:4222"
//	  subject = "app.{schema}.{table}"   # default "<pipeline>.{schema}.{table}"
//	  format  = "debezium"               # or "native"
//	  stream  = "sluice_app"             # default "sluice_<pipeline>"
//	  max_age = "168h"
//	}
//
// The subject is the template with {schema} and {table} replaced by the
// event's (a schema or table name holding '.', whitespace or a wildcard
// cannot be a subject token and stops the sink with an error naming the
// table). The payload is the event in the sink's format, Debezium's
// envelope by default (with schemas, wrapped with its Kafka Connect
// schema) or sluice's native JSON, encoded by package format exactly as
// the Kafka sink encodes a record value; a truncate is a message too
// (Debezium op "t"). Marks publish nothing.
//
// The stream is created when it is missing (create_stream) with the
// block's subjects (default: the template with each token holding a
// placeholder turned into "*", "<pipeline>.*.*"), retention, max_age,
// replicas and duplicate_window, file storage; an existing stream is
// used as it is, but must store every subject the template renders.
// Credentials are user and password, a token, or a .creds file; they
// are never logged, and URLs in messages have their passwords redacted.
//
// # Headers
//
// Each message carries
//
//	Nats-Msg-Id                 <stream>@<OFFSET.INDEX>, e.g. "app@23803720.3" (MsgID)
//	Sluice-Checkpoint           the sink's checkpoint as of this message, as JSON
//	Sluice-Sink                 "<pipeline>/<sink>" (plus ".<instance>" with --instance)
//	Nats-Expected-Stream        the stream
//	Nats-Expected-Last-Sequence the stream sequence the message must follow
//	Nats-Expected-Last-Msg-Id   the id of the message it must follow (not on
//	                            the first message after Open)
//
// # Exactly once
//
// JetStream has no transactions, so the sink makes the stream itself the
// record of what it committed. Each message's Sluice-Checkpoint is the
// checkpoint of the last Flush advanced by every event written since, up
// to and including this one: whoever finds the message in the stream
// knows everything before it was written. The expected-last headers make
// that true: the sink predicts the sequence each message follows (the
// stream's last sequence at Open, plus one per message) and names the
// message it follows, so the server stores a message only when every
// earlier one is stored. A message lost in a reconnect, refused for its
// size or by a full stream makes every later one fail too, and so does
// a message someone else stores (which could otherwise move the sequence
// just as far as a failed one held it back); the stream never has a gap.
// The first message after Open expects only the sequence: a server
// restarted after the duplicate window no longer knows the last id.
//
// Open reads the stream's last message and decodes its Sluice-Checkpoint,
// and also decodes saved (the bytes the last Flush returned, which the
// engine keeps in its state file); per source stream it returns the later
// of the two. The header covers what a crash left published but not yet
// saved, also long after the duplicate window; the saved bytes cover
// Marks, which produce no message (a Flush of only Marks still advances).
// The engine then sends only what is after that checkpoint. Nats-Msg-Id
// is the second line: within the duplicate window the stream drops a
// message it already has, which happens when the last message is gone
// (see Limits) and the sink falls back to an older saved checkpoint. An
// acknowledgement that reports a duplicate leaves the stream's sequence
// where it was, so the sink collects the messages in flight after it and
// sends the ones refused for their expected sequence again, in order.
//
// Write encodes and queues the messages; Flush publishes them
// asynchronously, in order, and waits for every acknowledgement
// (ackTimeout each). A consumer therefore sees what Flushes commit, which
// the engine calls only at source-transaction boundaries: whole
// transactions, and nothing of a batch abandoned by a Close without Flush;
// only a crash in the middle of a Flush leaves part of one in the stream,
// and the restarted sink goes on right after it. The queue holds at most
// the engine's batch of events; at most 4,096 messages (and 64 MiB of
// them) are unacknowledged at once, so memory is bounded. A failure marks the sink
// broken until it is opened again: a message over the server's
// max_payload, or that the stream refuses for its size, is an
// *engine.RejectError naming the table and position (the pipeline's
// on_error applies); a wrong stream, missing permissions, bad credentials
// or certificates are permanent; the rest (disconnects, timeouts, no
// stream answering, a sequence that moved) are retried by reopening.
// Close closes the connection without waiting: what reached the stream
// is found by the next Open, the rest is sent again.
//
// # Limits
//
//   - The stream belongs to one sink: its last message must be this
//     sink's. Open refuses a stream whose last message has another
//     Sluice-Sink (two sinks, or pipelines, sharing a stream; the sink
//     renamed) or none, and a message another publisher stores makes the
//     next publish fail for its expected sequence. Processes that run the
//     same pipeline side by side need a stream (and subjects) each.
//   - With retention "interest" or "workqueue", or a max_age shorter than
//     the pipeline's idle time, the last message can be gone: Open then
//     relies on the saved checkpoint, and a crash between a Flush and the
//     engine's save re-sends that Flush's messages, which the stream drops
//     only within the duplicate window. The same holds after a purge.
//   - Sluice-Checkpoint holds every source stream of the sink, about 50
//     bytes each: a Kafka source with hundreds of partitions makes every
//     header that much larger.
//   - Consumers see the events in order per subject and across the
//     stream, but a source transaction is not atomic for them: a crash
//     can leave part of one in the stream, completed (not repeated) after
//     the restart.
//   - A pipeline file cannot give the sink a tls block yet (registered
//     kinds have no nested blocks): Config.TLS serves Go callers, and a
//     tls:// URL verifies against the system's roots. credentials_file is
//     read relative to the working directory, not the pipeline file.
//   - Forget (`sluice drop`) publishes one message without payload,
//     headers Sluice-Control: forget and an empty Sluice-Checkpoint, to
//     the subject the template renders for schema "_sluice" and table
//     "forget"; consumers of the whole stream should skip it.
//
// A Sink is used from one goroutine, as engine.Sink requires.
package nats
