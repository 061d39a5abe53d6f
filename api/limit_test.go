package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// blockingServer is a Server over an empty store with two test routes that
// hold their request until release is closed: /test/cheap and /test/costly
// (an expensive one).
func blockingServer(t *testing.T, cfg Config) (s *Server, base string, release chan struct{}) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s = New()
	s.Configure(st, cfg)
	release = make(chan struct{})
	hold := func(w http.ResponseWriter, r *http.Request) { <-release }
	s.mux.HandleFunc("GET /test/cheap", hold)
	s.mux.HandleFunc("GET /test/costly", s.expensive(hold, nil))
	hs := httptest.NewUnstartedServer(s)
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return s, hs.URL, release
}

func TestConcurrencyLimits(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		held     string // path of the requests that fill the slots
		heldN    int
		probe    string // then this request...
		token    bool   // ...with the token
		wantCode int    // ...gets this
		wantWait string // and Retry-After
	}{
		{"expensive full", Config{Limits: Limits{MaxExpensive: 2}}, "/test/costly", 2, "/test/costly", false, 503, "5"},
		{"expensive full, cheap served", Config{Limits: Limits{MaxExpensive: 2}}, "/test/costly", 2, "/api/v1/openapi.json", false, 200, ""},
		{"public full, token has its own", Config{Token: testToken, Limits: Limits{MaxExpensive: 2}}, "/test/costly", 2, "/test/costly", true, -1, ""},
		{"all requests full", Config{Limits: Limits{MaxRequests: 3}}, "/test/cheap", 3, "/api/v1/openapi.json", false, 503, "2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Limits.QueueWait = 200 * time.Millisecond
			s, base, release := blockingServer(t, tc.cfg)
			var wg sync.WaitGroup
			for range tc.heldN {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if resp, err := http.Get(base + tc.held); err == nil {
						resp.Body.Close()
					}
				}()
			}
			// Wait until the held requests have their slots.
			st := s.state.Load()
			sem := st.all
			if tc.held == "/test/costly" {
				sem = st.public
			}
			for deadline := time.Now().Add(10 * time.Second); len(sem.slots) < tc.heldN; {
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d requests hold a slot", len(sem.slots), tc.heldN)
				}
				time.Sleep(5 * time.Millisecond)
			}
			req, _ := http.NewRequest("GET", base+tc.probe, nil)
			if tc.token {
				req.Header.Set("Authorization", "Bearer "+testToken)
			}
			client := &http.Client{Timeout: 3 * time.Second}
			resp, err := client.Do(req)
			switch {
			case tc.wantCode == -1: // served: held like the others
				if err == nil {
					resp.Body.Close()
					t.Fatalf("%s: %s, want it to be served (and held)", tc.probe, resp.Status)
				}
			case err != nil:
				t.Fatalf("%s: %v", tc.probe, err)
			default:
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var e errorBody
				if resp.StatusCode != tc.wantCode || resp.Header.Get("Retry-After") != tc.wantWait {
					t.Errorf("%s: %s Retry-After %q, want %d %q", tc.probe, resp.Status, resp.Header.Get("Retry-After"), tc.wantCode, tc.wantWait)
				}
				if tc.wantCode == 503 && (json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "busy")) {
					t.Errorf("503 body %q, want a JSON error saying busy", body)
				}
			}
			close(release)
			wg.Wait()
			if n := len(st.all.slots) + len(st.public.slots) + len(st.private.slots); n != 0 {
				t.Errorf("%d slots still taken after the requests ended", n)
			}
		})
	}
}

func TestReloadSwapsConfigAtOnce(t *testing.T) {
	s, base, release := blockingServer(t, Config{Token: "old"})
	// A request under way keeps what it started with; the next one sees the
	// new token.
	started := make(chan struct{})
	s.mux.HandleFunc("GET /test/token", func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		fmt.Fprint(w, s.configOf(r).Token)
	})
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/test/token")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-started
	s.SetConfig(Config{Token: "new"})
	for token, want := range map[string]int{"old": 401, "new": 200} {
		req, _ := http.NewRequest("GET", base+"/api/v1/reports", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("token %s after the swap: %d, want %d", token, resp.StatusCode, want)
		}
	}
	close(release)
	if g := <-got; g != "old" {
		t.Errorf("the request under way saw token %q, want the one it started with", g)
	}
}

// The answer cache takes its bounds from the configuration's Limits (the
// bounds themselves are internal/flight's TestBounds).
func TestCacheBounded(t *testing.T) {
	lim := &Limits{CacheBytes: 1000, CacheEntries: 3}
	st := &store.Store{}
	var c respCache
	for _, k := range []string{"a", "b", "c", "d"} {
		c.get(k, st, lim, func() ([]byte, error) { return make([]byte, 200), nil })
	}
	c.get("big", st, lim, func() ([]byte, error) { return make([]byte, 251), nil })
	if c.c.Len() != 3 || c.c.Bytes() != 600 {
		t.Errorf("%d entries of %d bytes, want 3 of 600 (CacheEntries 3; 251 bytes is over a quarter of CacheBytes)", c.c.Len(), c.c.Bytes())
	}
	// Another store (a reload's) never gets this one's answers.
	b, _ := c.get("a", &store.Store{}, lim, func() ([]byte, error) { return []byte("other"), nil })
	if string(b) != "other" {
		t.Errorf("a replaced store's answer was served: %q", b)
	}
	// Concurrent requests for one key cost one computation: see
	// internal/flight's TestSingleFlight.
}

func TestPace(t *testing.T) {
	t0 := time.Unix(1700000000, 0)
	p := pace{start: t0, timeout: 30 * time.Second, rate: 32 << 10}
	tests := []struct {
		n    int64
		want time.Duration
	}{
		{0, 30 * time.Second},
		{32 << 10, 31 * time.Second},
		{1 << 20, 62 * time.Second},
		{60 << 20, 30*time.Second + 1920*time.Second},
	}
	for _, tc := range tests {
		if got := p.deadline(tc.n).Sub(t0); got != tc.want {
			t.Errorf("deadline after %d bytes: %v, want %v", tc.n, got, tc.want)
		}
	}
}

// TestSlowReaderIsCut: an answer of any size keeps its connection only while
// the client reads at MinRate on average, whether the handler writes it in
// small pieces or in one Write.
func TestSlowReaderIsCut(t *testing.T) {
	const size = 64 << 20
	for _, chunk := range []int{32 << 10, size} {
		t.Run(fmt.Sprintf("writes of %d KiB", chunk>>10), func(t *testing.T) {
			s, base, _ := blockingServer(t, Config{Limits: Limits{WriteTimeout: 300 * time.Millisecond, MinRate: 256 << 10}})
			s.mux.HandleFunc("GET /test/big", func(w http.ResponseWriter, r *http.Request) {
				b := make([]byte, chunk)
				for n := 0; n < size; n += len(b) {
					if _, err := w.Write(b); err != nil {
						return
					}
				}
			})
			// The client's own receive buffer is small, as a slow reader's
			// is: what the kernels buffer counts as sent.
			client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
				Control: func(network, address string, c syscall.RawConn) error {
					return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 32<<10) })
				},
			}).DialContext}}
			resp, err := client.Get(base + "/test/big")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			// 16 KiB every 100 ms: 160 KiB/s, below the 256 KiB/s asked.
			start := time.Now()
			var got int64
			buf := make([]byte, 16<<10)
			for time.Since(start) < 60*time.Second {
				n, err := io.ReadFull(resp.Body, buf)
				got += int64(n)
				if err != nil {
					t.Logf("cut after %v and %d KiB: %v", time.Since(start).Round(time.Millisecond), got>>10, err)
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Fatalf("a client reading 160 KiB/s still connected after %v (%d KiB of %d)", time.Since(start), got>>10, size>>10)
		})
	}
}

// A computation that panics ends in an error for its request and those
// waiting for it; the next request for the key computes again instead of
// waiting forever.
func TestCachePanicDoesNotWedgeKey(t *testing.T) {
	lim := &Limits{CacheBytes: 1000, CacheEntries: 3}
	st := &store.Store{}
	var c respCache
	if _, err := c.get("k", st, lim, func() ([]byte, error) { panic("boom") }); err == nil {
		t.Fatal("a panicking computation answered without an error")
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.get("k", st, lim, func() ([]byte, error) { return []byte("ok"), nil })
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("second request: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the key is wedged: the second request still waits")
	}
}
