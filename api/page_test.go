package api

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

func pageServer(t *testing.T) *Server {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New()
	s.SetStore(st)
	return s
}

func TestPage(t *testing.T) {
	s := pageServer(t)
	tests := []struct {
		path        string
		code        int
		contentType string // prefix
		cache       string
		body        string // substring
	}{
		{"/", 200, "text/html; charset=utf-8", "no-cache", GeoAttribution},
		{"/static/app.js", 200, "text/javascript", "public, max-age=3600", "textContent"},
		{"/static/style.css", 200, "text/css", "public, max-age=3600", ":root"},
		{"/static/vendor/world-atlas/countries-110m.json", 200, "application/json", "public, max-age=3600", `"Topology"`},
		{"/static/vendor/chartjs/LICENSE.md", 200, "text/", "public, max-age=3600", "MIT"},
		{"/static/vendor/d3/LICENSE.d3-geo", 200, "text/plain", "public, max-age=3600", "Bostock"},
		{"/static/index.html", 404, "application/json", "", "no such file"},
		{"/static/vendor/", 404, "application/json", "", "no such file"},
		{"/static/", 404, "application/json", "", "no such file"},
		{"/static/nope.js", 404, "application/json", "", "no such file"},
		{"/static/%2e%2e/page.go", 404, "application/json", "", "no such file"},
		{"/static/..%2fpage.go", 404, "application/json", "", "no such file"},
		{"/index.html", 404, "application/json", "", "no such endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("code %d, want %d", rec.Code, tc.code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.contentType) {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if tc.cache != "" && rec.Header().Get("Cache-Control") != tc.cache {
				t.Errorf("Cache-Control %q, want %q", rec.Header().Get("Cache-Control"), tc.cache)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("body lacks %q", tc.body)
			}
		})
	}
}

// TestPageDotDot sends paths the client did not clean, as a raw request line
// would: the mux must redirect or refuse, never serve a file outside static.
func TestPageDotDot(t *testing.T) {
	srv := httptest.NewServer(pageServer(t))
	defer srv.Close()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, p := range []string{"/static/../api.go", "/static/vendor/../../page.go", "/static//etc/passwd"} {
		req, _ := http.NewRequest("GET", srv.URL, nil)
		req.URL.Opaque = p // sent verbatim
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("%s: 200, want a redirect or 404", p)
		}
	}
}

func TestPageConditional(t *testing.T) {
	s := pageServer(t)
	for _, p := range []string{"/", "/static/app.js"} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		etag := rec.Header().Get("ETag")
		if etag == "" {
			t.Fatalf("%s: no ETag", p)
		}
		req := httptest.NewRequest("GET", p, nil)
		req.Header.Set("If-None-Match", etag)
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotModified {
			t.Errorf("%s: If-None-Match: code %d, want 304", p, rec.Code)
		}
	}
}

func TestPageHeaders(t *testing.T) {
	rec := httptest.NewRecorder()
	pageServer(t).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	// Every asset the page names is embedded: nothing comes from elsewhere.
	for _, src := range strings.Split(rec.Body.String(), `src="`)[1:] {
		u := src[:strings.IndexByte(src, '"')]
		if !strings.HasPrefix(u, "/static/") {
			t.Errorf("page loads %q from outside /static/", u)
			continue
		}
		r := httptest.NewRecorder()
		pageServer(t).ServeHTTP(r, httptest.NewRequest("GET", u, nil))
		if r.Code != http.StatusOK {
			t.Errorf("%s: code %d", u, r.Code)
		}
	}
}

func TestPageGzip(t *testing.T) {
	s := pageServer(t)
	get := func(p, accept, inm string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", p, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	for _, p := range []string{"/static/vendor/chartjs/chart.umd.min.js", "/static/app.js", "/static/vendor/world-atlas/countries-110m.json"} {
		plain := get(p, "", "")
		zipped := get(p, "br, gzip;q=0.8", "")
		if zipped.Header().Get("Content-Encoding") != "gzip" || zipped.Header().Get("Vary") != "Accept-Encoding" {
			t.Fatalf("%s: Content-Encoding %q, Vary %q", p, zipped.Header().Get("Content-Encoding"), zipped.Header().Get("Vary"))
		}
		if zipped.Header().Get("Content-Type") != plain.Header().Get("Content-Type") {
			t.Errorf("%s: gzip Content-Type %q, plain %q", p, zipped.Header().Get("Content-Type"), plain.Header().Get("Content-Type"))
		}
		size := zipped.Body.Len()
		zr, err := gzip.NewReader(zipped.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(body, plain.Body.Bytes()) {
			t.Errorf("%s: gzip body does not decode to the plain one (%v)", p, err)
		}
		if zipped.Header().Get("ETag") == plain.Header().Get("ETag") {
			t.Errorf("%s: one ETag for two encodings", p)
		}
		if r := get(p, "gzip", zipped.Header().Get("ETag")); r.Code != http.StatusNotModified {
			t.Errorf("%s: gzip revalidation: code %d", p, r.Code)
		}
		if r := get(p, "gzip;q=0", ""); r.Header().Get("Content-Encoding") != "" {
			t.Errorf("%s: gzip;q=0 still got %q", p, r.Header().Get("Content-Encoding"))
		}
		t.Logf("%s: %d bytes, %d gzipped", p, plain.Body.Len(), size)
	}
}
