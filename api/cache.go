package api

import (
	"container/list"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// ResponseTTL is how long a summary or map answer is reused. Both cover whole
// UTC days, so every request within the same days asks the same question:
// twenty dashboards refreshing at once cost one computation.
const ResponseTTL = time.Second

// respCache holds recent encoded answers, bounded in bytes and in entries
// (Limits.CacheBytes, Limits.CacheEntries), least recently used dropped
// first. Concurrent requests for a key being computed wait for that one
// computation instead of each doing it.
type respCache struct {
	mu    sync.Mutex
	m     map[string]*list.Element // of *respEntry
	lru   list.List                // most recently used at the front
	bytes int64                    // of the kept bodies
}

type respEntry struct {
	key  string
	st   *store.Store
	done chan struct{} // closed once body, err and at are set
	at   time.Time
	body []byte
	err  error
	kept bool // body is counted in bytes
}

func (c *respCache) get(key string, st *store.Store, lim *Limits, compute func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*list.Element{}
	}
	if el, ok := c.m[key]; ok {
		e := el.Value.(*respEntry)
		select {
		case <-e.done:
			if e.err == nil && e.st == st && time.Since(e.at) < ResponseTTL {
				c.lru.MoveToFront(el)
				c.mu.Unlock()
				return e.body, nil
			}
			c.remove(el)
		default:
			if e.st == st {
				c.mu.Unlock()
				<-e.done
				return e.body, e.err
			}
			c.remove(el) // of a store a reload replaced: its computer keeps it
		}
	}
	e := &respEntry{key: key, st: st, done: make(chan struct{})}
	el := c.lru.PushFront(e)
	c.m[key] = el
	c.mu.Unlock()

	body, err := computeSafely(compute)

	c.mu.Lock()
	defer c.mu.Unlock()
	e.body, e.err, e.at = body, err, time.Now()
	close(e.done)
	if c.m[key] != el {
		return body, err // evicted or replaced meanwhile
	}
	if err != nil || int64(len(body)) > lim.CacheBytes/4 {
		c.remove(el) // too big to keep: served to those who waited for it only
		return body, err
	}
	e.kept = true
	c.bytes += int64(len(body))
	c.evict(lim)
	cacheBytes.Set(float64(c.bytes))
	return body, err
}

// computeSafely runs compute, a panic becoming an error: an entry whose
// computation panicked must still be done, or every later request for its
// key would wait for it forever; and a panic in a goroutine of its own (a
// view's refresh) would end the process, every zone of the host CoreDNS.
func computeSafely[T any](compute func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, fmt.Errorf("computing the answer failed: %v", r)
		}
	}()
	return compute()
}

// evict drops the least recently used entries past the limits.
func (c *respCache) evict(lim *Limits) {
	for c.lru.Len() > 0 && (c.bytes > lim.CacheBytes || c.lru.Len() > lim.CacheEntries) {
		c.remove(c.lru.Back())
	}
	cacheBytes.Set(float64(c.bytes))
}

func (c *respCache) remove(el *list.Element) {
	e := c.lru.Remove(el).(*respEntry)
	if c.m[e.key] == el {
		delete(c.m, e.key)
	}
	if e.kept {
		c.bytes -= int64(len(e.body))
		e.kept = false
	}
}

// writeJSONBytes sends an encoded JSON answer.
func writeJSONBytes(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	w.Write([]byte("\n"))
}
