// Package kafka is the `source "kafka"` block: it consumes change events
// from Kafka topics as a member of a consumer group.
//
// Records hold Debezium envelopes (format "debezium", as Debezium and
// Kafka Connect's JSON converter write them, with or without the
// schema/payload wrapper) or sluice's native events (format "native").
// Tombstones (null values) and Debezium message events carry no row: they
// become Marks, so checkpoints still advance past them.
//
// Every record is its own source transaction: the event is a Boundary
// and its Position is {Source: block name, Partition: "topic/partition",
// Offset: record offset}, one Stream per partition. Order is kept per
// partition, and so per key.
//
// Where to start: on partition assignment the source resumes after the
// position Open was given for that partition (what the sinks committed
// in their own targets), and otherwise at the group's committed offset,
// which Ack advances only once every sink has the events. When a
// partition is revoked, the source waits (up to the rebalance timeout)
// until what it delivered of it is acknowledged and commits that, so the
// next owner starts where this process stopped. Consumption is
// read_committed, so records of aborted Kafka transactions never appear.
//
// Under `sluice run --instance NAME` the source is a static member of the
// group (group.instance.id = NAME): a process killed and restarted under
// the same name takes its partitions back as soon as it rejoins, with no
// rebalance; one that does not come back gives them up when the group's
// session timeout expires it.
package kafka
