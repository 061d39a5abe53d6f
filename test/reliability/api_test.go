package reliability

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const apiToken = "s3cret-token-for-the-reliability-test"

// TestAPIHardening holds the running server's side listener to the issue's
// list: read-only, the token, slow clients, request sizes, range and page
// limits, no internals in errors, no escape from the static files, no CORS.
func TestAPIHardening(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	for i := range 30 {
		query(t, s.dnsAddr(), "udp", nextName(8000+i), dns.TypeA, dns.ClassINET)
	}
	base := "http://" + s.cfg.API
	now := time.Now().Unix() + 60
	tried := 0

	type answer struct {
		code int
		hdr  http.Header
		body string
	}
	do := func(method, path string, hdr map[string]string, body io.Reader) answer {
		t.Helper()
		req, err := http.NewRequest(method, base+path, body)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		tried++
		return answer{resp.StatusCode, resp.Header, string(b)}
	}
	bearer := map[string]string{"Authorization": "Bearer " + apiToken}

	// Read-only: every route, every writing method, with the token: 405.
	routes := []string{"/", "/static/app.js", fmt.Sprintf("/api/0/%d", now), fmt.Sprintf("/api/unique/0/%d", now),
		"/api/v1/reports", "/api/v1/export", "/api/v1/summary", "/api/v1/timeseries", "/api/v1/map",
		"/api/v1/openapi.json", "/api/v1/backup", "/api/v1/nothing"}
	for _, r := range routes {
		for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			a := do(m, r, bearer, strings.NewReader("{}"))
			if a.code != http.StatusMethodNotAllowed || a.hdr.Get("Allow") == "" {
				t.Errorf("%s %s: %d (Allow %q), want 405", m, r, a.code, a.hdr.Get("Allow"))
			}
		}
	}
	// The one documented writer, the import, needs the token.
	if a := do("POST", "/api/v1/import", nil, strings.NewReader("")); a.code != http.StatusUnauthorized {
		t.Errorf("import without token: %d", a.code)
	}
	if a := do("PUT", "/api/v1/import", bearer, strings.NewReader("")); a.code != http.StatusMethodNotAllowed {
		t.Errorf("PUT import: %d", a.code)
	}
	if n := countAllAPI(t, base, bearer); n != 30 {
		t.Errorf("%d reports after the writing requests, want the 30 sent", n)
	}

	// The token: raw data only with it, compared in constant time.
	for _, h := range []map[string]string{nil, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer " + apiToken + "x"},
		{"Authorization": "Bearer " + apiToken[:len(apiToken)-1]}, {"Authorization": "Basic " + apiToken}, {"Authorization": apiToken}} {
		for _, p := range []string{"/api/v1/reports", "/api/v1/export", "/api/v1/backup"} {
			if a := do("GET", p, h, nil); a.code != http.StatusUnauthorized {
				t.Errorf("GET %s with %v: %d, want 401", p, h, a.code)
			}
		}
	}
	if a := do("GET", "/api/v1/reports", bearer, nil); a.code != http.StatusOK {
		t.Errorf("GET reports with the token: %d", a.code)
	}
	if a := do("GET", fmt.Sprintf("/api/0/%d", now), nil, nil); strings.Contains(a.body, `"beacon"`) || strings.Contains(a.body, "127.0.0.1") {
		t.Errorf("the public compatible endpoint shows raw beacons or resolver addresses: %.300s", a.body)
	}
	src, err := os.ReadFile(filepath.Join(moduleRoot(), "api", "auth.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(src, []byte("subtle.ConstantTimeCompare")) || regexp.MustCompile(`given\s*==\s*token|token\s*==\s*given`).Match(src) {
		t.Error("api/auth.go must compare the token with crypto/subtle.ConstantTimeCompare, never ==")
	}

	// Range and page limits.
	for _, p := range []string{"/api/v1/reports?limit=1001", "/api/v1/reports?limit=0", "/api/v1/reports?limit=-1",
		"/api/v1/reports?limit=99999999999999999999", "/api/v1/reports?cursor=nothex", "/api/v1/reports?from=10&to=5",
		"/api/v1/timeseries?from=0&to=8589934591&step=hour", "/api/v1/timeseries?step=minute", "/api/v1/summary?from=-1",
		"/api/v1/summary?to=99999999999999", "/api/v1/export?format=xml", "/api/10/5", "/api/x/1", "/api/v1/map?from=abc"} {
		a := do("GET", p, bearer, nil)
		if a.code != http.StatusBadRequest || !isJSONError(a.body) {
			t.Errorf("GET %s: %d %.200s, want 400 with a JSON error", p, a.code, a.body)
		}
		checkNoInternals(t, p, a.body)
	}

	// Static files: no way out with .., encoded or not, or a backslash.
	for _, p := range []string{"/static/../../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..%2f..%2fetc%2fpasswd",
		"/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/static/..\\..\\etc\\passwd", "/static//etc/passwd", "/static/./../api.go",
		"/static/vendor/../../../go.mod", "/static/%252e%252e/etc/passwd", "/static/", "/static/vendor/", "/static/index.html",
		"/..%2f..%2fetc/passwd", "/static/app.js%00.png"} {
		code, body := rawGet(t, s.cfg.API, p)
		tried++
		if strings.Contains(body, "root:") || strings.Contains(body, "module github.com") || strings.Contains(body, "package api") {
			t.Errorf("GET %s escaped the static files: %d %.200s", p, code, body)
		}
		if code == http.StatusOK {
			t.Errorf("GET %s: 200, want no file", p)
		}
		checkNoInternals(t, p, body)
	}

	// No CORS headers unless configured (it is not here).
	for _, p := range []string{"/api/v1/summary", fmt.Sprintf("/api/0/%d", now), "/"} {
		a := do("GET", p, map[string]string{"Origin": "https://evil.example"}, nil)
		for k := range a.hdr {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("GET %s from another origin: %s: %s", p, k, a.hdr.Get(k))
			}
		}
	}

	// Request sizes: a header (or URL) over the limit gets 431, an import
	// line over the limit 400, and the server goes on.
	if a := do("GET", "/api/v1/summary", map[string]string{"X-Big": strings.Repeat("a", 64<<10)}, nil); a.code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", a.code)
	}
	if a := do("GET", "/api/v1/summary?x="+strings.Repeat("a", 64<<10), nil, nil); a.code != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB URL: %d, want 431", a.code)
	}
	if a := do("POST", "/api/v1/import", bearer, strings.NewReader(strings.Repeat("x", 8<<20)+"\n")); a.code != http.StatusBadRequest || !isJSONError(a.body) {
		t.Errorf("import of an 8 MiB line: %d %.200s, want 400", a.code, a.body)
	}

	// Slow clients: a connection that trickles its header is cut by
	// ReadHeaderTimeout, and one that sends nothing too; both leave the
	// server answering others.
	for _, trickle := range []bool{true, false} {
		conn, err := net.Dial("tcp", s.cfg.API)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		fmt.Fprintf(conn, "GET /api/v1/summary HTTP/1.1\r\nHost: x\r\n")
		closed := make(chan time.Duration, 1)
		go func() {
			buf := make([]byte, 1024)
			conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			for {
				if _, err := conn.Read(buf); err != nil {
					closed <- time.Since(start)
					return
				}
			}
		}()
		var cut time.Duration
	loop:
		for {
			select {
			case cut = <-closed:
				break loop
			case <-time.After(500 * time.Millisecond):
				if trickle {
					conn.Write([]byte("X"))
				}
			}
		}
		conn.Close()
		tried++
		if cut > 10*time.Second {
			t.Errorf("slow client (trickle %v) held its connection %v", trickle, cut)
		}
		t.Logf("slow client (trickle %v) cut after %v", trickle, cut.Round(100*time.Millisecond))
		if a := do("GET", "/api/v1/summary", nil, nil); a.code != http.StatusOK {
			t.Errorf("after a slow client: %d", a.code)
		}
	}
	t.Logf("%d API requests tried: writing methods 405, token 401 without it, bad ranges and pages 400, static escapes refused, no CORS, oversized requests refused, slow clients cut", tried)
}

func isJSONError(body string) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal([]byte(body), &e) == nil && e.Error != ""
}

// checkNoInternals fails on stack traces and server paths in an answer.
func checkNoInternals(t *testing.T, what, body string) {
	t.Helper()
	for _, leak := range []string{"goroutine ", ".go:", "panic", "runtime.", "/tmp/", "/work/", "se.db", "/root"} {
		if strings.Contains(body, leak) {
			t.Errorf("%s: the answer shows %q: %.300s", what, leak, body)
		}
	}
}

// rawGet sends path exactly as given (net/http's client would clean it).
func rawGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, addr)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func countAllAPI(t *testing.T, base string, hdr map[string]string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/0/%d", base, time.Now().Unix()+60), nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct {
		Amount int `json:"amount"`
	}
	json.NewDecoder(resp.Body).Decode(&v)
	return v.Amount
}
