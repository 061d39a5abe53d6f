package api

import (
	"net/http"
	"sync"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// ResponseTTL is how long a summary or map answer is reused. Both cover whole
// UTC days, so every request within the same days asks the same question:
// twenty dashboards refreshing at once cost one computation.
const ResponseTTL = time.Second

// respCache holds recent encoded answers; concurrent requests for an expired
// key wait for one computation instead of each doing it.
type respCache struct {
	mu sync.Mutex
	m  map[string]*respEntry
}

type respEntry struct {
	mu   sync.Mutex
	at   time.Time
	st   *store.Store
	body []byte
}

// maxRespEntries bounds the keys kept; old ones are dropped past it.
const maxRespEntries = 64

func (c *respCache) get(key string, st *store.Store, compute func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*respEntry{}
	}
	e := c.m[key]
	if e == nil {
		if len(c.m) >= maxRespEntries {
			for k, old := range c.m {
				if time.Since(old.at) > ResponseTTL {
					delete(c.m, k)
				}
			}
		}
		e = &respEntry{}
		c.m[key] = e
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st == st && time.Since(e.at) < ResponseTTL {
		return e.body, nil
	}
	body, err := compute()
	if err != nil {
		return nil, err
	}
	e.body, e.at, e.st = body, time.Now(), st
	return body, nil
}

// writeJSONBytes sends an encoded JSON answer.
func writeJSONBytes(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	w.Write([]byte("\n"))
}
