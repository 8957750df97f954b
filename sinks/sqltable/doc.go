// Package sqltable is the engine of the SQL table sinks (sinks/mysql,
// sinks/postgres): what they share — batching by table, statement
// planning, auto_create and schema changes, checkpoints, rejects — with a
// Dialect for what differs.
//
// # Transactions and checkpoints
//
// Write applies events to one open target transaction, in statements of
// up to MaxStatementRows rows; a big source transaction arrives over many
// Write calls and is applied as it comes, never held in memory. Flush
// writes the sink's row of sluice_checkpoints (pipeline, sink, checkpoint
// JSON, updated_at) in the same transaction and commits, so the rows and
// the position they cover become visible together; Open reads the
// checkpoint back (the target is the truth), and Committed re-reads it
// at any time (engine.CommittedReader). When the checkpoint has
// partitioned streams (a Kafka source's), Flush merges per stream: it
// writes only the streams whose position it moved and keeps the others
// as the row holds them, under a row lock, so several processes sharing
// a Kafka source's partitions (one consumer group) share the row without
// overwriting each other's partitions. Close without Flush rolls
// back. Marks write nothing; they count through the checkpoint the engine
// passes to Flush.
//
// # Statements
//
// Consecutive row changes of one table with the same column set and
// distinct keys go into one multi-row statement: an upsert (INSERT ... ON
// DUPLICATE KEY UPDATE / ON CONFLICT DO UPDATE), a plain INSERT (append
// mode), DELETE ... WHERE key IN (...) or UPDATE ... FROM the rows
// (update mode). Where the dialect can (PostgreSQL), the rows travel as
// one array parameter per column (unnest), so a statement's text is the
// same for every batch. A repeated key, another table,
// another column set or another kind of change ends the statement, so the
// changes of each key apply in source order. Columns absent from an
// event's After (unchanged TOAST values, columns a transform left out) are
// not in its statement, so the target keeps their values.
//
//   - mode "upsert" (default): inserts, snapshots and updates upsert
//     After; a primary-key update (Before's key differs from After's)
//     first deletes the old key as the delete option says.
//   - mode "append": every change is a new row with __op, __position
//     (OFFSET.INDEX, partition@ prefixed when partitioned) and
//     __commit_time (UTC); deletes record Before; delete = "skip" drops
//     them. Append tables get no primary key.
//   - mode "update": only the listed columns present in After are
//     written, to the existing row with After's key, and only where one
//     differs (<=> / IS DISTINCT FROM), so a pipeline may write back into
//     the table it reads without feeding on its own writes. Rows of one
//     column set go into one UPDATE joined to a derived table of the
//     batch's rows; deletes and rows missing from the target change
//     nothing.
//   - delete "hard" removes the row, "soft" upserts Before with
//     __deleted = true (other writes set it false); a Before that holds
//     only the key (default replica identity) marks the stored row and
//     creates none; "skip" ignores deletes.
//   - rows that lack columns of the source table (an unchanged TOASTed
//     value is absent from After) are never INSERTed with the columns
//     they lack, which a NOT NULL column would refuse: they update the
//     stored row, and only a row the target lacks is inserted with what
//     it has. A primary-key update of such a row first copies the stored
//     row to the new key (INSERT ... SELECT), so the columns it lacks
//     keep their values.
//
// Truncate events follow the truncate option. "apply" (default) empties
// the target table in the open transaction with a DELETE, so a reader of
// the target sees the rows until the source transaction's changes commit
// together (MySQL's TRUNCATE TABLE commits on its own; PostgreSQL's locks
// readers out); with delete "soft" every row gets __deleted = true; in
// mode "append" the truncate is a row (its op and position, no columns);
// mode "update" ignores it. "skip" ignores truncates, "fail" stops the
// pipeline with a permanent error naming the table. A truncate of a table
// the target lacks changes nothing. The CASCADE and RESTART IDENTITY
// options of the source's TRUNCATE are not carried: every published table
// a cascade empties arrives as its own truncate.
//
// # Tables
//
// The target table is `table` or the source table's name (in the DSN's
// database or the connection's current schema); each source table has its
// own unless `table` is set. The key is `key`, else the source's primary
// key (Relation key flags, else Event.Key). A missing table is created
// when auto_create is set (not in mode "update"), from the first event's
// columns typed by the source schema as docs/type-mapping.md says (by the
// Go value when the source sends no schema); the key becomes the primary
// key, NOT NULL and constant DEFAULTs are kept, and a dialect that
// implements SourceTypes maps columns by their whole definition
// (change.Column.TypeDef) and creates the types they need first
// (PostgreSQL), outside the transaction. A new Relation version brings
// the enum labels the source added, which the target gets before the
// first row that uses one (syncLabels). PlanDDL says all this before it
// happens, changing nothing (`sluice plan`). A column the target lacks is added (ALTER TABLE ... ADD COLUMN)
// when schema_changes = "add_columns" (default), else the sink stops with
// a permanent error naming table and column. Where DDL is not
// transactional (MySQL), an ALTER of a table the open transaction wrote
// rolls that transaction back and Write returns a retriable error, so the
// engine replays from the checkpoint into the altered table: MySQL's
// implicit commit never exposes half a source transaction.
//
// # Errors
//
// Write returns a *engine.RejectError for the one event the target
// refuses (a value too long or out of range, a constraint violation, a
// value the column's type cannot take). On PostgreSQL, where a failed
// statement aborts the transaction, events are applied under a savepoint
// taken every batch_size events (across Write calls, which keeps the
// events since it in memory: batch_size at most); when a multi-row
// statement fails with a data error the transaction is rolled back to it
// and those events are replayed one at a time, each under its own
// savepoint, to find the event. On MySQL a failed
// statement undoes only itself, so there is no savepoint on the way and
// only the failed statement's events are replayed. Either way the events
// before the rejected one stay applied, it and those after it are not, and
// the transaction stays usable: the engine may Write the rest
// (dead_letter) or Close.
// Bad configuration (a missing table without auto_create, a missing key
// column, a key without unique index, a missing privilege) is
// engine.Permanent and says what to change. Everything else (lost
// connections, restarts, deadlocks, serialization failures) is a plain
// error: the transaction is lost and the engine reopens the sink and
// replays from the checkpoint. The DSN's password is removed from every
// error.
//
// A Sink is used from one goroutine, as engine.Sink says.
package sqltable
