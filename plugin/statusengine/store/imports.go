package store

import (
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// listImport lists the record of key k among the imports of tx
// (sequence -> record key), when the file has the bucket.
func listImport(tx *bolt.Tx, k uint64) error {
	b := tx.Bucket(schema.Imports)
	if b == nil {
		return nil
	}
	b.FillPercent = 1 // appends: pages packed full
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return b.Put(binary.BigEndian.AppendUint64(nil, seq), binary.BigEndian.AppendUint64(nil, k))
}

// ImportedAfter reads up to limit entries of the listed imports after the
// sequence number after (0: from the first), in the order they were
// imported, and returns their records with the sequence number of the last entry read (after, when
// none) and whether more follow. An entry whose record is gone (retention)
// or cannot be read is passed over.
func (s *Store) ImportedAfter(after uint64, limit int) (recs []record.Record, last uint64, more bool, err error) {
	last = after
	err = s.view(func(tx *bolt.Tx) error {
		b, records := tx.Bucket(schema.Imports), tx.Bucket(schema.Records)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		n := 0 // entries read, taken or passed over
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil; k, v = c.Next() {
			if n == limit {
				more = true
				return nil
			}
			n++
			if len(k) != 8 || len(v) != 8 {
				continue
			}
			last = binary.BigEndian.Uint64(k)
			rk := v
			rv := records.Get(rk)
			if rv == nil {
				continue
			}
			if rec, err := s.readRecord(tx, rk, rv); err == nil {
				recs = append(recs, rec)
			}
		}
		return nil
	})
	return recs, last, more, err
}
