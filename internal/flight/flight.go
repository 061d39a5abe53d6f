// Package flight is the single-flight cache behind the API's answer and
// view caches and the store's sums of past days: one computation per key at
// a time, which concurrent callers wait for; a panic in it becomes an error
// (a key whose computation panicked must not wait forever, and a panic in
// a background refresh must not end the process); what is kept is bounded
// in entries and bytes, the least recently used dropped first; and a value
// that was slow to compute can be served stale while one goroutine
// computes it again.
//
// golang.org/x/sync/singleflight shares one call among concurrent callers
// but keeps nothing after it; hashicorp/golang-lru keeps values but lets
// every caller of a missing key compute it. Each user needs both at once,
// under one lock, hence this small type.
package flight

import (
	"container/list"
	"fmt"
	"sync"
	"time"
)

// Cache is a single-flight cache of values V by key K. Its zero value
// keeps values for as long as the bounds allow.
type Cache[K comparable, V any] struct {
	// Size is the bytes a value holds, for Bounds.Bytes; nil counts none.
	Size func(V) int64
	// Fresh tells whether a computed value may be served as it is; nil:
	// always.
	Fresh func(e *Entry[V], now time.Time) bool
	// Stale tells whether a value no longer fresh may be served while one
	// goroutine computes it again; nil: never.
	Stale func(e *Entry[V], now time.Time) bool
	// MaxRefreshes bounds the background computations of stale values
	// under way at once (at least 1 when Stale is set).
	MaxRefreshes int
	// OnBytes, when set, is told the bytes kept after each change.
	OnBytes func(int64)

	mu         sync.Mutex
	m          map[K]*list.Element // of *Entry
	lru        list.List           // most recently used at the front
	bytes      int64
	refreshing int
}

// Entry is one computed value, as Fresh and Stale see it.
type Entry[V any] struct {
	Value V
	Err   error
	At    time.Time     // when its computation ended
	Cost  time.Duration // how long it took

	key        any
	done       chan struct{} // closed once computed
	size       int64         // counted in bytes while kept
	kept       bool
	refreshing bool
}

// Bounds limit what a Cache keeps; zero means no bound. A value larger
// than a quarter of Bytes is served to those who waited for it and not
// kept, unless KeepLarge.
type Bounds struct {
	Entries   int
	Bytes     int64
	KeepLarge bool // keep the newest value whatever its size
}

// Get returns the value of key: a fresh one kept, a stale one (while it is
// computed again), the one being computed (once it is), or the one compute
// makes now. Errors are returned to the callers waiting for them and never
// kept.
func (c *Cache[K, V]) Get(key K, b Bounds, compute func() (V, error)) (V, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[K]*list.Element{}
	}
	if el, ok := c.m[key]; ok {
		e := el.Value.(*Entry[V])
		select {
		case <-e.done:
			now := time.Now()
			if c.Fresh == nil || c.Fresh(e, now) {
				c.lru.MoveToFront(el)
				c.mu.Unlock()
				return e.Value, nil
			}
			if c.Stale != nil && c.Stale(e, now) {
				c.lru.MoveToFront(el)
				c.refresh(key, e, b, compute)
				c.mu.Unlock()
				return e.Value, nil
			}
			c.remove(el)
		default:
			c.mu.Unlock()
			<-e.done
			return e.Value, e.Err
		}
	}
	// Bounds are applied once the value is computed: until then the
	// entry holds nothing but its waiters.
	e := &Entry[V]{key: key, done: make(chan struct{})}
	el := c.lru.PushFront(e)
	c.m[key] = el
	c.mu.Unlock()
	c.compute(el, e, b, compute)
	return e.Value, e.Err
}

// refresh starts the background computation of a stale entry, unless one
// is under way or MaxRefreshes are: the next request tries again. Called
// with mu held.
func (c *Cache[K, V]) refresh(key K, e *Entry[V], b Bounds, compute func() (V, error)) {
	if e.refreshing || c.refreshing >= max(1, c.MaxRefreshes) {
		return
	}
	e.refreshing = true
	c.refreshing++
	go func() {
		start := time.Now()
		v, err := Safely(compute)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.refreshing--
		e.refreshing = false
		el, ok := c.m[key]
		if err != nil || !ok || el.Value != e {
			return // failed (the stale value is served on) or evicted
		}
		n := &Entry[V]{key: key, done: make(chan struct{}), Value: v, At: time.Now(), Cost: time.Since(start)}
		close(n.done)
		c.remove(el)
		el = c.lru.PushFront(n)
		c.m[key] = el
		c.keep(el, n, b)
	}()
}

// compute makes e's value and wakes those who wait for it.
func (c *Cache[K, V]) compute(el *list.Element, e *Entry[V], b Bounds, compute func() (V, error)) {
	start := time.Now()
	v, err := Safely(compute)
	c.mu.Lock()
	defer c.mu.Unlock()
	e.Value, e.Err, e.At, e.Cost = v, err, time.Now(), time.Since(start)
	close(e.done)
	if c.m[e.key.(K)] != el {
		return // evicted meanwhile
	}
	if err != nil {
		c.remove(el)
		return
	}
	c.keep(el, e, b)
}

// keep counts a computed entry's bytes, or drops it when it is too large.
// Called with mu held.
func (c *Cache[K, V]) keep(el *list.Element, e *Entry[V], b Bounds) {
	if c.Size != nil {
		e.size = c.Size(e.Value)
	}
	if b.Bytes > 0 && !b.KeepLarge && e.size > b.Bytes/4 {
		c.remove(el)
		return
	}
	e.kept = true
	c.bytes += e.size
	c.evict(b)
}

// evict drops the least recently used entries past the bounds; an entry
// being computed is dropped from the map only (its computer finishes it
// for those who wait), and the newest entry always stays. Called with mu
// held.
func (c *Cache[K, V]) evict(b Bounds) {
	for c.lru.Len() > 1 && ((b.Entries > 0 && c.lru.Len() > b.Entries) || (b.Bytes > 0 && c.bytes > b.Bytes)) {
		c.remove(c.lru.Back())
	}
	if c.OnBytes != nil {
		c.OnBytes(c.bytes)
	}
}

func (c *Cache[K, V]) remove(el *list.Element) {
	e := c.lru.Remove(el).(*Entry[V])
	if c.m[e.key.(K)] == el {
		delete(c.m, e.key.(K))
	}
	if e.kept {
		c.bytes -= e.size
		e.kept = false
	}
	if c.OnBytes != nil {
		c.OnBytes(c.bytes)
	}
}

// Len is the number of entries held, computed or being computed.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes is what the kept values hold, by Size.
func (c *Cache[K, V]) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Inspect runs fn on the entry of key under the cache's lock (nil when
// there is none): for tests that age an entry.
func (c *Cache[K, V]) Inspect(key K, fn func(e *Entry[V])) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[key]; ok {
		fn(el.Value.(*Entry[V]))
		return
	}
	fn(nil)
}

// Safely runs compute, a panic becoming an error.
func Safely[T any](compute func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("computing the answer failed: %v", r)
		}
	}()
	return compute()
}
