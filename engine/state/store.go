package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/sluice-cdc/sluice/engine/change"
)

// ErrLocked reports that another process (a running pipeline) holds the
// state file. Its message reads "pipeline is running: PATH is locked by
// another sluice".
var ErrLocked = errors.New("pipeline is running")

// fileVersion is the layout of the buckets; a file with a higher version
// was written by a newer sluice and is refused.
const fileVersion = 1

var (
	bucketMeta    = []byte("meta")
	bucketSinks   = []byte("sinks")
	bucketSources = []byte("sources")
	bucketCorners = []byte("corners")
	bucketDLQ     = []byte("dlq")
	bucketDLQKeys = []byte("dlq_index") // stage + position → letter id, so a letter is stored once
	keyVersion    = []byte("version")
	keyDLQCount   = []byte("dlq_count")
)

// lockWait is how long Open waits for another process's lock: long enough
// to ride out a pipeline that is just exiting, short enough to fail fast.
const lockWait = 200 * time.Millisecond

// statusEvery is how often a running pipeline rewrites the status file
// (when something changed).
const statusEvery = time.Second

// Store is an open state file.
type Store struct {
	db   *bolt.DB
	path string

	dirty     atomic.Bool    // the status file is behind
	stop      chan struct{}  // closed by Close to end statusLoop
	done      sync.WaitGroup // statusLoop
	mu        sync.Mutex     // serialises status file writes
	closeOnce sync.Once

	liveMu sync.Mutex
	live   live // what the running pipeline reports for the status file
}

// Open opens (creating it and its directory if needed) the state file at
// path for a running pipeline or a command that changes it. If another
// sluice holds it, Open fails at once with an error wrapping ErrLocked.
func Open(path string) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockWait})
	if err != nil {
		return nil, openError(path, err)
	}
	s := &Store{db: db, path: path, stop: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketSinks, bucketSources, bucketCorners, bucketDLQ, bucketDLQKeys} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return checkVersion(tx.Bucket(bucketMeta), true)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	s.dirty.Store(true)
	s.done.Add(1)
	go s.statusLoop()
	return s, nil
}

// statusLoop rewrites the status file at most every statusEvery, when
// something changed.
func (s *Store) statusLoop() {
	defer s.done.Done()
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if s.dirty.Swap(false) {
				s.writeStatus()
			}
		}
	}
}

func openError(path string, err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("%w: %s is locked by another sluice (stop it first, or use `sluice status` to look)", ErrLocked, path)
	}
	return fmt.Errorf("state file %s: %w (is it a sluice state file?)", path, err)
}

// checkVersion refuses files from a newer sluice and stamps new ones.
func checkVersion(meta *bolt.Bucket, stamp bool) error {
	v := meta.Get(keyVersion)
	if v == nil {
		if !stamp {
			return nil
		}
		return meta.Put(keyVersion, []byte(strconv.Itoa(fileVersion)))
	}
	n, err := strconv.Atoi(string(v))
	if err != nil {
		return fmt.Errorf("%w: version %q", errRecord, v)
	}
	if n > fileVersion {
		return fmt.Errorf("the state file has layout version %d; this sluice reads up to %d: upgrade sluice", n, fileVersion)
	}
	return nil
}

// Path returns the file's path.
func (s *Store) Path() string { return s.path }

// Close writes a last status file and releases the lock.
// Calling it again does nothing.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stop)
		s.done.Wait()
		s.writeStatus()
		err = s.db.Close()
	})
	return err
}

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
		rec = SinkRecord{Checkpoint: r.Checkpoint, Saved: r.Saved, Time: r.Time, CommitTime: r.CommitTime}
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

// Corner is a component's private key/value space; it implements
// engine.State. Each Put is durable when it returns.
type Corner struct {
	s    *Store
	name []byte
}

// Corner returns the corner of a component, e.g. Corner("source", "app").
func (s *Store) Corner(kind, name string) *Corner {
	return &Corner{s: s, name: []byte(kind + "/" + name)}
}

// Get returns the value of key, or nil, nil when it is absent.
func (c *Corner) Get(key string) ([]byte, error) {
	var out []byte
	err := c.s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketCorners).Bucket(c.name); b != nil {
			if v := b.Get([]byte(key)); v != nil {
				out = append([]byte{}, v...)
			}
		}
		return nil
	})
	return out, err
}

// Put stores value under key durably.
func (c *Corner) Put(key string, value []byte) error {
	return c.s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketCorners).CreateBucketIfNotExists(c.name)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
}

// Letter is a dead-lettered event: one a transform failed on or a sink
// rejected, with why.
type Letter struct {
	ID    uint64 // assigned by AddLetter, increasing
	Stage string // "sink.NAME" or "transform.NAME" (see the engine)
	Err   string
	Time  time.Time
	Event change.Event
}

func letterKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

func indexKey(stage string, p change.Position) []byte {
	return []byte(stage + "\x00" + p.Stream().String() + "\x00" + p.String())
}

// AddLetter stores l durably and returns its id. A letter for the same
// stage and position is stored once: the event that failed again after a
// restart keeps its first id, and added reports false.
func (s *Store) AddLetter(l Letter) (id uint64, added bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		id, added, err = addLetter(tx, &l)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("state file %s: dead letter: %w", s.path, err)
	}
	s.dirty.Store(true)
	return id, added, nil
}

// AddLetters stores letters in one durable update, as AddLetter does each,
// and returns those that were new, with their ids.
func (s *Store) AddLetters(ls []Letter) ([]Letter, error) {
	if len(ls) == 0 {
		return nil, nil
	}
	var out []Letter
	err := s.db.Update(func(tx *bolt.Tx) error {
		out = out[:0]
		for _, l := range ls {
			id, added, err := addLetter(tx, &l)
			if err != nil {
				return err
			}
			if added {
				l.ID = id
				out = append(out, l)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state file %s: dead letters: %w", s.path, err)
	}
	s.dirty.Store(true)
	return out, nil
}

func addLetter(tx *bolt.Tx, l *Letter) (id uint64, added bool, err error) {
	if l.Time.IsZero() {
		l.Time = time.Now().UTC()
	}
	idx := tx.Bucket(bucketDLQKeys)
	ik := indexKey(l.Stage, l.Event.Position)
	if v := idx.Get(ik); len(v) == 8 {
		return binary.BigEndian.Uint64(v), false, nil
	}
	dlq := tx.Bucket(bucketDLQ)
	seq, err := dlq.NextSequence()
	if err != nil {
		return 0, false, err
	}
	b, err := encodeRecord(letterRecord{Stage: l.Stage, Err: l.Err, Time: l.Time, Event: toEventRecord(&l.Event)})
	if err != nil {
		return 0, false, err
	}
	if err := dlq.Put(letterKey(seq), b); err != nil {
		return 0, false, err
	}
	if err := idx.Put(ik, letterKey(seq)); err != nil {
		return 0, false, err
	}
	return seq, true, addCount(tx, 1)
}

func addCount(tx *bolt.Tx, delta int) error {
	meta := tx.Bucket(bucketMeta)
	n, _ := strconv.Atoi(string(meta.Get(keyDLQCount)))
	n += delta
	if n < 0 {
		n = 0
	}
	return meta.Put(keyDLQCount, []byte(strconv.Itoa(n)))
}

// Letters returns up to limit letters with an id above after, in id order
// (page through with the last id returned); stage "" means every stage,
// and a kind ("sink", "transform") every stage of that kind.
func (s *Store) Letters(stage string, after uint64, limit int) ([]Letter, error) {
	var out []Letter
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDLQ).Cursor()
		for k, v := c.Seek(letterKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			l, err := decodeLetter(k, v)
			if err != nil {
				return err
			}
			if stage == "" || l.Stage == stage || strings.HasPrefix(l.Stage, stage+".") {
				out = append(out, l)
			}
		}
		return nil
	})
	return out, err
}

func decodeLetter(k, v []byte) (Letter, error) {
	if len(k) != 8 {
		return Letter{}, fmt.Errorf("%w: dead letter key %x", errRecord, k)
	}
	var r letterRecord
	if err := decodeRecord(v, &r); err != nil {
		return Letter{}, fmt.Errorf("dead letter %d: %w", binary.BigEndian.Uint64(k), err)
	}
	e, err := r.Event.event()
	if err != nil {
		return Letter{}, fmt.Errorf("dead letter %d: %w", binary.BigEndian.Uint64(k), err)
	}
	return Letter{ID: binary.BigEndian.Uint64(k), Stage: r.Stage, Err: r.Err, Time: r.Time, Event: e}, nil
}

// DeleteLetters removes letters by id (after a successful replay); ids
// that do not exist are ignored.
func (s *Store) DeleteLetters(ids ...uint64) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		dlq, idx := tx.Bucket(bucketDLQ), tx.Bucket(bucketDLQKeys)
		n := 0
		for _, id := range ids {
			v := dlq.Get(letterKey(id))
			if v == nil {
				continue
			}
			var r letterRecord
			if decodeRecord(v, &r) == nil {
				p := change.Position{Source: r.Event.Source, Partition: r.Event.Partition, Offset: r.Event.Offset, Index: r.Event.Index}
				if err := idx.Delete(indexKey(r.Stage, p)); err != nil {
					return err
				}
			}
			if err := dlq.Delete(letterKey(id)); err != nil {
				return err
			}
			n++
		}
		return addCount(tx, -n)
	})
	if err != nil {
		return fmt.Errorf("state file %s: %w", s.path, err)
	}
	s.dirty.Store(true)
	return nil
}

// Purge deletes every letter of a stage ("" for all) and returns how
// many, a page at a time so that memory stays bounded.
func (s *Store) Purge(stage string) (int, error) {
	n := 0
	for {
		page, err := s.Letters(stage, 0, 1000)
		if err != nil || len(page) == 0 {
			return n, err
		}
		ids := make([]uint64, len(page))
		for i, l := range page {
			ids[i] = l.ID
		}
		if err := s.DeleteLetters(ids...); err != nil {
			return n, err
		}
		n += len(ids)
	}
}

// CountLetters returns how many letters the queue holds.
func (s *Store) CountLetters() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = countLetters(tx)
		return nil
	})
	return n, err
}

func countLetters(tx *bolt.Tx) int {
	n, _ := strconv.Atoi(string(tx.Bucket(bucketMeta).Get(keyDLQCount)))
	return n
}

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
