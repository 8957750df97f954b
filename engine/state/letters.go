package state

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sluice-cdc/sluice/engine/change"
)

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
