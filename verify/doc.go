// Package verify is `sluice verify`: it proves that a database sink's
// target table holds what the pipeline should have put there, by
// comparing it with the source table as the pipeline's transforms see it.
//
// # What is compared
//
// For every table of every PostgreSQL source and every mysql or postgres
// sink downstream of it (a Pair), the source rows are read as snapshot
// events (the values the postgres source decodes, minus the columns its
// exclude keeps in PostgreSQL), routed through the compiled graph
// (engine.Compile with components.Registry, Graph.Route) exactly as a
// running pipeline routes its snapshot, and what reaches the sink is
// compared with the target table:
//
//   - mode "upsert", delete "hard": the target holds exactly the rows the
//     sink receives, matched by the sink's key; every column the sink
//     receives is compared; target columns it does not receive are not.
//   - delete "soft": target rows with __deleted = true are the deleted
//     ones: they count as absent.
//   - delete "skip": the target keeps rows the source deleted, so rows
//     only the target has are not differences.
//   - mode "update": the sink only writes the listed columns of rows that
//     exist, so only the key and those columns of rows both sides have
//     are compared; rows on one side only are not differences.
//   - mode "append" keeps a history, not the current rows: such pairs are
//     reported as skipped, as are non-database sinks, non-PostgreSQL
//     sources and a sink that writes several source tables into one
//     `table`.
//
// The key is the sink's `key`, else the source's primary key as the
// transforms rename it. The source is read in the order of the source
// columns the key comes from, so a key column that a transform computes
// (`set`) or masks cannot be verified; a transform that changes a key
// value is detected and reported as an error for the pair.
//
// # Algorithm
//
// Both tables are read in the same key order, in chunks of at most
// Options.Chunk keys (default 10,000): the source by
// `key > last ORDER BY key LIMIT chunk`, the target by
// `last < key <= the chunk's last source key LIMIT chunk`. Where the
// target has more rows in that range (rows only it has), the chunk ends
// at the target's last key instead and the source is read again up to
// there; once the source is exhausted the target is read on to its end,
// chunk by chunk, so rows after the last source key are counted too.
// Each row becomes a canonical encoding of its key and compared columns,
// hashed (SHA-256, 128 bits kept); a chunk's checksum is its row count
// and the sum of its row hashes. Equal chunks are done. For a chunk whose
// checksums differ, the rows' key hashes (not the rows) are compared to
// find missing, extra and different keys, and for up to Options.MaxDiffs
// of them per pair the differing row is read again on both sides (by key)
// to name each differing column with both values.
//
// Memory is bounded by one chunk: the source chunk's events while they
// are routed (transforms work on batches), then only keys and 16-byte
// hashes. Neither table is ever held whole; the report keeps, besides
// the counts, two keys per differing range and the target-only keys
// within them (see Ranges for a repair).
//
// The same order on both sides matters where collations differ: a key
// column whose collation does not sort by bytes is ordered and compared
// as COLLATE "C" in PostgreSQL and as BINARY in MySQL (the UTF-8 byte
// order, the same on both); such columns cannot use their index, so each
// chunk sorts the table, and a text-keyed table costs more to verify than
// one keyed by numbers, dates or binary-collated text.
//
// # Ranges for a repair
//
// Each chunk that still differs after the rechecks is recorded in
// Pair.Ranges as a key range of the source table (Range): its least and
// greatest key either side holds, as PostgreSQL's text of the source's
// primary-key columns (Pair.SourceKey, `id::text`), and the keys in it
// that only the target holds (to be deleted). Consecutive differing
// chunks make one range. `sluice verify --repair` hands them to the
// running pipeline as an incremental snapshot request
// (state.SnapshotRequest's Ranges and Absent), which copies exactly those
// ranges again.
//
// The bounds are ordered by the source database (its columns' types and
// collations, one query per differing chunk), because the postgres
// source reads a key range in that order: where a text key's collation
// does not sort by bytes, verify's byte-ordered chunk is spread out in
// the source's order, and its range spans every key of the chunk there
// (a superset, copied again harmlessly). A pair whose key is not the
// source's primary key, column for column in order (a sink `key` of
// other columns), gets no ranges: Pair.Unrepairable says why. The
// target-only keys of every differing chunk are kept (not bounded by
// Options.MaxDiffs), so a target holding many rows the source lacks makes
// a report that big.
//
// # Canonical values
//
// Values are normalised by the target column's type, so that what the
// two drivers return compares by value: numbers (integers, decimals,
// booleans as 1/0, doubles to 15 significant digits and single-precision
// floats to 6, which is what MySQL prints) as plain decimals; dates and
// timestamps as UTC microseconds; times of day without trailing zeros;
// JSON (and arrays, which MySQL keeps as JSON) by canonical value with
// sorted keys; bytes as hex; CHAR without trailing spaces; NULL distinct
// from every value.
//
// # A running pipeline
//
// Verifying while the pipeline runs compares a moving source with a
// target that lags it by the pipeline's latency. A chunk that differs is
// read again on both sides after Options.RecheckWait (default 2s), up to
// Options.Rechecks times (default 3), and only what still differs is
// reported: a change that had not yet reached the target when the chunk
// was first read is not a difference. A table that changes faster than
// the pipeline catches up within the rechecks is reported; run verify
// again, or with longer waits, before concluding.
//
// # Source values
//
// sources/postgres keeps its value decoder unexported; this package
// reads the columns that postgres.Describe reports (excluded columns
// removed) and decodes their text forms with the same session settings
// and the same Go types (see pgside.go), using pgx's array parsing.
// Arrays of enums or domains stay text, where the source would decode
// them to []any.
//
// Errors and reports never contain DSN passwords. Row values appear in
// reports, as the sink receives them (masked columns masked).
package verify
