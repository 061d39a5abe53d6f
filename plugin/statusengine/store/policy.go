package store

import (
	"encoding/binary"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Policy is what a running configuration asks of a shared store. Unlike
// Options it can change on a Corefile reload: the newest Configure wins.
type Policy struct {
	// LimitPerMinute bounds the new reports stored per source network per
	// minute, with a burst of LimitBurst; 0 means no limit.
	LimitPerMinute float64
	LimitBurst     float64
	// MaxSize caps the file in bytes (bbolt grows it in steps); 0 means no cap.
	MaxSize int
	// Retention deletes reports received longer ago; rollups are kept. 0 keeps all.
	Retention time.Duration
	// SweepEvery is how often retention runs; default a minute.
	SweepEvery time.Duration
}

// Configure sets the policy; the writer picks it up before its next commit.
func (s *Store) Configure(p Policy) {
	if p.LimitPerMinute > 0 && p.LimitBurst < 1 {
		p.LimitBurst = 1
	}
	if p.SweepEvery <= 0 {
		p.SweepEvery = time.Minute
	}
	s.policy.Store(&p)
	s.noSpaceUntil.Store(0) // a new max_size may have made room: try at once
	select {
	case s.policyChanged <- struct{}{}:
	default:
	}
}

// sourceLimiter is a token bucket per source network. Only the writer
// goroutine touches it, so it needs no lock.
type sourceLimiter struct {
	buckets map[netip.Prefix]*tokens
}

type tokens struct {
	n    float64
	last time.Time
}

// maxSources bounds the limiter's memory; beyond it idle buckets are dropped
// first, and a flood of distinct sources only resets full buckets.
const maxSources = 100000

func (l *sourceLimiter) allow(p *Policy, src netip.Prefix, now time.Time) bool {
	if p == nil || p.LimitPerMinute <= 0 || !src.IsValid() {
		return true
	}
	if l.buckets == nil {
		l.buckets = map[netip.Prefix]*tokens{}
	}
	rate := p.LimitPerMinute / 60
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= maxSources {
			l.prune(p, now)
		}
		b = &tokens{n: p.LimitBurst, last: now}
		l.buckets[src] = b
	}
	b.n = min(p.LimitBurst, b.n+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.n < 1 {
		return false
	}
	b.n--
	return true
}

// prune drops the buckets that have refilled: forgetting them changes nothing.
func (l *sourceLimiter) prune(p *Policy, now time.Time) {
	full := time.Duration(p.LimitBurst / (p.LimitPerMinute / 60) * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxSources { // all busy: start over rather than grow
		clear(l.buckets)
	}
}

// sweepBatch bounds one retention transaction, so commits of new reports
// are never held up for long.
const sweepBatch = 20000

// sweep deletes reports received before now-Retention, and the
// de-duplication entries of client epochs that old. Rollups stay.
func (s *Store) sweep(p *Policy, now time.Time) (deleted int, err error) {
	if p == nil || p.Retention <= 0 {
		return 0, nil
	}
	cutoff := now.Add(-p.Retention)
	var hi [8]byte
	binary.BigEndian.PutUint64(hi[:], uint64(cutoff.UnixNano()))
	err = s.db.Update(func(tx *bolt.Tx) error {
		reports := tx.Bucket(reportsBucket)
		seen := tx.Bucket(seenBucket)
		old := collect(reports.Cursor(), nil, func(k []byte) bool { return string(k) < string(hi[:]) })
		for _, k := range old {
			// The de-duplication entry goes with its record, found from the
			// record: a client epoch says nothing of when the report came
			// (clocks run behind), and cutting entries by epoch would forget
			// reports still stored and store their retries again.
			if rec, err := unmarshal(k, reports.Get(k)); err == nil {
				sk := seenKey(&rec, s.opts.NoEpochWindow)
				if err := seen.Delete(sk[:]); err != nil {
					return err
				}
			}
			if err := reports.Delete(k); err != nil {
				return err
			}
		}
		deleted = len(old)
		meta := tx.Bucket(metaBucket)
		left := getUint(meta, countKey)
		left -= min(left, uint64(deleted))
		return putUint(meta, countKey, left)
	})
	if err != nil {
		return 0, err
	}
	s.count.Add(-int64(deleted))
	return deleted, nil
}

// collect copies up to sweepBatch keys from from (or the first key) on while
// keep says so. Deleting under a live cursor would skip keys.
func collect(c *bolt.Cursor, from []byte, keep func(k []byte) bool) [][]byte {
	var out [][]byte
	k, _ := c.First()
	if from != nil {
		k, _ = c.Seek(from)
	}
	for ; k != nil && len(out) < sweepBatch && keep(k); k, _ = c.Next() {
		out = append(out, append([]byte(nil), k...))
	}
	return out
}
