// Package postgres is the `source "postgres"` block: a consistent initial
// snapshot of the declared tables followed by every committed change,
// read through a logical replication slot with the pgoutput plugin
// (github.com/jackc/pglogrepl, pgx v5).
//
// # Setup (Open, idempotent)
//
// Open checks wal_level and the REPLICATION attribute, expands "schema.*"
// (to the schema's tables and partitioned tables, not to partitions; see
// Tables created while running for what it publishes),
// checks every table exists and can be identified (a primary key, or
// REPLICA IDENTITY FULL), creates the publication or alters it to publish
// exactly the declared tables, with a PostgreSQL 15 column list wherever
// `exclude` removes columns (so they never leave the server), and with
// publish_via_partition_root = true (see Partitioned tables), and creates
// the slot if it is missing. Every problem a user can fix is one message
// naming the table, column, slot or publication and the fix; warnings
// (validate --live shows them too) are logged at start. The publication
// name is an identifier, case-sensitive, and passed quoted everywhere
// (publication = "MyPub" works).
//
// # Tables created while running
//
// "schema.*" publishes the schema itself (CREATE PUBLICATION ... FOR
// TABLES IN SCHEMA, PostgreSQL 15), so a table that a migration creates
// in it while the pipeline runs is published from its CREATE on: its
// first change brings a Relation message for a relation the decoder has
// not seen, which it describes from the catalog as it describes every
// relation (primary key, NOT NULL, defaults, generated columns, each
// type's TypeDef), and the table sinks create the target table
// (auto_create) before writing its first row. A partitioned table
// created so replicates under its root (publish_via_partition_root).
// "*.*" publishes every schema that exists at start except PostgreSQL's
// own (pg_catalog, information_schema, pg_toast, pg_temp_*); a schema
// created later is added at the next start (FOR ALL TABLES would cover
// it, but would also need a superuser and publish every table, with no
// way to leave one out). A list of tables ("public.users") stays a list
// (FOR TABLE): a table created next to them is not captured. Both can be
// mixed: TABLES IN SCHEMA for the patterns, TABLE for the named tables of
// other schemas. A publication that an earlier version created as a FOR
// TABLE list is altered (ALTER PUBLICATION ... SET) at start, and
// validate --live says so first.
//
// PostgreSQL refuses FOR TABLES IN SCHEMA before version 15, to a role
// that is not a superuser, and together with column lists: with
// `exclude`, a non-superuser or an older server, "schema.*" keeps the
// tables it finds at start (FOR TABLE), a warning at start and in
// validate --live says that tables created later are captured from the
// next start, when they are copied like tables added to `tables`.
//
// No copy is needed for a table created after the snapshot began: its
// CREATE and every change to it lie after the slot's start, so the
// stream carries all its rows, also when the CREATE and the first
// INSERTs are one transaction (pgoutput sends the Relation message
// before the first row). A table created while sluice was stopped is in
// the publication for every change decoded after its CREATE (pgoutput
// reads publication membership as of each change, and the schema was a
// member already), so the replay from the committed position brings its
// rows. Open therefore does not copy a table it finds in a schema the
// publication already published as a schema when the sinks' positions
// were committed (the state key "publication.schemas", saved at each
// start once the snapshot's progress lists its tables): copying it as
// well would send each row twice. A schema newly published (a new
// pattern, or the migration from a FOR TABLE list) has its tables that
// were never copied copied once, as before.
//
// REPLICA IDENTITY USING INDEX on an index other than the primary key is
// a warning: events are keyed by the primary key, but PostgreSQL sends
// the old row's index columns, and none at all when the index columns did
// not change, so an update of the primary key leaves the target's row
// under the old key. The fix is REPLICA IDENTITY FULL, or DEFAULT.
// (Keying such tables by the index instead would be exact, but would
// change the key of targets that exist.)
//
// # Partitioned tables
//
// A partitioned table replicates under its own name, snapshot and stream
// alike: the snapshot reads it (every partition's rows), and the
// publication publishes its partitions' changes as its own
// (publish_via_partition_root, set when the publication is created and
// turned on in an existing one that sluice may alter; one that it may not
// alter is an error when it lacks it and a partitioned table is
// captured). Partitions attached later are covered. An UPDATE that moves
// a row to another partition is executed by PostgreSQL as a delete from
// one partition and an insert into the other, and arrives as exactly that:
// a Delete (the old key) and an Insert of the whole new row (TOASTed
// values included), which every sink applies as it is. `exclude` on a
// partitioned table is a column list on it, which covers every partition.
//
// A partition captured together with its partitioned table (named, or by
// "schema.*" on another schema) is dropped from the tables with a
// warning: its rows are the partitioned table's, and capturing both would
// copy them twice into two targets. A partition captured without its
// partitioned table is an ordinary table of its own name.
//
// PostgreSQL logs a row's old values by the replica identity of the
// partition that holds it, and ALTER TABLE ... REPLICA IDENTITY on a
// partitioned table does not reach its partitions: a partitioned table
// with REPLICA IDENTITY FULL whose partitions are not FULL is refused
// (pgoutput would present their unlogged old values as NULL), with the
// ALTER TABLE for each partition as the fix.
//
// pgoutput reads the publication as it was at each change: when Open
// turns publish_via_partition_root on in an existing publication, the
// changes already waiting in the slot still name their partitions.
//
// Not replicated, by PostgreSQL's design: TRUNCATE of a single partition
// (pgoutput drops it under publish_via_partition_root; TRUNCATE the
// partitioned table, or DELETE), and DETACH or ATTACH PARTITION, which
// move rows out of or into the table without a change: the target keeps
// a detached partition's rows and lacks an attached one's.
//
// # Positions
//
// A streamed change has Position{Offset: commit LSN of its transaction,
// Index: its index inside the transaction}; the transaction ends with a
// Mark (Boundary) at Index math.MaxUint32. Snapshot rows have Offset =
// the slot's consistent point − 1 and Index = 0, 1, 2… across each
// reader's ranges in order and, within a range, primary-key order: reader
// 0's in the stream itself, reader n's in partition "#n" (a parallel
// stream: see Parallel snapshot). PostgreSQL only
// decodes transactions whose commit record starts at or after the
// consistent point, so every snapshot row sorts before every streamed
// change. Each snapshot row is a Boundary: sinks may commit after any.
//
// # Snapshot and handoff
//
// The slot is created with an exported snapshot, which a separate
// REPEATABLE READ transaction imports before anything else happens on the
// replication connection: the rows read are exactly the database at the
// consistent point, and streaming starts there, so writers can keep
// writing and nothing is lost or doubled. Tables are read in key order by
// one streamed query each (memory stays bounded), returned in chunks of
// at most 2048 rows (or 8 MB). Chunk n owns the indexes [2048n, 2048(n+1));
// a table starts at a fresh chunk. Before a chunk is returned, the text
// form of its rows' keys is written to the state (one durable write per
// chunk, in a ring of 256 records, so the state stays small whatever the
// table size); the progress shown by status (table, rows done, rows
// estimated; ReadProgress) is written every 16 chunks, at each table's
// end and when the snapshot is read, together with a reserved bound on
// the indexes handed out.
//
// # Parallel snapshot
//
// snapshot_workers readers (by default the number of CPUs, at least 2)
// read the snapshot at once, each in a REPEATABLE READ transaction on a
// connection of its own, all in one snapshot: reader 0 imports the
// slot's (or, resuming, takes a fresh one) and exports it with
// pg_export_snapshot to the others, holding it until the whole copy is
// read. Before the first row, tables of 2 MB or more with a primary key
// are split into key ranges, one per reader (more past a gigabyte a
// reader): the bounds are keys sampled with TABLESAMPLE SYSTEM, in the
// key's own order, at the quantiles (split.go), so no table is scanned
// twice. The ranges of all tables go to the readers, largest first to the
// least loaded, and are recorded in the progress (ReaderProgress.Ranges)
// so that a restart keeps them. Each reader numbers its rows in a stream
// of its own, with its own chunk records, reserved bound and last row, so
// each resumes after its own committed row exactly as a single reader
// does; a reader none of whose rows was committed reads its ranges again.
// The sinks see the readers' rows interleaved, in order within each
// stream. A sink that writes tables (engine.Laned) writes each parallel
// stream on a connection of its own, committing its rows with its
// position, and writes the changes streamed after the copy only once
// every lane has committed; other sinks write them in one order, as they
// come. The last row handed out (whichever reader's) is SnapshotLast.
//
// A snapshot that every reader read to its end (Emitted) and whose
// readers' last rows the sinks committed is over: a restart streams, whatever the tables hold
// by then.
//
// Tables added to `tables` after a snapshot are copied when the pipeline
// starts again, before the stream resumes, by a snapshot of those tables
// only (SnapshotProgress.Earlier lists the ones copied before). Its rows
// are in a partition of the source's stream of their own (Position
// Partition AddedPartition): the stream resumes from the slowest sink's
// position, and a copy numbered after that position would be skipped by
// every sink that had committed further; in its own partition, where no
// sink has committed anything of it, every sink takes every row, each
// exactly once, and a restart resumes the copy from the slowest sink's
// row in the partition (a sink that committed further skips what it has).
// A later copy takes Offset committed+1 and Indexes from the last
// snapshot's reserved bound, so it sorts after an earlier one. The read
// is a new transaction, later than the committed position: changes to the
// new tables in between are in the rows read and are streamed again after
// them, which keyed sinks apply idempotently. When a sink has committed
// nothing of the stream, every table is read again.
//
// An interrupted snapshot resumes after the exact row the sinks committed
// (the `from` position): Open maps its Index back to its table and key
// through the chunk record, and reads on from the next key in a new
// REPEATABLE READ transaction, numbering rows from the reserved bound, so
// no sink (one that committed further than `from` included) mistakes a
// new row for one it has. The new transaction sees a later state of the
// database than the consistent point, but the slot still holds every
// change since that point (nothing is confirmed to it during the
// snapshot), and the stream replays them afterwards, so each row ends in
// its latest state: a row the resumed read already shows in its new state
// receives changes it already has, which keyed sinks apply idempotently.
// A single sink receives no row twice. When nothing was committed, the
// table list changed, or the committed row's chunk record has been
// overwritten in the ring (the sinks lagged 256 chunks behind), every
// table is read again from its first row: nothing is lost, some rows
// arrive twice. Tables without a primary key are read in ctid order and
// resume by ctid (a row moved by an update after the consistent point
// may then arrive twice).
//
// # Incremental snapshots
//
// `sluice snapshot`, `sluice verify --repair` and snapshot =
// "incremental" copy tables while the stream goes on, by the watermark
// algorithm of Netflix's DBLog (as Debezium's incremental snapshots do):
// no long transaction, WAL released as the copy goes, streamed changes
// reaching the sinks during it. A request (engine.Resyncer, filed as a
// request file beside the state file) becomes one job per table (per key
// range for verify --repair), kept in the state (ResyncState, key
// "resync") before Resync returns; a chunk worker copies the jobs one
// after the other, each in chunks of at most 8192 rows (or 8 MB) in
// primary-key order (tables without a primary key are refused: a chunk
// is a key range):
//
//  1. It writes a low watermark (a transactional logical decoding message
//     of prefix "sluice_resync" naming the slot, the job and a nonce) and
//     waits until the stream has decoded it: every earlier high watermark
//     is then decoded too, so the job's progress (After, the last key
//     copied) is final.
//  2. It reads the next chunk, keys after After, in a REPEATABLE READ
//     transaction whose first statement notes pg_current_snapshot().
//  3. It hands the rows to the decoder and writes the high watermark,
//     which carries the chunk's range (Lo, Hi) and number.
//
// Between the two watermarks the decoder notes the keys of the table
// that streamed changes touch (old and new key of a key change; a
// TRUNCATE drops the whole chunk). At the high watermark it emits the
// chunk's rows but those keys, as Snapshot events at the high
// watermark's place in the stream (Offset its commit LSN, Index 0, 1, 2…,
// none a Boundary, then the transaction's Mark): a dropped key's chunk
// row is older than the change the stream carries, and every kept row is
// the table's state at that point of the stream. So no streamed change is
// overwritten by an older copy, and the rows are positions of the stream
// like any change: each sink's checkpoint stays exact, a sink commits a
// chunk whole or not at all, and an append-mode sink receives each row
// of a request once. Rows of a request for one sink (--sink) carry
// Event.Sink, which the engine routes to that sink only. Keys of
// Absent (verify --repair's rows only the target has) that the table
// lacks when the chunk is read become Delete events the same way.
//
// PostgreSQL makes a transaction visible after it writes its commit
// record, so in a narrow window a transaction can commit before the low
// watermark yet be invisible to the read: its change would be in neither
// the chunk nor the window. The decoder remembers the last 256
// transactions it decoded; when one of those that precede the low
// watermark was in progress for the read (pg_current_snapshot's list),
// the chunk is read again. A chunk read with columns the stream's
// relation lacks (an ALTER TABLE whose Relation message has not come) is
// described from the catalog as a new relation version; when the
// stream's relation changed inside the window, the chunk is read again.
//
// Progress moves when the decoder handles a job's next high watermark,
// and is saved there. After a kill -9 the stream replays from the
// slowest sink's position: a high watermark met again, whose rows this
// process does not hold, has its range read again (as the table is now:
// newer than the watermark, and the replayed stream brings every later
// change on top, so each row ends in its latest state), and sinks that
// committed it skip it by position. The worker resumes with the chunk
// after the last high watermark decoded. A predicate PostgreSQL refuses
// or a table dropped stops that job with its error (status shows it);
// anything else is retried.
//
// snapshot = "incremental" creates the slot without an exported
// snapshot and queues a job per table ("initial"); tables added to
// `tables` later get one at the next start, as for "initial", but those
// a schema pattern already captured (see late). After a lost slot with
// on_slot_lost = "resnapshot", Open queues every table again.
//
// # Streaming
//
// Begin/Commit give every event Tx{ID, CommitTime}; Relation messages are
// cached, and a table whose columns changed gets a new *change.Relation
// with a higher Version (versions restart at 1 when the source restarts);
// Insert, Update, Delete and Truncate become events. An unchanged TOASTed
// value ('u') is taken from the old row when PostgreSQL sent it (REPLICA
// IDENTITY FULL) and is otherwise absent from After: never NULL. Under
// REPLICA IDENTITY DEFAULT Before holds the key (the old key when an
// update changed it); under USING INDEX the index's columns (which then
// also key deletes); under FULL the whole old row, and Changed then
// lists exactly the columns whose value changed (under DEFAULT, every
// column sent except an unchanged key).
//
// Relations carry each column's Default (pg_get_expr of its DEFAULT, as
// PostgreSQL renders it: "'x'::text", "7", "now()") and list stored
// generated columns with Generated set and their expression in Default.
// The snapshot reads them from the catalog; a Relation message in the
// stream is completed by one catalog query: the primary key, generated
// columns (pgoutput never sends them: no event carries their value, the
// snapshot's included, and a generated column added mid-stream makes a
// new relation version), and the Default of columns new to the relation,
// as the catalog shows it when the message is decoded. Columns the
// previous version knew keep its NotNull and Default. A default changed
// later (ALTER COLUMN SET DEFAULT) is not a new version.
//
// Values: int64 (smallint, integer, bigint, oid), float64 (real, double),
// change.Numeric (numeric, exact), string (text, varchar, char, uuid,
// enums, time, timetz, interval and anything else in its text form),
// bool, time.Time in UTC to the microsecond (date, timestamp,
// timestamptz; ±infinity and BC dates stay strings), change.JSON (json,
// jsonb), []byte (bytea), []any (arrays, nested when multi-dimensional),
// domains as their base type, nil for NULL. Snapshot and stream decode
// the same text forms (DateStyle ISO, TimeZone UTC, bytea hex), so a row
// reads the same either way.
//
// # Acknowledgement, heartbeats, failures
//
// Ack confirms to the slot only what every sink committed, never what was
// merely received: a whole transaction confirms just past its commit LSN,
// so restart_lsn and WAL retention advance exactly as far as is safe.
// Standby status updates go out every second, also while a slow pipeline
// holds Read back. A heartbeat (pg_logical_emit_message) every `heartbeat`
// interval produces a transaction of its own whose Mark the sinks commit,
// so the slot advances while the captured tables are quiet (it keeps one
// connection, opened again after a failure). When every
// event handed out has been acknowledged, a keepalive's position is
// confirmed as well (no captured change lies before it): that also lets
// a PostgreSQL fast shutdown, which waits for the client to confirm what
// it was sent, finish. While sinks lag, such a shutdown waits for them.
// Such an idle confirmation past every acknowledged position is saved to
// the state (the bound, at most once a second) before it is sent, so that
// a slot whose confirmed_flush_lsn lies beyond both is known to be
// someone else's.
//
// # A lost slot
//
// Open, and each reconnect, recognise a slot that can no longer serve
// what follows the sinks' committed position: missing (dropped),
// invalidated (wal_status = lost, max_slot_wal_keep_size; while
// streaming, PostgreSQL's "cannot read from logical replication slot"),
// recreated (confirmed_flush_lsn beyond the bound), or on another server
// (IDENTIFY_SYSTEM's systemid differs from the one kept in the state).
// With on_slot_lost = "fail" (the default) that is a permanent *SlotLost
// (ErrSlotLost, engine.ErrPositionLost) naming the slot, the cause, the
// lost range and the recovery. With "resnapshot" the source drops the
// slot, creates it again and copies every table in the new slot's
// exported snapshot, numbered at its consistent point − 1 in the stream's
// own partition: beyond every position any sink committed, so every sink
// takes the whole copy, and after every event handed out before (a loss
// while streaming is handled by Read once the streamer has ended and its
// last batches are handed out). It is counted through
// engine.RecoveryObserver. Rows deleted while the slot was lost stay in
// upsert targets.
//
// A lost connection or a server restart reconnects with backoff (100ms
// doubling to 5s) and restarts replication at the transaction of the
// last event handed out, skipping what was handed out already. Conditions
// no retry can fix (wal_level, privileges, a dropped slot or publication,
// unknown tables) are engine.Permanent errors with the fix in the text.
// Errors never contain the DSN's password.
package postgres
