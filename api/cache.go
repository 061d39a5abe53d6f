package api

import (
	"net/http"
	"sync"
	"time"

	"github.com/statusengine/statusengine/internal/flight"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// ResponseTTL is how long a summary or map answer is reused. Both cover whole
// UTC days, so every request within the same days asks the same question:
// twenty dashboards refreshing at once cost one computation.
const ResponseTTL = time.Second

// respCache holds recent encoded answers, for ResponseTTL, bounded in
// bytes and in entries (Limits.CacheBytes, Limits.CacheEntries), least
// recently used dropped first; an answer over a quarter of the bytes is
// served to those who waited for it and not kept. Concurrent requests for
// a key being computed wait for that one computation. Answers of a store a
// reload replaced are never served again: the store is part of the key.
type respCache struct {
	once sync.Once // sets c's policy: the zero respCache works
	c    flight.Cache[respKey, []byte]
}

type respKey struct {
	key string
	st  *store.Store
}

func (c *respCache) get(key string, st *store.Store, lim *Limits, compute func() ([]byte, error)) ([]byte, error) {
	c.once.Do(func() {
		c.c.Size = bodySize
		c.c.Fresh = freshAnswer
		c.c.OnBytes = func(n int64) { cacheBytes.Set(float64(n)) }
	})
	return c.c.Get(respKey{key, st}, flight.Bounds{Entries: lim.CacheEntries, Bytes: lim.CacheBytes}, compute)
}

func bodySize(b []byte) int64 { return int64(len(b)) }

func freshAnswer(e *flight.Entry[[]byte], now time.Time) bool { return now.Sub(e.At) < ResponseTTL }

// writeJSONBytes sends an encoded JSON answer.
func writeJSONBytes(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	w.Write([]byte("\n"))
}
