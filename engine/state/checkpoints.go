package state

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluice-cdc/sluice/engine/change"
)

// SinkRecord is what the state file holds for one sink.
type SinkRecord struct {
	// Checkpoint is the last checkpoint the sink committed.
	Checkpoint change.Checkpoint
	// Saved is what the sink's last Flush returned, for its next Open.
	Saved []byte
	// Time is when it was saved.
	Time time.Time
	// CommitTime is the source commit time of the last change the
	// checkpoint covers; zero when unknown (no change committed yet, or
	// sources that carry no commit time).
	CommitTime time.Time
}

// Sink returns a sink's record; the zero SinkRecord (empty checkpoint, no
// saved bytes) if it never committed.
func (s *Store) Sink(name string) (SinkRecord, error) {
	var rec SinkRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSinks).Get([]byte(name))
		if b == nil {
			return nil
		}
		var r sinkRecord
		if err := decodeRecord(b, &r); err != nil {
			return fmt.Errorf("sink %q: %w", name, err)
		}
		rec = SinkRecord(r)
		return nil
	})
	if rec.Checkpoint == nil {
		rec.Checkpoint = change.Checkpoint{}
	}
	return rec, err
}

// Acked returns the checkpoint last acknowledged to a source (empty if none).
func (s *Store) Acked(source string) (change.Checkpoint, error) {
	cp := change.Checkpoint{}
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSources).Get([]byte(source))
		if b == nil {
			return nil
		}
		var r sourceRecord
		if err := decodeRecord(b, &r); err != nil {
			return fmt.Errorf("source %q: %w", source, err)
		}
		if r.Acked != nil {
			cp = r.Acked
		}
		return nil
	})
	return cp, err
}

// Save is one durable step of the checkpointer: sinks that committed, and
// the checkpoints about to be acknowledged to sources.
type Save struct {
	Sinks map[string]SinkRecord
	Acks  map[string]change.Checkpoint
}

// Save writes sv in one bbolt transaction (one fsync): all of it or none.
func (s *Store) Save(sv Save) error {
	now := time.Now().UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		for name, r := range sv.Sinks {
			t := r.Time
			if t.IsZero() {
				t = now
			}
			b, err := encodeRecord(sinkRecord{Checkpoint: r.Checkpoint, Saved: r.Saved, Time: t, CommitTime: r.CommitTime})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketSinks).Put([]byte(name), b); err != nil {
				return err
			}
		}
		for name, cp := range sv.Acks {
			b, err := encodeRecord(sourceRecord{Acked: cp, Time: now})
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketSources).Put([]byte(name), b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state file %s: save: %w", s.path, err)
	}
	s.dirty.Store(true)
	return nil
}
