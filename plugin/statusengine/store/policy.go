package store

import (
	"container/heap"
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
//
// Its memory is bounded by maxSources buckets. A bucket may be forgotten only
// once it has refilled to the burst (forgetting it then changes nothing); a
// heap ordered by the time each bucket is full again finds such a bucket in
// O(log n). When every bucket is still refilling, a new source is refused
// (its report counts as limited) rather than a busy bucket forgotten: a flood
// of spoofed sources can never hand a limited source a fresh burst.
type sourceLimiter struct {
	buckets map[netip.Prefix]*tokens
	byFull  fullHeap
}

type tokens struct {
	src    netip.Prefix
	n      float64
	last   time.Time
	fullAt time.Time // when n is back at the burst at the policy's rate
	index  int       // in byFull
}

// maxSources bounds the limiter's memory (about 100 bytes a bucket).
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
		if len(l.buckets) >= maxSources && !l.evictIdle(p, now) {
			return false // every bucket is limiting a source: refuse, never forget one
		}
		b = &tokens{src: src, n: p.LimitBurst, last: now}
		l.buckets[src] = b
		heap.Push(&l.byFull, b)
	}
	b.n = min(p.LimitBurst, b.n+max(0, now.Sub(b.last).Seconds())*rate)
	b.last = now
	ok := b.n >= 1
	if ok {
		b.n--
	}
	b.fullAt = fullTime(p, b)
	heap.Fix(&l.byFull, b.index)
	return ok
}

// fullTime is when b is back at the burst.
func fullTime(p *Policy, b *tokens) time.Time {
	return b.last.Add(time.Duration((p.LimitBurst - b.n) / (p.LimitPerMinute / 60) * float64(time.Second)))
}

// evictIdleTries bounds the heap entries evictIdle re-checks after a new
// policy moved their time of being full.
const evictIdleTries = 8

// evictIdle forgets one bucket that has refilled to the burst, if there is
// one, and tells whether it did.
func (l *sourceLimiter) evictIdle(p *Policy, now time.Time) bool {
	for range evictIdleTries {
		if len(l.byFull) == 0 || l.byFull[0].fullAt.After(now) {
			return false
		}
		b := l.byFull[0]
		// fullAt was computed under the policy of b's last use; a reload may
		// have raised the burst or lowered the rate since.
		if at := fullTime(p, b); at.After(now) {
			b.fullAt = at
			heap.Fix(&l.byFull, 0)
			continue
		}
		heap.Pop(&l.byFull)
		delete(l.buckets, b.src)
		return true
	}
	return false
}

// fullHeap orders buckets by fullAt, earliest first (container/heap).
type fullHeap []*tokens

func (h fullHeap) Len() int           { return len(h) }
func (h fullHeap) Less(i, j int) bool { return h[i].fullAt.Before(h[j].fullAt) }
func (h fullHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *fullHeap) Push(x any) {
	b := x.(*tokens)
	b.index = len(*h)
	*h = append(*h, b)
}
func (h *fullHeap) Pop() any {
	old := *h
	b := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return b
}
