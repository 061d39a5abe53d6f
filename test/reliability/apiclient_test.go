package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fillLine is one NDJSON import line: a distinct installation (40-hex id)
// received at received, as `statusengine export` writes it.
func fillLine(i int, received time.Time) []byte {
	b, _ := json.Marshal(map[string]any{
		"received": received.UTC().Format(time.RFC3339Nano),
		"zone":     zone,
		"resolver": "192.0.2.53",
		"beacon":   beacon(i),
		"epoch":    received.Unix(),
	})
	return append(b, '\n')
}

// fill stores n generated reports through POST /api/v1/import, in parts
// small enough for any version of the server, received one a second from
// 2025-01-01 on (base makes the installations distinct between calls).
func fill(t *testing.T, s *server, token string, base, n int) {
	t.Helper()
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	const part = 20000
	for start := 0; start < n; start += part {
		var body bytes.Buffer
		for i := start; i < min(n, start+part); i++ {
			body.Write(fillLine(base+i, t0.Add(time.Duration(base+i)*time.Second)))
		}
		req, _ := http.NewRequest("POST", "http://"+s.cfg.API+"/api/v1/import", &body)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			t.Fatalf("fill: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("fill: %s: %s", resp.Status, b)
		}
	}
}

// apiGet fetches path from the server's API, with token when not "".
func apiGet(t *testing.T, s *server, path, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+s.cfg.API+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// slowReader reads one API answer at a fixed rate, through a socket with a
// small receive buffer (as a slow client's is), until the body ends, the
// connection is cut, or stop is closed.
type slowReader struct {
	name string
	rate int // bytes a second

	fast atomic.Bool // read as fast as the data comes from now on

	mu      sync.Mutex
	status  int
	got     int64
	started time.Time
	ended   time.Duration // since started; 0 while reading
	err     error         // nil for a clean end of the body
	first   chan struct{} // closed at the first byte of the body (or the end)
}

// startSlowReader starts reading path at rate bytes a second.
func startSlowReader(t *testing.T, s *server, name, path, token string, rate int, stop <-chan struct{}) *slowReader {
	t.Helper()
	r := &slowReader{name: name, rate: rate, first: make(chan struct{})}
	dialer := &net.Dialer{Control: func(network, address string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
	}}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		var once sync.Once
		firstDone := func() { once.Do(func() { close(r.first) }) }
		defer firstDone()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.cfg.API+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r.mu.Lock()
		r.started = time.Now()
		r.mu.Unlock()
		resp, err := client.Do(req)
		if err != nil {
			r.finish(err)
			return
		}
		defer resp.Body.Close()
		r.mu.Lock()
		r.status = resp.StatusCode
		r.mu.Unlock()
		// A tenth of a second's worth at a time.
		buf := make([]byte, max(1, rate/10))
		for {
			if !r.fast.Load() {
				select {
				case <-stop:
					r.finish(fmt.Errorf("stopped by the test"))
					return
				case <-time.After(100 * time.Millisecond):
				}
			} else if len(buf) < 64<<10 {
				buf = make([]byte, 64<<10)
			}
			n, err := io.ReadFull(resp.Body, buf)
			r.mu.Lock()
			r.got += int64(n)
			r.mu.Unlock()
			if n > 0 {
				firstDone()
			}
			if err == io.ErrUnexpectedEOF {
				// A short last read: the body ended, cleanly (the next read
				// says io.EOF) or cut (a truncated chunked body repeats
				// io.ErrUnexpectedEOF).
				if _, again := resp.Body.Read(buf[:1]); again == io.EOF {
					err = io.EOF
				}
			}
			if err == io.EOF {
				r.finish(nil)
				return
			}
			if err != nil {
				r.finish(err)
				return
			}
		}
	}()
	go func() { <-stop; cancel() }()
	return r
}

func (r *slowReader) finish(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended == 0 {
		r.ended = time.Since(r.started)
		r.err = err
	}
}

// state is the reader's progress: bytes read, time to its end (0 while
// reading) and how it ended.
func (r *slowReader) state() (got int64, ended time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got, r.ended, r.err
}
