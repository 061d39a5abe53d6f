package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// fuzzServer is a Server over a real store of a few hundred reports.
func fuzzServer(f *testing.F) *Server {
	st, err := store.Open(filepath.Join(f.TempDir(), "se.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	im := store.NewImporter(st, nil)
	base := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3)
	for i := range 300 {
		b := fmt.Sprintf("2.9.%d,Apache/2.4.%d (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", i%9, i%60, i%256)
		rep, err := codec.Decode(codec.Encode(b, base.Unix()+int64(i), "status.modsecurity.org."), "status.modsecurity.org.")
		if err != nil {
			f.Fatal(err)
		}
		rec := &record.Record{
			Received: base.Add(time.Duration(i) * 15 * time.Minute),
			Zone:     "status.modsecurity.org.",
			Resolver: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}),
			Report:   rep,
		}
		if err := im.Add(rec, 0); err != nil {
			f.Fatal(err)
		}
	}
	if err := im.Flush(); err != nil {
		f.Fatal(err)
	}
	s := New()
	s.SetStore(st)
	s.SetConfig(Config{Token: testToken})
	return s
}

// FuzzAPIParams sends the API arbitrary paths, query strings, methods and
// Authorization headers. Whatever they are, the answer is never a 5xx and
// never a panic, an error is JSON {"error": "..."}, and no answer shows a
// stack trace or a file path of the server.
//
// A short run is part of CI; a long one:
//
//	go test -run=^$ -fuzz=FuzzAPIParams -fuzztime=30m ./api/
func FuzzAPIParams(f *testing.F) {
	now := time.Now().Unix()
	seeds := []struct{ method, path, query, auth string }{
		{"GET", "/api/0/" + fmt.Sprint(now), "", ""},
		{"GET", "/api/unique/0/" + fmt.Sprint(now), "", ""},
		{"GET", "/api/-1/99999999999999999999", "", ""},
		{"GET", "/api/1e9/0x10", "", ""},
		{"GET", "/api/v1/reports", "from=0&limit=1000", "Bearer " + testToken},
		{"GET", "/api/v1/reports", "limit=1001", "Bearer " + testToken},
		{"GET", "/api/v1/reports", "limit=-1&cursor=zz", "Bearer " + testToken},
		{"GET", "/api/v1/reports", "cursor=ffffffffffffffffffff&modsec=2.9.1", "Bearer " + testToken},
		{"GET", "/api/v1/reports", "from=0", "Bearer wrong"},
		{"GET", "/api/v1/reports", "", "bearer " + testToken + "\x00"},
		{"GET", "/api/v1/summary", "from=0&to=" + fmt.Sprint(now), ""},
		{"GET", "/api/v1/summary", "from=9999999999&to=0", ""},
		{"GET", "/api/v1/timeseries", "from=0&step=hour", ""},
		{"GET", "/api/v1/timeseries", "step=week&by=country&top=100000", ""},
		{"GET", "/api/v1/timeseries", "step=fortnight&by=%00", ""},
		{"GET", "/api/v1/map", "from=0&min=-5", ""},
		{"GET", "/api/v1/adoption", "from=0&to=" + fmt.Sprint(now), ""},
		{"GET", "/api/v1/churn", "from=0&step=month", ""},
		{"GET", "/api/v1/exposure", "from=0&step=week&zone=status.modsecurity.org", ""},
		{"GET", "/api/v1/exposure", "to=0&step=day&zone=%00", ""},
		{"GET", "/badge/exposed.svg", "from=0", ""},
		{"GET", "/api/v1/churn", "step=hour&to=8589934591", ""},
		{"GET", "/api/v1/timeseries", "count=installations&step=month&by=country", ""},
		{"GET", "/api/v1/public/daily", "", ""},
		{"GET", "/api/v1/public/daily/" + time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly) + ".json", "", ""},
		{"GET", "/api/v1/public/daily/9999-12-31.json", "", ""},
		{"GET", "/badge/latest-share.svg", "from=0", ""},
		{"GET", "/api/v1/export", "format=csv&from=0", "Bearer " + testToken},
		{"GET", "/api/v1/export", "format=xml", "Bearer " + testToken},
		{"GET", "/api/v1/backup", "", ""},
		{"GET", "/api/v1/openapi.json", "", ""},
		{"GET", "/static/app.js", "", ""},
		{"GET", "/static/../../etc/passwd", "", ""},
		{"GET", "/static/%2e%2e/%2e%2e/etc/passwd", "", ""},
		{"GET", "/static/..%2f..%2fetc%2fpasswd", "", ""},
		{"GET", "/static/vendor/", "", ""},
		{"GET", "/", "", ""},
		{"HEAD", "/api/v1/summary", "", ""},
		{"POST", "/api/v1/summary", "", ""},
		{"DELETE", "/api/v1/reports", "", "Bearer " + testToken},
		{"POST", "/api/v1/import", "", ""},
		{"OPTIONS", "/api/v1/summary", "", ""},
		{"GET", "/api/v1/reports", "from=0&from=1&to=%ff%fe", "Bearer " + testToken},
		// to=0: the default span before it starts in 1969, whose day number
		// once wrapped to about 4.3 billion (churn took 57 s).
		{"GET", "/api/v1/churn", "to=0", ""},
		{"GET", "/api/v1/churn", "to=0&step=month", ""},
		{"GET", "/api/v1/summary", "to=0", ""},
		{"GET", "/api/v1/timeseries", "to=0&count=installations", ""},
		{"GET", "/api/v1/adoption", "to=0", ""},
		{"GET", "/api/v1/map", "to=0", ""},
		{"GET", "/badge/latest.svg", "to=0", ""},
		{"GET", "/api/0/0", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.auth)
	}
	srv := fuzzServer(f)

	f.Fuzz(func(t *testing.T, method, path, query, auth string) {
		if !validMethod(method) {
			return
		}
		u := "http://api.test" + path
		if query != "" {
			u += "?" + query
		}
		req, err := http.NewRequest(method, u, nil)
		if err != nil {
			return // not a request a client could send
		}
		if auth != "" {
			if strings.ContainsAny(auth, "\r\n\x00") {
				return // net/http refuses such header values on the wire
			}
			req.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		res := w.Result()
		body := w.Body.String()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s: %d %s", method, u, res.StatusCode, body)
		}
		for _, leak := range []string{"goroutine ", ".go:", "panic", "runtime.", "/tmp/", "se.db"} {
			if strings.Contains(body, leak) && !strings.HasPrefix(path, "/static/") && path != "/" {
				t.Fatalf("%s %s: answer shows %q: %s", method, u, leak, body)
			}
		}
		if res.StatusCode >= 400 && method != http.MethodHead {
			var e struct {
				Error string `json:"error"`
			}
			if ct := res.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("%s %s: %d with Content-Type %q: %s", method, u, res.StatusCode, ct, body)
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("%s %s: %d body is not {\"error\": ...}: %s", method, u, res.StatusCode, body)
			}
		}
		if method != http.MethodGet && method != http.MethodHead && res.StatusCode < 400 &&
			!(method == http.MethodPost && req.URL.Path == "/api/v1/import") {
			t.Fatalf("%s %s: %d; the API is read-only", method, u, res.StatusCode)
		}
	})
}

func validMethod(m string) bool {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT":
		return true
	}
	return false
}
