package state

import (
	bolt "go.etcd.io/bbolt"
)

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
