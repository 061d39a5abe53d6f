package store

import (
	"encoding/binary"
	"encoding/hex"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// The outbox holds what this server stored itself (live reports and
// imports) and a NATS JetStream stream has not yet acknowledged: an entry
// per record, written in the transaction that stores the record (apply),
// so that a record is in the outbox exactly when it is in the file. A
// publisher (package fleet) reads the entries, publishes their records and
// deletes the entries the stream acknowledged (it keeps them 2 minutes
// more, to publish again should NATS lose them): a NATS outage, a restart
// or a kill -9 leaves the rest to publish later, and an answer never waits
// for NATS. Records taken from elsewhere (a peer, the stream itself) are
// not listed: the server that stored them first publishes them. A record
// replayed from the write-ahead log keeps no origin and is listed: a
// record of a peer's among them costs the fleet a duplicate.
//
// The bucket exists only once EnableOutbox made it, and its presence is
// the setting: the log's replay at Open, before the publisher starts,
// lists records as the running server did.

// EnableOutbox makes the outbox, if it is not there: every record stored
// from then on that was not taken from elsewhere is listed in it.
func (s *Store) EnableOutbox() error {
	return s.do(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(schema.Outbox)
		return err
	})
}

// listOutbox lists the record of key k in the outbox of tx, when there is
// one.
func listOutbox(tx *bolt.Tx, k uint64) error { return appendList(tx, schema.Outbox, k) }

// OutboxEntry is one record waiting in the outbox.
type OutboxEntry struct {
	Seq    uint64        // the entry's sequence number, for OutboxDone
	Record record.Record // the record; Gone when it cannot be read
	// Gone says the record is no longer in the file (retention deleted
	// it) or cannot be read: there is nothing to publish, and the entry
	// is to be deleted.
	Gone bool
}

// Outbox reads up to limit entries of the outbox after the sequence
// number after (0: from the first), oldest first. Without an outbox it
// reads none.
func (s *Store) Outbox(after uint64, limit int) ([]OutboxEntry, error) {
	var out []OutboxEntry
	err := s.view(func(tx *bolt.Tx) error {
		b, records := tx.Bucket(schema.Outbox), tx.Bucket(schema.Records)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, after+1)); k != nil && len(out) < limit; k, v = c.Next() {
			if len(k) != 8 {
				continue
			}
			e := OutboxEntry{Seq: binary.BigEndian.Uint64(k)}
			var rv []byte
			if len(v) == 8 {
				rv = records.Get(v)
			}
			if rv == nil {
				e.Gone = true
			} else if rec, err := s.readRecord(tx, v, rv); err == nil {
				e.Record = rec
			} else {
				e.Gone = true
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// OutboxDone deletes the entries seqs from the outbox: their records are
// acknowledged by the stream (or gone).
func (s *Store) OutboxDone(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	return s.do(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Outbox)
		if b == nil {
			return nil
		}
		for _, q := range seqs {
			if err := b.Delete(binary.BigEndian.AppendUint64(nil, q)); err != nil {
				return err
			}
		}
		return nil
	})
}

// OutboxLen counts the entries of the outbox (0 without one). It walks the
// bucket's pages: a gauge's cost, not a per-record one.
func (s *Store) OutboxLen() (int, error) {
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(schema.Outbox); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	return n, err
}

// DedupID is the identity by which the store recognises one start of one
// installation (its seen key: client epoch and a prefix of SHA-256 of the
// beacon; for a name without an epoch, the receive time cut to
// Options.NoEpochWindow), in hex: the same on every server that stores the
// report, so a message id that makes JetStream drop a second copy.
func (s *Store) DedupID(rec *record.Record) string {
	k := makeSeenKey(rec, s.opts.NoEpochWindow)
	return hex.EncodeToString(k[:])
}

// Known tells whether the store committed rec's report lately (its table of
// recent fingerprints, the one Submit answers most duplicates from): a
// record that comes back from the stream, this server's own above all, is
// then a duplicate without a trip through the writer. False means only
// "not known lately": the writer decides.
func (s *Store) Known(rec *record.Record) bool {
	return s.seenCache.has(fingerprint(rec, s.opts.NoEpochWindow))
}
