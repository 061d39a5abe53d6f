package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// sweepBatch bounds one retention transaction, so commits of new reports
// are never held up for long.
const sweepBatch = 20000

// sweep deletes the records received before now-Retention and their
// de-duplication keys. Rollups stay: summaries keep counting them.
func (w *writer) sweep(now time.Time) {
	s := w.s
	p := s.policy.Load()
	if p == nil || p.Retention <= 0 || s.Down() != nil {
		return
	}
	cutoff := binary.BigEndian.AppendUint64(nil, uint64(now.Add(-p.Retention).UnixNano()))
	deleted := 0
	// The sweep flushes the live rollups in its transaction: a record it
	// deletes can then never be missing from a replay.
	_, err := w.transact(now, false, true, indexPerCommit, func(t *txn) {
		records, seen := t.tx.Bucket(schema.Records), t.tx.Bucket(schema.Seen)
		var old [][]byte
		c := records.Cursor()
		for k, _ := c.First(); k != nil && string(k) < string(cutoff) && len(old) < sweepBatch; k, _ = c.Next() {
			old = append(old, append([]byte(nil), k...))
		}
		for _, k := range old {
			// The de-duplication key goes with its record, found from the
			// record: a client epoch says nothing of when the report came
			// (clocks run behind), and cutting keys by epoch would forget
			// reports still stored and store their retries again.
			if rec, err := s.readRecord(t.tx, k, records.Get(k)); err == nil {
				sk := makeSeenKey(&rec, s.opts.NoEpochWindow)
				if err := seen.Delete(sk[:]); err != nil {
					t.err = err
					return
				}
			}
			if err := records.Delete(k); err != nil {
				t.err = err
				return
			}
		}
		deleted = len(old)
		if t.err = w.pruneImports(t.tx, cutoff); t.err != nil {
			return
		}
		meta := t.tx.Bucket(schema.Meta)
		left := getUint(meta, schema.CountKey)
		t.err = putUint(meta, schema.CountKey, left-min(left, uint64(deleted)))
		t.changed = deleted > 0
	})
	if err == nil {
		s.count.Add(-int64(deleted))
	}
	if (err != nil || deleted > 0) && s.opts.OnSweep != nil {
		s.opts.OnSweep(deleted, err)
	}
}

// pruneImports deletes the entries of bucket imports whose record is older
// than cutoff, so that the list does not outgrow retention. The list is in
// import order, not key order (an import keeps each record's receive time),
// so every sweep reads the next sweepBatch entries after the last it read,
// and starts over at the end: a whole pass takes len/sweepBatch sweeps. A
// sequence number is never reused, so the peers' cursors stay valid.
func (w *writer) pruneImports(tx *bolt.Tx, cutoff []byte) error {
	b := tx.Bucket(schema.Imports)
	if b == nil {
		return nil
	}
	var gone [][]byte
	c := b.Cursor()
	k, v := c.Seek(binary.BigEndian.AppendUint64(nil, w.importsSwept+1))
	if k == nil {
		w.importsSwept = 0
		k, v = c.First()
	}
	for n := 0; k != nil && n < sweepBatch; k, v = c.Next() {
		n++
		if len(k) == 8 {
			w.importsSwept = binary.BigEndian.Uint64(k)
		}
		if len(v) != 8 || string(v) < string(cutoff) {
			gone = append(gone, append([]byte(nil), k...))
		}
	}
	for _, k := range gone {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
