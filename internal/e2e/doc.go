// Package e2e proves, against real PostgreSQL and MariaDB servers and the
// built sluice binary, what the product promises its users end to end:
//
//   - kill -9 at any moment and restart: a MariaDB or PostgreSQL target
//     ends equal to the source row by row (an ordered checksum over every
//     column), and an append-mode sink holds every source change exactly
//     once; afterwards `sluice status --json` shows the checkpoints the
//     targets hold (TestChaos); beside it, each in a pipeline of its own
//     killed at the same moments, the fidelity cases (TOASTed text and
//     jsonb, bytea, uuid, arrays, wide numerics, timestamptz, a
//     partitioned table, key updates leaving TOAST values unchanged, a
//     pre-created target with NOT NULL columns, TRUNCATE, ADD COLUMN with
//     a default, integer → bigint) end with the target equal to the
//     source column by column, as a checker sharing no code with sluice
//     compares them (fidelity_checker_test.go); SIGKILLs during the
//     initial snapshot of a 200,000-row table and during streaming leave a
//     file sink with every row exactly once
//     (TestSnapshotAndStreamSurviveSIGKILL);
//   - a graceful stop confirms to the replication slot what the sinks
//     committed, so PostgreSQL may recycle that WAL (TestStopConfirmsSlot);
//   - no half-applied source transaction is ever visible in the target: a
//     reader polling it during the run always sees the invariant the source
//     transactions keep (TestAtomicVisibility);
//   - a target that goes away for ten seconds and comes back is caught up
//     with by the running pipeline on its own (TestTargetOutage);
//   - the four canonical pipelines of the language contract run as written
//     against real databases and a real HTTP endpoint (TestCanonical*);
//   - a row the target refuses is dead-lettered, listed and replayed with
//     the sluice dlq commands, never silently dropped (TestDeadLetterReplay);
//     under on_error = "fail" the run exits non-zero naming sink, table and
//     position, under "pause" and "retry" it holds its position until the
//     target is fixed (TestRejectedRowPolicies).
//
// The package holds only tests. TestMain builds the binary once and starts
// a private PostgreSQL with wal_level=logical (internal/pgtest) and finds
// or starts MariaDB (internal/mariadbtest); every test makes its own
// databases and drops them. A missing database server fails the package,
// or skips it with SLUICE_SKIP_DB=1 (never under CI=true; see dbskip).
package e2e
