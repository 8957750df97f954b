package state

import (
	"fmt"
	"os"
	"time"
)

// Run is what a running pipeline reports about itself in the status
// file: its phase, the details of a retry or a pause, and the last error.
// After the process exits, the status file it left keeps the last Run it
// wrote (phase "stopped" or "failed"), which Inspect reports.
type Run struct {
	// Phase is the engine's phase: "starting", "running", "retrying",
	// "paused", "stopped" or "failed".
	Phase string    `json:"phase"`
	Since time.Time `json:"since"`
	// PID is the process running the pipeline.
	PID int `json:"pid"`
	// Attempt and NextRetry are set while retrying: the retry's number
	// (1-based) and when it reopens.
	Attempt   int       `json:"attempt,omitempty"`
	NextRetry time.Time `json:"next_retry,omitzero"`
	// Paused is the cause of a pause (phase "paused").
	Paused *Paused `json:"paused,omitempty"`
	// LastError is the last error that ended an attempt in this process.
	LastError *LastError `json:"last_error,omitempty"`
}

// Paused is why a pipeline is paused: the event a stage could not
// process (Stage, Table and Position empty when the pause has no single
// event) and the error.
type Paused struct {
	Stage    string `json:"stage,omitempty"`
	Table    string `json:"table,omitempty"`
	Position string `json:"position,omitempty"`
	Error    string `json:"error"`
}

// LastError is an error that ended an attempt. Errors are redacted by the
// components that return them: no secrets.
type LastError struct {
	Time  time.Time `json:"time"`
	Stage string    `json:"stage,omitempty"`
	Error string    `json:"error"`
}

// KafkaPartition is a Kafka source partition's consumer-group lag, as the
// running source last saw it.
type KafkaPartition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// HighWatermark is the partition's end (the last stable offset under
	// read_committed) at the source's last fetch.
	HighWatermark int64 `json:"high_watermark"`
	// Committed is the next offset after what every sink has made durable.
	Committed int64 `json:"committed"`
	// Lag is HighWatermark - Committed: records not yet durable in every
	// sink (read or not).
	Lag int64 `json:"lag"`
}

// UpdateRun changes the Run the status file reports. Called by the
// engine while it runs.
func (s *Store) UpdateRun(fn func(*Run)) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live.run.PID == 0 {
		s.live.run.PID = os.Getpid()
	}
	fn(&s.live.run)
	s.live.hasRun = true
	s.dirty.Store(true)
}

// SetKafkaLag records, for the status file, a Kafka source's lag per
// partition (SourceStatus.Kafka).
func (s *Store) SetKafkaLag(source string, parts []KafkaPartition) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live.kafka == nil {
		s.live.kafka = map[string][]KafkaPartition{}
	}
	s.live.kafka[source] = append([]KafkaPartition(nil), parts...)
	s.dirty.Store(true)
}

// WriteStatus writes the status file now rather than within the next
// second (the engine calls it on a phase change, so that `sluice status`
// sees a pause at once).
func (s *Store) WriteStatus() { s.writeStatus() }

func resumePath(path string) string { return path + ".resume" }

// RequestResume asks the pipeline running on the state file at path to
// resume from a pause: it creates the request file PATH + ".resume",
// which the paused process takes (removes) within a fraction of a second.
func RequestResume(path string) error {
	if err := os.WriteFile(resumePath(path), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return fmt.Errorf("resume request: %w", err)
	}
	return nil
}

// ResumePending reports whether a resume request file is still waiting
// to be taken.
func ResumePending(path string) bool {
	_, err := os.Stat(resumePath(path))
	return err == nil
}

// CancelResume removes a resume request that was not taken.
func CancelResume(path string) { _ = os.Remove(resumePath(path)) }

// TakeResume removes the store's resume request file and reports whether
// there was one.
func (s *Store) TakeResume() bool {
	return os.Remove(resumePath(s.path)) == nil
}
