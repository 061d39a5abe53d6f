package store

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// live holds in full the rollup periods the writer is changing: this hour,
// day and month, and any period an import touches. For them it is ahead of
// the rollups bucket by the records stored since the last flush, which are
// exactly the records whose keys exceed the meta watermark "rolled" (live
// keys only grow, and a commit that stores an older key flushes at once).
// A crash loses nothing: Open replays those records. Readers take a period
// from here when it is held, else from the bucket, never both. Only the
// writer changes live, under mu; readers hold mu shared.
type live struct {
	mu      sync.RWMutex
	periods map[periodKey]*livePeriod

	// writer only
	rolled    uint64    // the watermark: records up to this key are in the bucket
	unflushed int       // records since the last flush
	last      time.Time // of the last flush
}

type livePeriod struct {
	*period
	dirty bool
	used  time.Time
}

// When the writer flushes live periods to the bucket: after flushEvery, or
// after flushRecords records, whichever comes first. flushRecords also bounds
// what Open replays after a crash.
const (
	flushEvery   = 5 * time.Second
	flushRecords = 50000
	// keepPeriod is how long a clean period nobody changes stays held.
	keepPeriod = time.Minute
)

func newLive() *live { return &live{periods: map[periodKey]*livePeriod{}} }

// hold makes sure the period k is held, reading it from tx when not. A
// stored value that cannot be read starts empty and is reported: derived
// data never stops a commit.
func (l *live) hold(tx *bolt.Tx, k periodKey) (bad bool) {
	if _, ok := l.periods[k]; ok {
		return false
	}
	p := newPeriod(k.kind)
	if v := tx.Bucket(rollupsBucket).Get(k.bytes()); v != nil {
		if q, err := decodePeriod(v, k.kind); err == nil {
			p = q
		} else {
			bad = true
		}
	}
	l.mu.Lock()
	l.periods[k] = &livePeriod{period: p}
	l.mu.Unlock()
	return bad
}

// apply adds committed facts; their periods must be held.
func (l *live) apply(facts []fact, now time.Time) {
	if len(facts) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range facts {
		for _, k := range periodsOf(facts[i].received) {
			p := l.periods[k]
			p.add(&facts[i])
			p.dirty, p.used = true, now
		}
	}
	l.unflushed += len(facts)
}

// due tells whether the next commit should flush.
func (l *live) due(now time.Time) bool {
	return l.unflushed >= flushRecords || (l.unflushed > 0 && now.Sub(l.last) >= flushEvery)
}

// flush writes to tx every dirty period with facts added (facts of the
// same transaction, not applied yet) and returns what it wrote, for
// flushed. The held periods stay as they are until then.
func (l *live) flush(tx *bolt.Tx, facts []fact) ([]periodKey, error) {
	touched := map[periodKey][]*fact{}
	for i := range facts {
		for _, k := range periodsOf(facts[i].received) {
			touched[k] = append(touched[k], &facts[i])
		}
	}
	b := tx.Bucket(rollupsBucket)
	var keys []periodKey
	for k, p := range l.periods {
		fs := touched[k]
		if !p.dirty && fs == nil {
			continue
		}
		val := p.period
		if fs != nil {
			val = val.clone()
			for _, f := range fs {
				val.add(f)
			}
		}
		enc, err := val.encode()
		if err != nil {
			return nil, err
		}
		if err := b.Put(k.bytes(), enc); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// flushed is told that the transaction of flush committed, with facts
// applied after it: the periods written are clean, the watermark is top.
// Clean periods that are not current and idle leave memory.
func (l *live) flushed(keys []periodKey, top uint64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if p := l.periods[k]; p != nil {
			p.dirty = false
		}
	}
	l.rolled, l.unflushed, l.last = top, 0, now
	current := periodsOf(now)
	for k, p := range l.periods {
		var cur periodKey
		for _, c := range current {
			if c.kind == k.kind {
				cur = c
			}
		}
		// Kept: the current periods, and the one before while it is in use
		// (a report from just before midnight). Imports and rebuilds touch
		// older ones: they go once flushed.
		if !p.dirty && k != cur && (k.n+1 != cur.n || now.Sub(p.used) > keepPeriod) {
			delete(l.periods, k)
		}
	}
}

// read calls fn, under the read lock, for each of ks that is held, and
// returns the others. fn must not keep p.
func (l *live) read(ks []periodKey, fn func(k periodKey, p *period)) (missing []periodKey) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, k := range ks {
		if p := l.periods[k]; p != nil {
			fn(k, p.period)
		} else {
			missing = append(missing, k)
		}
	}
	return missing
}

// reset forgets every held period (a rebuild rewrote the bucket).
func (l *live) reset() {
	l.mu.Lock()
	l.periods = map[periodKey]*livePeriod{}
	l.mu.Unlock()
	l.unflushed = 0
}

// heldDays are the days held (an empty store's first reports may not be
// flushed yet).
func (l *live) heldDays() []uint32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []uint32
	for k := range l.periods {
		if k.kind == periodDay {
			out = append(out, k.n)
		}
	}
	return out
}
