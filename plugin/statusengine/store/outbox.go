package store

import (
	"encoding/binary"
	"encoding/hex"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// The outbox holds what this server stored itself (live reports and
// imports) and a NATS JetStream stream has not yet acknowledged, written
// in the transaction that stores the records (finish), so that a record is
// in the outbox exactly when it is in the file. A row lists the keys of
// one transaction's own records, at most outboxRow of them: one row per
// commit, not one per record, keeps the outbox's cost off the DNS path (a
// row per record cost the commit 10-35% more a report). An entry is a slot
// of a row, named by its row's sequence number and its index
// (outboxEntryID); a slot done is zeroed, a row with every slot zeroed is
// deleted. A row of one key is what builds before one row per commit
// wrote, and reads the same.
//
// A publisher (package fleet) reads the entries, publishes their records
// and marks done the entries the stream acknowledged (it keeps them 2
// minutes more, to publish again should NATS lose them): a NATS outage, a
// restart or a kill -9 leaves the rest to publish later, and an answer
// never waits for NATS. Records taken from elsewhere (a peer, the stream
// itself) are not listed: the server that stored them first publishes
// them. A record replayed from the write-ahead log keeps no origin and is
// listed: a record of a peer's among them costs the fleet a duplicate.
//
// The bucket exists only once EnableOutbox made it, and its presence is
// the setting: the log's replay at Open, before the publisher starts,
// lists records as the running server did.

// outboxRow bounds the keys of one outbox row (8 KiB): a transaction that
// stored more of its own writes several rows. It is below 1<<16, the
// index's room in an entry's id.
const outboxRow = 1024

// outboxEntryID names the slot i of the outbox row of sequence number row.
func outboxEntryID(row uint64, i int) uint64 { return row<<16 | uint64(i) }

// EnableOutbox makes the outbox, if it is not there: every record stored
// from then on that was not taken from elsewhere is listed in it.
func (s *Store) EnableOutbox() error {
	return s.do(func(tx *bolt.Tx) error {
		// Made here, it is empty; found, Open counted it and the count
		// has been kept since (counting again could race an OutboxDone).
		_, err := tx.CreateBucketIfNotExists(schema.Outbox)
		return err
	})
}

// countOutbox counts the entries waiting in the outbox b (nil: none), for
// Store.outboxLen at Open: it reads every row.
func countOutbox(b *bolt.Bucket) int64 {
	if b == nil {
		return 0
	}
	n := int64(0)
	b.ForEach(func(_, v []byte) error {
		for i := 0; i+8 <= len(v); i += 8 {
			if binary.BigEndian.Uint64(v[i:]) != 0 {
				n++
			}
		}
		return nil
	})
	return n
}

// listOutbox writes the keys of the records t stored of this server's own
// to the outbox of t's transaction, when there is one, in rows of at most
// outboxRow keys.
func listOutbox(t *txn) error {
	b := t.outbox
	if b == nil || len(t.listed) == 0 {
		return nil
	}
	b.FillPercent = 1 // appends: pages packed full
	for keys := range slices.Chunk(t.listed, outboxRow) {
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		v := make([]byte, 0, 8*len(keys))
		for _, k := range keys {
			v = binary.BigEndian.AppendUint64(v, k)
		}
		if err := b.Put(binary.BigEndian.AppendUint64(nil, seq), v); err != nil {
			return err
		}
	}
	return nil
}

// OutboxEntry is one record waiting in the outbox.
type OutboxEntry struct {
	Seq    uint64        // the entry's id (row and slot), for OutboxDone; ids grow
	Record record.Record // the record; Gone when it cannot be read
	// Gone says the record is no longer in the file (retention deleted
	// it) or cannot be read: there is nothing to publish, and the entry
	// is to be marked done.
	Gone bool
}

// Outbox reads up to limit entries of the outbox after the entry id after
// (0: from the first), oldest first. Without an outbox it reads none.
func (s *Store) Outbox(after uint64, limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(func(tx *bolt.Tx) error {
		b, records := tx.Bucket(schema.Outbox), tx.Bucket(schema.Records)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after>>16)); k != nil && len(out) < limit; k, v = c.Next() {
			if len(k) != 8 {
				continue
			}
			row := binary.BigEndian.Uint64(k)
			for i := 0; (i+1)*8 <= len(v) && len(out) < limit; i++ {
				key := v[i*8 : (i+1)*8]
				id := outboxEntryID(row, i)
				if id <= after || binary.BigEndian.Uint64(key) == 0 {
					continue // read before, or done
				}
				e := OutboxEntry{Seq: id}
				if rv := records.Get(key); rv == nil {
					e.Gone = true
				} else if rec, err := s.readRecord(tx, key, rv); err == nil {
					e.Record = rec
				} else {
					e.Gone = true
				}
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// OutboxDone marks the entries ids of the outbox done: their records are
// acknowledged by the stream (or gone). A row with every entry done is
// deleted.
func (s *Store) OutboxDone(ids []uint64) error {
	if len(ids) == 0 {
		return nil
	}
	sorted := slices.Sorted(slices.Values(ids))
	done := int64(0)
	err := s.do(func(tx *bolt.Tx) error {
		done = 0
		b := tx.Bucket(schema.Outbox)
		if b == nil {
			return nil
		}
		for ids := sorted; len(ids) > 0; {
			row := ids[0] >> 16
			n := 1
			for n < len(ids) && ids[n]>>16 == row {
				n++
			}
			slots := ids[:n]
			ids = ids[n:]
			k := binary.BigEndian.AppendUint64(nil, row)
			v := b.Get(k)
			if v == nil {
				continue
			}
			v = slices.Clone(v) // bbolt's value is read-only
			for _, id := range slots {
				i := int(id & 0xffff)
				if (i+1)*8 <= len(v) && binary.BigEndian.Uint64(v[i*8:]) != 0 {
					binary.BigEndian.PutUint64(v[i*8:], 0)
					done++
				}
			}
			var err error
			if slices.ContainsFunc(v, func(c byte) bool { return c != 0 }) {
				err = b.Put(k, v)
			} else {
				err = b.Delete(k)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.outboxLen.Add(-done)
	}
	return err
}

// OutboxLen counts the entries waiting in the outbox (0 without one): a
// count kept in memory, read at Open and kept with each commit.
func (s *Store) OutboxLen() int { return int(s.outboxLen.Load()) }

// DedupID is the identity by which the store recognises one start of one
// installation (its seen key: client epoch and a prefix of SHA-256 of the
// beacon; for a name without an epoch, the receive time cut to
// Options.NoEpochWindow), in hex: the same on every server that stores the
// report, so a message id that makes JetStream drop a second copy.
func (s *Store) DedupID(rec *record.Record) string {
	k := makeSeenKey(rec, s.opts.NoEpochWindow)
	return hex.EncodeToString(k[:])
}
