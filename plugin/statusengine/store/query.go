package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Range calls fn for each record received in [from, to], oldest first, until
// fn returns false. It reads one consistent snapshot.
func (s *Store) Range(from, to time.Time, fn func(*Record) bool) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return scan(tx, from, to, fn)
	})
}

// RangeAfter is Range starting strictly after the record with key after, for
// cursor pagination; after 0 starts at from.
func (s *Store) RangeAfter(from, to time.Time, after uint64, fn func(*Record) bool) error {
	if a := time.Unix(0, int64(after+1)); after != 0 && a.After(from) {
		from = a
	}
	return s.Range(from, to, fn)
}

func scan(tx *bolt.Tx, from, to time.Time, fn func(*Record) bool) error {
	var lo, hi [8]byte
	binary.BigEndian.PutUint64(lo[:], uint64(clampNano(from)))
	binary.BigEndian.PutUint64(hi[:], uint64(clampNano(to)))
	c := tx.Bucket(reportsBucket).Cursor()
	for k, v := c.Seek(lo[:]); k != nil && string(k) <= string(hi[:]); k, v = c.Next() {
		rec, err := unmarshal(k, v)
		if err != nil {
			continue // one unreadable record must not hide the rest
		}
		if !fn(&rec) {
			return nil
		}
	}
	return nil
}

// clampNano keeps times outside what int64 nanoseconds can hold at the ends.
func clampNano(t time.Time) int64 {
	switch {
	case t.Unix() <= 0:
		return 0
	case t.Unix() >= 1<<33:
		return 1<<63 - 1
	}
	return t.UnixNano()
}
