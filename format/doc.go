// Package format encodes change events as JSON documents for sinks that
// write bytes (files, Kafka, webhooks) and decodes the native format for
// sources that read them.
//
// Two formats exist: "native" (LANGUAGE.md's native event format, one
// object per change) and "debezium" (Debezium's PostgreSQL connector
// envelope, so that consumers written for Debezium keep working). Both
// encode values without loss: Numeric as a JSON number literal (never
// through float64), JSON columns inline, []byte as base64, time.Time as
// RFC 3339 with nanoseconds in UTC. Marks are never encoded.
//
// Both formats also encode the messages of Meta, which sinks write when
// asked to (docs/operations.md (Resolved timestamps and transaction metadata)): resolved timestamps, transaction BEGIN and
// END events, and data events that carry their place in their source
// transaction. DecodeNative accepts (and ignores) a data event's
// "transaction" block; BEGIN, END and resolved lines are not change
// events and it refuses them.
//
// Formats are stateless values and safe for concurrent use.
package format
