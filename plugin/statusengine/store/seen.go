package store

import (
	"crypto/sha256"
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// noEpoch marks the epoch field of a seenKey (its layout: schema.Seen, in
// schema.go) made from the receive time, for a name without an epoch label.
const noEpoch = 1 << 47

type seenKey [14]byte

func makeSeenKey(rec *record.Record, window time.Duration) seenKey {
	var k seenKey
	e := uint64(rec.Report.Epoch)
	if !rec.Report.HasEpoch {
		e = noEpoch | uint64(rec.Received.UnixNano()/int64(window))
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], e)
	copy(k[:6], b[2:])
	var h [32]byte
	if rec.Report.Format == codec.FormatSchema {
		// Zones of custom schemas may share a beacon: one report each.
		h = sha256.Sum256([]byte(rec.Zone + "\x00" + rec.Report.Beacon))
	} else {
		h = sha256.Sum256([]byte(rec.Report.Beacon))
	}
	copy(k[6:], h[:8])
	return k
}

// previous is the key of the window before, for names without an epoch: a
// retry that straddles a window boundary is still a duplicate.
func (k seenKey) previous() seenKey {
	var b [8]byte
	copy(b[2:], k[:6])
	binary.BigEndian.PutUint64(b[:], binary.BigEndian.Uint64(b[:])-1)
	copy(k[:6], b[2:])
	return k
}

// seenIn tells whether b holds k (or, without an epoch, its window before).
func seenIn(b *bolt.Bucket, k seenKey, hasEpoch bool) bool {
	if b.Get(k[:]) != nil {
		return true
	}
	if hasEpoch {
		return false
	}
	p := k.previous()
	return b.Get(p[:]) != nil
}

// recentSeen remembers the reports committed last, so that Submit answers
// most duplicates at once, without the writer or a transaction. It is a
// fixed table of fingerprints (a lossy cache: a report pushed out, or one
// not committed yet, goes to the writer, which looks in the seen bucket).
// 2 MiB.
type recentSeen struct {
	slots [1 << 18]atomic.Uint64
}

// seenSeed keys the fingerprints: they live in memory only.
var seenSeed = maphash.MakeSeed()

// fingerprint identifies what a seen key does, for recentSeen. It is cheap
// (no SHA-256) and shallow: Submit runs on the DNS goroutine, whose stack a
// deep call would make the runtime grow and copy on every query.
func fingerprint(rec *record.Record, window time.Duration) uint64 {
	e := uint64(rec.Report.Epoch)
	if !rec.Report.HasEpoch {
		e = noEpoch | uint64(rec.Received.UnixNano()/int64(window))
	}
	h := maphash.String(seenSeed, rec.Report.Beacon)
	if rec.Report.Format == codec.FormatSchema {
		h ^= maphash.String(seenSeed, rec.Zone) * 0xBF58476D1CE4E5B9 // as makeSeenKey: the zone counts
	}
	return (h ^ e*0x9E3779B97F4A7C15) | 1
}

func (c *recentSeen) slot(fp uint64) *atomic.Uint64 { return &c.slots[fp>>46] }

func (c *recentSeen) has(fp uint64) bool { return c.slot(fp).Load() == fp }

func (c *recentSeen) add(fp uint64) { c.slot(fp).Store(fp) }
