package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
)

// writer is the state of the single goroutine that writes the file: every
// transaction that changes it comes from here, so none of this needs a lock.
type writer struct {
	s *Store

	zones, places, builds, installs *dict

	limiter sourceLimiter
	// importsSwept is where retention's walk of bucket imports goes on
	// (pruneImports): the sequence number of the last entry it read.
	importsSwept uint64
	lastKey      uint64            // the highest record key stored
	nextFree     map[uint64]uint64 // see freeKey
	lastBatch    int               // size of the last batch, see linger

	rebuild       *rebuild // a rollup rebuild under way
	rebuildNeeded string   // why one must start, "" when not

	log       *wal.Log         // the write-ahead log (wal.go)
	held      *txn             // the transaction kept open across batches (commit)
	heldSince time.Time        // when it began
	logged    []*record.Record // the records of the batch being logged
	// logBlocked stops logging after a commit failed for lack of space,
	// until one works.
	logBlocked bool
}

// origin is where a record comes from: it decides its key and whether the
// per-source limit applies.
type origin uint8

const (
	fromDNS    origin = iota // a live report: limited per source, keyed after the last
	fromImport               // an import: keyed by its receive time, listed for peers when late
	fromCopy                 // a peer's record, or a migrated one: keyed by its receive time
	fromLog                  // logged, then rolled back or cut by a crash: its logged key
)

func newWriter(s *Store) *writer {
	return &writer{
		s:        s,
		zones:    newDict(schema.Zones, 'z'),
		places:   newDict(schema.Places, 'p'),
		builds:   newDict(schema.Builds, 'b'),
		installs: newDict(schema.Installations, 'i'),
		nextFree: map[uint64]uint64{},
	}
}

func (w *writer) dicts() []*dict { return []*dict{w.zones, w.places, w.builds, w.installs} }

// txn is one write transaction in the making.
type txn struct {
	tx         *bolt.Tx
	records    *bolt.Bucket // looked up once: Tx.Bucket costs a map lookup and more
	seen       *bolt.Bucket
	resolvers  *bolt.Bucket
	now        time.Time
	facts      []rollup.Fact
	stored     int
	own        int          // of stored, this server's own (Store.OwnStored)
	outbox     *bolt.Bucket // the file's outbox, nil without one (EnableOutbox)
	listed     []uint64     // the keys of own, when there is an outbox: written to it by finish
	flush      bool         // flush the live rollups in this transaction
	indexed    []bool
	lastKey    uint64 // writer.lastKey before, restored if the commit fails
	badRollup  bool
	changed    bool   // the fill wrote something besides records
	logTop     uint64 // the last frame of the log this transaction holds
	partial    bool   // it applies a chunk of the log's frames, more follow
	logBatches int    // batches it answered once logged
	err        error  // set by a fill that must not commit
}

// freeKey finds the first unused key from t on. Imports carry whole-second
// times, so many reports can share one: nextFree remembers where each such
// run ended, keeping the probe short.
func (w *writer) freeKey(records *bolt.Bucket, t uint64) uint64 {
	k := max(t, w.nextFree[t])
	var b [8]byte
	for binary.BigEndian.PutUint64(b[:], k); records.Get(b[:]) != nil; binary.BigEndian.PutUint64(b[:], k) {
		k++
	}
	if k != t {
		if len(w.nextFree) > 4096 {
			clear(w.nextFree)
		}
		w.nextFree[t] = k + 1
	}
	return k
}

// changesPast tells whether facts count in a day before today's.
func changesPast(facts []rollup.Fact, now time.Time) bool {
	today := rollup.DayOf(now)
	for i := range facts {
		if rollup.DayOf(facts[i].Received) < today {
			return true
		}
	}
	return false
}
