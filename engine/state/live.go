package state

import (
	"time"

	"github.com/sluice-cdc/sluice/engine/change"
)

// live is what a running pipeline reports that the file does not hold:
// it goes into the status file only, so that `sluice status` and `sluice
// wait` see lag while the state file is locked.
type live struct {
	sinks   map[string]time.Time // BehindSince per sink
	sources map[string]snapshotRate
	kafka   map[string][]KafkaPartition // per Kafka source
	run     Run
	hasRun  bool
}

type snapshotRate struct {
	rows  int64
	since time.Time
}

// SetBehind records, for the status file, the time of the oldest change a
// sink has been handed and not committed (zero: caught up). Called by the
// engine while it runs; see SinkStatus.BehindSince.
func (s *Store) SetBehind(sink string, since time.Time) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live.sinks == nil {
		s.live.sinks = map[string]time.Time{}
	}
	if old, ok := s.live.sinks[sink]; ok && old.Equal(since) {
		return
	}
	s.live.sinks[sink] = since
	s.dirty.Store(true)
}

// AddSnapshotRows counts snapshot rows a source has read in this process,
// for the status file's rate and ETA (SourceStatus.SnapshotRows).
func (s *Store) AddSnapshotRows(source string, n int) {
	if n <= 0 {
		return
	}
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	if s.live.sources == nil {
		s.live.sources = map[string]snapshotRate{}
	}
	r := s.live.sources[source]
	if r.since.IsZero() {
		r.since = time.Now().UTC()
	}
	r.rows += int64(n)
	s.live.sources[source] = r
	s.dirty.Store(true)
}

// addLive merges the live figures into st.
func (s *Store) addLive(st *Status) {
	s.liveMu.Lock()
	defer s.liveMu.Unlock()
	for name, since := range s.live.sinks {
		sk := st.Sinks[name]
		if sk.Checkpoint == nil {
			sk.Checkpoint = change.Checkpoint{}
		}
		sk.Live, sk.BehindSince = true, since
		st.Sinks[name] = sk
	}
	for name, r := range s.live.sources {
		src := st.Sources[name]
		src.SnapshotRows, src.SnapshotSince = r.rows, r.since
		st.Sources[name] = src
	}
	for name, parts := range s.live.kafka {
		src := st.Sources[name]
		src.Kafka = append([]KafkaPartition(nil), parts...)
		st.Sources[name] = src
	}
	if s.live.hasRun {
		run := s.live.run
		if run.Paused != nil {
			p := *run.Paused
			run.Paused = &p
		}
		if run.LastError != nil {
			e := *run.LastError
			run.LastError = &e
		}
		st.Run = &run
	}
}
