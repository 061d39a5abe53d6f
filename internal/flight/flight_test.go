package flight

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func bytesOf(n int) func() ([]byte, error) {
	return func() ([]byte, error) { return make([]byte, n), nil }
}

func newBytesCache() *Cache[string, []byte] {
	return &Cache[string, []byte]{Size: func(b []byte) int64 { return int64(len(b)) }}
}

// Bounds: the entry bound drops the least recently used, a value over a
// quarter of the bytes is served and not kept (unless KeepLarge), the bytes
// bound drops the least recently used until it holds.
func TestBounds(t *testing.T) {
	c := newBytesCache()
	b := Bounds{Entries: 3, Bytes: 1000}
	tests := []struct {
		key       string
		size      int
		wantBytes int64
		wantLen   int
	}{
		{"a", 200, 200, 1},
		{"b", 200, 400, 2},
		{"c", 200, 600, 3},
		{"a", 0, 600, 3},    // a hit: a is the most recently used
		{"d", 200, 600, 3},  // the entry bound drops b
		{"e", 251, 600, 3},  // over a quarter of the bytes: served, not kept
		{"f", 250, 650, 3},  // c goes
		{"g", 250, 700, 3},  // a goes
		{"j", 1000, 700, 3}, // too big
	}
	for _, tc := range tests {
		v, err := c.Get(tc.key, b, bytesOf(tc.size))
		if err != nil || (tc.size > 0 && len(v) != tc.size) {
			t.Fatalf("%s: %d bytes, %v", tc.key, len(v), err)
		}
		if c.Bytes() != tc.wantBytes || c.Len() != tc.wantLen {
			t.Errorf("after %s: %d bytes in %d entries, want %d in %d", tc.key, c.Bytes(), c.Len(), tc.wantBytes, tc.wantLen)
		}
	}
	// KeepLarge keeps the newest whatever its size, and the bytes bound
	// then drops all the others.
	if _, err := c.Get("huge", Bounds{Entries: 3, Bytes: 1000, KeepLarge: true}, bytesOf(5000)); err != nil {
		t.Fatal(err)
	}
	if c.Bytes() != 5000 || c.Len() != 1 {
		t.Errorf("after a large value kept: %d bytes in %d entries, want 5000 in 1", c.Bytes(), c.Len())
	}
}

// Concurrent callers of one key cost one computation and share its value.
func TestSingleFlight(t *testing.T) {
	c := newBytesCache()
	var computed atomic.Int32
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := c.Get("k", Bounds{}, func() ([]byte, error) {
				computed.Add(1)
				<-gate
				return []byte("v"), nil
			})
			if err != nil || string(v) != "v" {
				t.Errorf("got %q, %v", v, err)
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if n := computed.Load(); n != 1 {
		t.Errorf("%d computations for 20 concurrent callers, want 1", n)
	}
}

// A computation that panics or fails ends in an error for its callers and
// is not kept: the next caller computes again instead of waiting forever.
func TestFailuresNotKept(t *testing.T) {
	c := newBytesCache()
	boom := errors.New("boom")
	for _, fail := range []func() ([]byte, error){
		func() ([]byte, error) { panic("boom") },
		func() ([]byte, error) { return nil, boom },
	} {
		if _, err := c.Get("k", Bounds{}, fail); err == nil {
			t.Fatal("a failed computation answered without an error")
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Get("k", Bounds{}, bytesOf(1))
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("next caller: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the key is wedged: the next caller still waits")
		}
		c.Inspect("k", func(e *Entry[[]byte]) {
			if e != nil {
				e.At = time.Time{}
			}
		})
		c.Fresh = func(e *Entry[[]byte], now time.Time) bool { return !e.At.IsZero() }
	}
}

// A stale value is served at once while one goroutine computes it again,
// and the new value replaces it; a value neither fresh nor stale is
// computed while the caller waits.
func TestStale(t *testing.T) {
	c := &Cache[string, int]{
		Fresh:        func(e *Entry[int], now time.Time) bool { return now.Sub(e.At) < time.Hour },
		Stale:        func(e *Entry[int], now time.Time) bool { return now.Sub(e.At) < 2*time.Hour },
		MaxRefreshes: 1,
	}
	n := 0
	next := func() (int, error) { n++; return n, nil }
	if v, _ := c.Get("k", Bounds{}, next); v != 1 {
		t.Fatalf("first value %d", v)
	}
	age := func(d time.Duration) { c.Inspect("k", func(e *Entry[int]) { e.At = time.Now().Add(-d) }) }
	age(90 * time.Minute)
	gate := make(chan struct{})
	slow := func() (int, error) { <-gate; return next() }
	if v, _ := c.Get("k", Bounds{}, slow); v != 1 {
		t.Errorf("stale: got %d, want the stale 1 at once", v)
	}
	if v, _ := c.Get("k", Bounds{}, slow); v != 1 { // one refresh under way: no second
		t.Errorf("stale again: got %d, want 1", v)
	}
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, _ := c.Get("k", Bounds{}, next)
		if v == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refreshed value never came: %d", v)
		}
		time.Sleep(5 * time.Millisecond)
	}
	age(3 * time.Hour)
	if v, _ := c.Get("k", Bounds{}, next); v != 3 {
		t.Errorf("too stale: got %d, want 3 computed now", v)
	}
}
