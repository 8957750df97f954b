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
// A Sink is used from one goroutine, as engine.Sink requires. Memory is
// bounded by the client's buffer of unacknowledged records: Write blocks
// when it is full.
package kafka
