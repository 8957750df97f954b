// Package live runs the `test` blocks of a pipeline file against the real
// databases its source and sinks name: `sluice test --live`. It speaks
// pipelinetest's test language and fills its report: each test's live
// Outcome is judged by pipelinetest.Judge, as the in-memory one is.
//
// # A live test
//
// For each test the session makes scratch copies of what the test
// touches, runs the pipeline's real components on them, and removes them
// all afterwards, on failure too:
//
//   - A postgres source: each table an input names is created in a
//     scratch schema of the source database, one per schema the inputs
//     name, as `CREATE TABLE ... (LIKE table INCLUDING ALL)` of the real
//     table (defaults, constraints, indexes, identity and generated
//     columns; its replica identity is copied too) or, where the database
//     has no such table, from the inputs: a column per column they give
//     (bigint, numeric, boolean, text or jsonb by their values) plus the
//     columns the source excludes, keyed like the in-memory run keys it
//     (the downstream sink's key, else id). The source reads them through
//     a scratch publication and slot, and its events are renamed back to
//     the real schema, so transforms and sinks see the tables the inputs
//     name. Inputs with op "snapshot" at the start of the test are
//     inserted before the pipeline starts (the source's initial snapshot
//     reads them); every other input is one SQL statement in a
//     transaction of its own, in order, after the source has opened: an
//     insert INSERTs After, an update UPDATEs the row Before locates
//     (every column Before gives must match; the key of After when it
//     gives no Before) to After, so a key change moves the row, a delete
//     DELETEs the row Before locates, a truncate TRUNCATEs. A statement
//     that changes no row fails the test: a real source would deliver
//     nothing for it.
//   - A file source reads the inputs from a scratch file, one native
//     event per line, as the in-memory run completes them.
//   - A kafka source is not run: its inputs are delivered as the
//     in-memory run delivers them (a scratch topic would need a broker of
//     the test's own).
//   - A mysql sink writes into a scratch database on its server, a
//     postgres sink into a scratch schema of its database (search_path),
//     created and dropped by the session. A target table the real
//     database has is created there with its real DDL first (SHOW CREATE
//     TABLE, LIKE ... INCLUDING ALL), so its collations, types and keys
//     are the real ones; otherwise the sink creates it (auto_create) as
//     it would. A postgres sink that writes back into the source's own
//     table (same dsn) writes into the source's scratch table.
//   - A file sink writes to a scratch file.
//   - Kafka and webhook sinks are not run: what they receive is recorded
//     and checked as in memory (writing would reach real brokers and
//     receivers).
//
// After the inputs, each postgres source's database writes a fence (a
// logical decoding message in a transaction of its own); the test ends
// once every sink has committed past each fence and past the last event
// of every other source, or fails after Options.Timeout. Then
// `expect_table` is compared with the scratch target table as the target
// renders it (read back and typed by its column types: MySQL's
// tinyint(1) as a boolean, decimals exactly, JSON by content), keyed by
// the sink's key, else the table's primary key; `expect` with the events
// each sink committed. Only the events of the test's own inputs count:
// the changes a sink writes back into its source table come round again
// as changes of their own, which the note of the run counts.
//
// # Scratch names and leftovers
//
// Every scratch object is named sluice_scratch_<pid>_<tag>_<n>_<what>: the
// session's process id and a random tag, the test's number in the
// session, and the source or sink it belongs to. A session holds a lock
// named after its pid and tag on every server it touches, for as long as
// it runs (pg_advisory_lock in each PostgreSQL database, GET_LOCK on each
// MySQL server); a killed session's connections close and its locks go
// with them. When a session first touches a server it looks for objects
// with the prefix (schemas, publications and replication slots of the
// database; databases of the MySQL server) whose session's lock is free,
// removes them and reports them through Options.Log, so the leftovers of
// a run killed with -9 are gone after the next run.
//
// The session needs what running the pipeline needs, and also CREATE on
// the source and postgres sink databases (scratch schemas) and CREATE and
// DROP of databases on MySQL servers.
package live
