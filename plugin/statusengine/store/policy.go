package store

import (
	"encoding/binary"
	"net/netip"
	"time"
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
		records, seen := t.tx.Bucket(recordsBucket), t.tx.Bucket(seenBucket)
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
		meta := t.tx.Bucket(metaBucket)
		left := getUint(meta, countKey)
		t.err = putUint(meta, countKey, left-min(left, uint64(deleted)))
		t.changed = deleted > 0
	})
	if err == nil {
		s.count.Add(-int64(deleted))
	}
	if (err != nil || deleted > 0) && s.opts.OnSweep != nil {
		s.opts.OnSweep(deleted, err)
	}
}
