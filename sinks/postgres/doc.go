// Package postgres is the `sink "postgres"` of pipeline files: PostgreSQL
// tables kept equal to their sources exactly once, through pgx v5. The
// semantics (modes, deletes, auto_create, schema changes, checkpoints,
// rejects) are sqltable's; this package supplies PostgreSQL's SQL and its
// type mapping (docs/type-mapping.md): a table it creates keeps the
// source's exact types, with the domains, enums and ranges they need
// created first. DDL runs inside the sink's transaction and commits with
// the rows, except CREATE TYPE/DOMAIN and ALTER TYPE ... ADD VALUE, which
// commit on their own connection first (a transaction cannot use an enum
// label added by itself).
//
// Values are sent in PostgreSQL's text form (bytea excepted), so the
// server parses them for the column's type: a value the column cannot take
// is a rejected row rather than a client-side encoding failure. Upserts
// and appends pass each column as one array parameter (INSERT ... SELECT
// FROM unnest(...)), so a statement's text is the same for every batch
// and the server parses and plans it once (BenchmarkUpsert medians on a
// loaded 2-core machine: 63k rows/s with 500-row VALUES lists of 2,500
// placeholders, 136k with unnest). COPY into a temporary staging table
// and one INSERT ... SELECT ... ON CONFLICT per batch was tried and lost
// in the same run (unnest 1.4-1.8× faster with 500-row statements,
// 2.7-3.5× with 100-row ones: two round trips instead of one).
//
// Known limit: the sink takes a savepoint per batch_size events (to find
// a rejected row), and each is a subtransaction. A source transaction of
// more than 64 × batch_size rows overflows PostgreSQL's per-backend
// subtransaction cache, which slows other sessions' snapshots until the
// sink commits.
package postgres
