package rollup

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// Live holds in full the rollup periods the writer is changing: this hour,
// day and month, and any period an import touches. For them it is ahead of
// the rollups bucket by the records stored since the last flush, which are
// exactly the records whose keys exceed the meta watermark "rolled" (live
// keys only grow, and a commit that stores an older key flushes at once).
// A crash loses nothing: Open replays those records. Readers take a period
// from here when it is held, else from the bucket, never both. Only the
// writer changes live, under mu; readers hold mu shared.
type Live struct {
	mu      sync.RWMutex
	periods map[Key]*livePeriod

	// writer only
	Rolled    uint64    // the watermark: records up to this key are in the bucket
	Unflushed int       // records since the last flush
	Last      time.Time // of the last flush
}

type livePeriod struct {
	*Period
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

// NewLive holds no period yet.
func NewLive() *Live { return &Live{periods: map[Key]*livePeriod{}} }

// Hold makes sure the period k is held, reading it from tx when not. A
// stored value that cannot be read starts empty and is reported: derived
// data never stops a commit.
func (l *Live) Hold(tx *bolt.Tx, k Key) (bad bool) {
	if _, ok := l.periods[k]; ok {
		return false
	}
	p := newPeriod(k.Kind)
	if v := tx.Bucket(schema.Rollups).Get(k.Bytes()); v != nil {
		if q, err := DecodePeriod(v, k.Kind); err == nil {
			p = q
		} else {
			bad = true
		}
	}
	l.mu.Lock()
	l.periods[k] = &livePeriod{Period: p}
	l.mu.Unlock()
	return bad
}

// Apply adds committed facts; their periods must be held.
func (l *Live) Apply(facts []Fact, now time.Time) {
	if len(facts) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range facts {
		for _, k := range KeysOf(facts[i].Received) {
			p := l.periods[k]
			p.add(&facts[i])
			p.dirty, p.used = true, now
		}
	}
	l.Unflushed += len(facts)
}

// Due tells whether the next commit should flush.
func (l *Live) Due(now time.Time) bool {
	return l.Unflushed >= flushRecords || (l.Unflushed > 0 && now.Sub(l.Last) >= flushEvery)
}

// Flush writes to tx every dirty period with facts added (facts of the
// same transaction, not applied yet) and returns what it wrote, for
// flushed. The held periods stay as they are until then.
func (l *Live) Flush(tx *bolt.Tx, facts []Fact) ([]Key, error) {
	touched := map[Key][]*Fact{}
	for i := range facts {
		for _, k := range KeysOf(facts[i].Received) {
			touched[k] = append(touched[k], &facts[i])
		}
	}
	b := tx.Bucket(schema.Rollups)
	var keys []Key
	for k, p := range l.periods {
		fs := touched[k]
		if !p.dirty && fs == nil {
			continue
		}
		val := p.Period
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
		if err := b.Put(k.Bytes(), enc); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// Flushed is told that the transaction of flush committed, with facts
// applied after it: the periods written are clean, the watermark is top.
// Clean periods that are not current and idle leave memory.
func (l *Live) Flushed(keys []Key, top uint64, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		if p := l.periods[k]; p != nil {
			p.dirty = false
		}
	}
	l.Rolled, l.Unflushed, l.Last = top, 0, now
	current := KeysOf(now)
	for k, p := range l.periods {
		var cur Key
		for _, c := range current {
			if c.Kind == k.Kind {
				cur = c
			}
		}
		// Kept: the current periods, and the one before while it is in use
		// (a report from just before midnight). Imports and rebuilds touch
		// older ones: they go once flushed.
		if !p.dirty && k != cur && (k.N+1 != cur.N || now.Sub(p.used) > keepPeriod) {
			delete(l.periods, k)
		}
	}
}

// Read calls fn, under the read lock, for each of ks that is held, and
// returns the others. fn must not keep p.
func (l *Live) Read(ks []Key, fn func(k Key, p *Period)) (missing []Key) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, k := range ks {
		if p := l.periods[k]; p != nil {
			fn(k, p.Period)
		} else {
			missing = append(missing, k)
		}
	}
	return missing
}

// Reset forgets every held period (a rebuild rewrote the bucket).
func (l *Live) Reset() {
	l.mu.Lock()
	l.periods = map[Key]*livePeriod{}
	l.mu.Unlock()
	l.Unflushed = 0
}

// HeldDays are the days held (an empty store's first reports may not be
// flushed yet).
func (l *Live) HeldDays() []uint32 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []uint32
	for k := range l.periods {
		if k.Kind == Day {
			out = append(out, k.N)
		}
	}
	return out
}
