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

// eachPage bounds the records Each reads in one transaction.
const eachPage = 4096

// Each calls fn for each record received in [from, to], oldest first, until
// fn returns an error, which Each returns. Unlike Range it never calls fn
// inside a read transaction: it reads pages of records and hands them out
// between transactions, so a slow consumer (an export to a slow client)
// cannot hold a transaction open and block the writer from growing the file.
func (s *Store) Each(from, to time.Time, fn func(*Record) error) error {
	page := make([]Record, 0, eachPage)
	var after uint64
	for {
		page = page[:0]
		err := s.RangeAfter(from, to, after, func(r *Record) bool {
			page = append(page, *r)
			after = r.Key
			return len(page) < eachPage
		})
		if err != nil {
			return err
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < eachPage {
			return nil
		}
	}
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
