package engine

import (
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Observer receives the engine's measurements as they happen: the hooks
// behind sluice's Prometheus metrics (package observe). The engine calls
// them from its stage goroutines, concurrently; they must be cheap and
// must not block. RunOptions.Observer nil means none.
type Observer interface {
	// Read: a source handed on a batch of n events, snapshot of them rows
	// of an initial snapshot.
	Read(source string, n, snapshot int)
	// Written: a sink was handed n events (not yet durable).
	Written(sink string, n int)
	// Flushed: a sink made n events durable in one Flush that took took.
	Flushed(sink string, n int, took time.Duration)
	// Lag: a sink's lag changed. See SinkLag.
	Lag(sink string, l SinkLag)
	// Failed: an attempt ended with err in stage ("source.NAME",
	// "sink.NAME", "transform.NAME" or "checkpoint").
	Failed(stage string, err error)
	// DeadLettered: an event was set aside in stage (on_error =
	// "dead_letter").
	DeadLettered(stage string)
	// Restarted: the engine is reopening everything from the checkpoints
	// (after a transient error or a dead-lettered event).
	Restarted()
	// Phase: the run moved to phase p.
	Phase(p Phase)
}

// RecoveryObserver is implemented by Observers that count a source's
// recoveries from a lost position: a PostgreSQL source with on_slot_lost
// = "resnapshot" calls Recovered(source) each time it recreates its lost
// replication slot and copies its tables again (observe's
// sluice_slot_recoveries_total). Optional, so that adding it breaks no
// Observer.
type RecoveryObserver interface {
	Recovered(source string)
}

// Recovered tells obs, if it is a RecoveryObserver, that source recovered.
func Recovered(obs Observer, source string) {
	if ro, ok := obs.(RecoveryObserver); ok {
		ro.Recovered(source)
	}
}

// PartitionLag is a Kafka source partition's consumer-group lag.
type PartitionLag struct {
	Topic     string
	Partition int32
	// HighWatermark is the partition's end at the source's last fetch
	// (the last stable offset, as the source reads committed records).
	HighWatermark int64
	// Committed is the next offset after what every sink downstream has
	// made durable (the offset the source commits to its group).
	Committed int64
}

// Lag is HighWatermark - Committed, or 0.
func (p PartitionLag) Lag() int64 { return max(p.HighWatermark-p.Committed, 0) }

// SourceLagObserver is implemented by Observers that take a Kafka
// source's consumer-group lag: the source calls SourceLag(source, parts)
// with every partition it owns, after each fetch and acknowledgement.
// The engine's own Observer (the one Build carries) implements it and
// puts the lag in the status file; observe's Metrics exports it as
// sluice_source_kafka_lag_records. Optional, so that adding it breaks no
// Observer.
type SourceLagObserver interface {
	SourceLag(source string, parts []PartitionLag)
}

// ReportSourceLag tells obs, if it is a SourceLagObserver, a source's lag
// per partition. parts is not kept.
func ReportSourceLag(obs Observer, source string, parts []PartitionLag) {
	if so, ok := obs.(SourceLagObserver); ok {
		so.SourceLag(source, parts)
	}
}

// SinkLag is how far a sink is behind its sources.
type SinkLag struct {
	// Committed is the sink's last committed checkpoint.
	Committed change.Checkpoint
	// CommitTime is the source commit time of the last change it
	// committed (zero when unknown).
	CommitTime time.Time
	// BehindSince is the source commit time of the oldest change the
	// engine has read for this sink and the sink has not committed (the
	// time the engine read it, for changes without a commit time, such as
	// snapshot rows); zero when the sink has committed everything read.
	// The lag in seconds is now - BehindSince, or 0: an idle, caught-up
	// pipeline has lag 0.
	BehindSince time.Time
}

// Seconds returns the lag at now in seconds: 0 when caught up.
func (l SinkLag) Seconds(now time.Time) float64 {
	if l.BehindSince.IsZero() {
		return 0
	}
	return max(now.Sub(l.BehindSince).Seconds(), 0)
}

// Phase is where a run is: what /readyz reports.
type Phase int

const (
	// PhaseStarting: opening the state file, sinks and sources.
	PhaseStarting Phase = iota
	// PhaseRunning: every source and sink is open and reading.
	PhaseRunning
	// PhaseRetrying: waiting to reopen after a transient error.
	PhaseRetrying
	// PhasePaused: paused by on_error; nothing is read until resumed
	// (RunOptions.Resume, `sluice resume`) or restarted.
	PhasePaused
	// PhaseStopped: Run has returned (stopped, finished or cancelled).
	PhaseStopped
	// PhaseFailed: Run has returned an error other than a stop while
	// paused.
	PhaseFailed
)

var phaseNames = [...]string{"starting", "running", "retrying", "paused", "stopped", "failed"}

func (p Phase) String() string {
	if int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return "unknown"
}

// nopObserver is the Observer used when RunOptions.Observer is nil.
type nopObserver struct{}

func (nopObserver) Read(string, int, int)              {}
func (nopObserver) Written(string, int)                {}
func (nopObserver) Flushed(string, int, time.Duration) {}
func (nopObserver) Lag(string, SinkLag)                {}
func (nopObserver) Failed(string, error)               {}
func (nopObserver) DeadLettered(string)                {}
func (nopObserver) Restarted()                         {}
func (nopObserver) Phase(Phase)                        {}
