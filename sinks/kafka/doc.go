// Package kafka is the `sink "kafka"` block: it produces each change event
// as one record to a topic per table.
//
// The record key is the event's primary key as a JSON object ({"id":1}),
// so every change of one row lands on the same partition and keeps its
// order; the value is the event in the sink's format (Debezium's envelope
// by default, or sluice's native JSON); headers carry the source position
// (sluice.source, sluice.partition, sluice.position). With schemas the
// Debezium value is wrapped with its Kafka Connect schema, as the JSON
// converter writes it with schemas.enable=true. With tombstones a
// record with a null value follows each delete, so compacted topics
// forget the key. Topics that do not exist are created with the block's
// partitions and replication factor.
//
// With exactly_once the sink uses a transactional producer: the records
// written between two Flushes and the checkpoint they bring the sink to
// are committed in one Kafka transaction, the checkpoint as one record per
// source stream that moved, keyed "<pipeline>/<sink>/<stream>", in the
// compacted topic sluice_checkpoints. Open reads the last committed
// positions back (read_committed), so after a crash the engine replays
// exactly what the aborted transaction held, and a consumer with
// isolation.level=read_committed sees each change once. Because each
// process writes only the streams it moves, processes sharing a Kafka
// source's partitions do not overwrite each other's positions. The
// transactional id is "sluice.<pipeline>.<sink>", plus "."+$SLUICE_INSTANCE
// when set: a restarted process fences the one it replaces. Without exactly_once the producer is
// idempotent, delivery is at least once, and Flush returns the checkpoint
// as bytes for the engine's state file.
//
// With transactions = true, each source transaction's events are framed
// by a BEGIN and an END record (with its counts) on transactions_topic,
// keyed {"id":"<txid>:<offset>"}, and each event's value carries its
// transaction block (package txmeta numbers them). With resolved = "10s",
// at most once per interval a Flush produces a resolved record (no key,
// header sluice.resolved) to every partition of every topic the sink
// writes, the transactions topic included, so a consumer of any one
// partition sees it: every change committed at or before its T is in an
// earlier record of that partition, or of another partition that has the
// same resolved record after it. With exactly_once the resolved records
// are part of the Kafka transaction that commits what they cover: a
// read_committed consumer sees them and the changes together, or, after
// an abort, neither. Without it they are produced once those changes are
// acknowledged. The last T and the topics written are kept in the record
// "<pipeline>/<sink>#resolved" of CheckpointTopic (in the transaction,
// with exactly_once; acknowledged before any resolved record otherwise),
// so a restarted sink never sends a lower T, and sends resolved records
// to every topic it wrote before, also while the source is idle.
//
// A Sink is used from one goroutine, as engine.Sink requires. Memory is
// bounded by the client's buffer of unacknowledged records: Write blocks
// when it is full.
package kafka
