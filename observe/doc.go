// Package observe is how an operator sees a running sluice: the status
// model with lag that `sluice status`, `sluice wait` and the /status
// endpoint share (Build), Prometheus metrics fed by the engine's Observer
// hooks (Metrics), the HTTP server for /metrics, /healthz, /readyz and
// /status (Server), and the PostgreSQL side of a pipeline: WAL position,
// the slot's confirmed and retained WAL, and dropping the slot and the
// publication (Slot, DropSlot, DropPublication).
//
// # Lag
//
// A sink's lag in seconds is 0 when it has committed every change the
// engine has read for it (heartbeats and transaction-end marks commit
// too, so an idle, caught-up pipeline shows 0), and otherwise now minus
// the source commit time of the oldest change read but not committed
// (engine.SinkLag). It is known only while a pipeline runs: a stopped
// pipeline's status shows no lag in seconds, only the commit time of the
// last change each sink committed.
//
// For PostgreSQL sources the lag in bytes is measured on the server:
// per source, pg_current_wal_lsn() minus the slot's confirmed_flush_lsn,
// and the WAL the slot retains (minus restart_lsn); per sink, the current
// WAL position minus the commit LSN of the last transaction the sink
// committed. WAL written by other databases of the same server counts
// too, so bytes never quite reach 0 on a busy server.
//
// # Live figures
//
// A running pipeline holds its state file's lock; `sluice status` then
// reads the status file the engine rewrites beside it (STATE.status, at
// most a second old), which carries the live lag and snapshot rate.
package observe
