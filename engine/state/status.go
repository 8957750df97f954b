package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sluice-cdc/sluice/engine/change"
)

// Status is what `sluice status` shows.
type Status struct {
	Path string `json:"path"`
	// Running reports that a pipeline holds the file; the figures then
	// come from its status file and may be up to a second old.
	Running bool `json:"running"`
	// Sources maps each source to the checkpoint last acknowledged to it.
	Sources map[string]SourceStatus `json:"sources"`
	// Sinks maps each sink to the checkpoint it last committed.
	Sinks       map[string]SinkStatus `json:"sinks"`
	DeadLetters int                   `json:"dead_letters"`
	Updated     time.Time             `json:"updated"`
	// Run is the running pipeline's phase and last error (status file
	// only); when no pipeline runs, the last one the status file kept
	// (its phase then "stopped" or "failed"), nil if there is none.
	Run *Run `json:"run,omitempty"`
}

// SourceStatus is one source's acknowledged position and progress.
type SourceStatus struct {
	Acked change.Checkpoint `json:"acked"`
	Time  time.Time         `json:"time"`
	// Progress is the value the source keeps under ProgressKey in its
	// corner (the PostgreSQL source's snapshot progress), as stored.
	Progress json.RawMessage `json:"progress,omitempty"`
	// Resync is the value the source keeps under ResyncKey: the
	// PostgreSQL source's re-copies (incremental snapshots), as stored.
	Resync json.RawMessage `json:"resync,omitempty"`
	// SnapshotRows and SnapshotSince are live (status file only): the
	// snapshot rows the running process has read and when it read the
	// first, for a rate and an ETA.
	SnapshotRows  int64     `json:"snapshot_rows,omitempty"`
	SnapshotSince time.Time `json:"snapshot_since,omitzero"`
	// Kafka is, for a Kafka source, its partitions' consumer-group lag as
	// the running source last saw it (status file only).
	Kafka []KafkaPartition `json:"kafka,omitempty"`
}

// SinkStatus is one sink's committed position.
type SinkStatus struct {
	Checkpoint change.Checkpoint `json:"checkpoint"`
	Time       time.Time         `json:"time"`
	// CommitTime is the source commit time of the last committed change.
	CommitTime time.Time `json:"commit_time,omitzero"`
	// Live reports that the fields below come from the running process.
	Live bool `json:"live,omitempty"`
	// BehindSince is the source commit time (or, where the source has
	// none, the time it was read) of the oldest change the running
	// pipeline has read for this sink and the sink has not committed;
	// zero when the sink has committed everything read: lag is
	// now - BehindSince, or 0.
	BehindSince time.Time `json:"behind_since,omitzero"`
}

// ProgressKey is the corner key whose value Status reports as a source's
// Progress.
const ProgressKey = "snapshot"

// ResyncKey is the corner key whose value Status reports as a source's
// Resync.
const ResyncKey = "resync"

// Status reads the store's status.
func (s *Store) Status() (Status, error) {
	var st Status
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		st, err = readStatus(tx)
		return err
	})
	st.Path = s.path
	s.addLive(&st)
	return st, err
}

func readStatus(tx *bolt.Tx) (Status, error) {
	st := Status{Sources: map[string]SourceStatus{}, Sinks: map[string]SinkStatus{}, Updated: time.Now().UTC()}
	if b := tx.Bucket(bucketSinks); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var r sinkRecord
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("sink %q: %w", k, err)
			}
			st.Sinks[string(k)] = SinkStatus{Checkpoint: r.Checkpoint, Time: r.Time, CommitTime: r.CommitTime}
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	if b := tx.Bucket(bucketSources); b != nil {
		err := b.ForEach(func(k, v []byte) error {
			var r sourceRecord
			if err := decodeRecord(v, &r); err != nil {
				return fmt.Errorf("source %q: %w", k, err)
			}
			st.Sources[string(k)] = SourceStatus{Acked: r.Acked, Time: r.Time}
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	if b := tx.Bucket(bucketCorners); b != nil {
		err := b.ForEach(func(k, _ []byte) error {
			name, ok := strings.CutPrefix(string(k), "source/")
			c := b.Bucket(k)
			if !ok || c == nil {
				return nil
			}
			src := st.Sources[name]
			if v := c.Get([]byte(ProgressKey)); v != nil {
				src.Progress = append(json.RawMessage{}, v...)
			}
			if v := c.Get([]byte(ResyncKey)); v != nil {
				src.Resync = append(json.RawMessage{}, v...)
			}
			if src.Progress != nil || src.Resync != nil {
				st.Sources[name] = src
			}
			return nil
		})
		if err != nil {
			return st, err
		}
	}
	if tx.Bucket(bucketMeta) != nil {
		st.DeadLetters = countLetters(tx)
	}
	return st, nil
}

func statusPath(path string) string { return path + ".status" }

// writeStatus rewrites the status file atomically (by rename). Failing to
// write it only makes `sluice status` staler, so errors are dropped.
func (s *Store) writeStatus() {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.Status()
	if err != nil {
		return
	}
	b, err := json.Marshal(st)
	if err != nil {
		return
	}
	tmp := statusPath(s.path) + ".tmp"
	if os.WriteFile(tmp, b, 0o644) == nil {
		_ = os.Rename(tmp, statusPath(s.path))
	}
}

// Inspect reads a state file's status without changing it. If a pipeline
// holds the file, it reads the status file that pipeline keeps beside it
// and sets Running. A missing file is reported as such (wrapping
// os.ErrNotExist): the pipeline has not run yet.
func Inspect(path string) (Status, error) {
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Status{}, fmt.Errorf("no state file at %s (has the pipeline run yet?): %w", path, os.ErrNotExist)
		}
		return Status{}, err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: lockWait})
	if errors.Is(err, berrors.ErrTimeout) {
		return StatusFile(path)
	}
	if err != nil {
		return Status{}, openError(path, err)
	}
	defer db.Close()
	var st Status
	err = db.View(func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			if err := checkVersion(m, false); err != nil {
				return err
			}
		}
		st, err = readStatus(tx)
		return err
	})
	st.Path = path
	if err == nil {
		st.Run = lastRun(path)
	}
	return st, err
}

// lastRun is the Run in the status file a pipeline left behind when it
// stopped, nil if there is none. A run that did not get to write its
// last phase (killed) said it was running: it is reported "stopped".
func lastRun(path string) *Run {
	b, err := os.ReadFile(statusPath(path))
	if err != nil {
		return nil
	}
	var st Status
	if json.Unmarshal(b, &st) != nil || st.Run == nil {
		return nil
	}
	if st.Run.Phase != "failed" && st.Run.Phase != "stopped" {
		st.Run.Phase, st.Run.Attempt, st.Run.NextRetry, st.Run.Paused = "stopped", 0, time.Time{}, nil
	}
	return st.Run
}

// StatusFile reads the status file that the running pipeline holding the
// state file at path keeps beside it (what Inspect falls back to), with
// Running set: what that process itself serves at /status.
func StatusFile(path string) (Status, error) {
	b, err := os.ReadFile(statusPath(path))
	if err != nil {
		return Status{Path: path, Running: true}, fmt.Errorf("%s is locked by a running sluice and its status file is unreadable: %w", path, err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return Status{Path: path, Running: true}, fmt.Errorf("status file %s: %w", statusPath(path), err)
	}
	st.Path, st.Running = path, true
	return st, nil
}
