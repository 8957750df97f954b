package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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
