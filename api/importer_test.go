package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// TestImportRejections: the import's answer names each rejected line twice,
// as an object of rejections ({"line": N, "error": "..."}, N the body's line
// from 1) and as the "line N: ..." string of errors that older clients read;
// both the same first apitypes.MaxRejections lines, also on an answer that
// stops the import.
func TestImportRejections(t *testing.T) {
	srv, _ := storeServer(t, Config{Token: "sekrit", Zones: []string{"status.modsecurity.org."}})
	n := 0
	good := func() string { // a new valid record each time
		n++
		return fmt.Sprintf(`{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02d","epoch":%d}`, n, 1795549302+n)
	}
	const (
		notJSON   = `{not json`
		otherZone = `{"received":"2026-11-25T08:00:00Z","zone":"evil.example.","beacon":"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75","epoch":1795549302}`
	)
	tests := []struct {
		name     string
		lines    func() []string
		code     int
		imported int
		rejected int
		want     []int  // the lines named, in order
		stopped  string // the answer's error
	}{
		{"clean", func() []string { return []string{good(), good()} }, 200, 2, 0, nil, ""},
		{"two bad lines", func() []string { return []string{good(), notJSON, good(), good(), otherZone} }, 200, 3, 2, []int{2, 5}, ""},
		{"more bad lines than named", func() []string {
			var l []string
			for range apitypes.MaxRejections + 3 {
				l = append(l, notJSON, good())
			}
			return l
		}, 200, apitypes.MaxRejections + 3, apitypes.MaxRejections + 3, []int{1, 3, 5, 7, 9, 11, 13, 15, 17, 19}, ""},
		{"stopped by a long line", func() []string {
			return []string{otherZone, good(), strings.Repeat(" ", store.MaxLine+1)}
		}, 400, 1, 1, []int{1}, "import stopped: line 3: longer than the 1 MiB limit on an import line"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var res apitypes.ImportResult
			code := postImport(t, srv, strings.Join(tc.lines(), "\n")+"\n", &res)
			if code != tc.code || res.Imported != tc.imported || res.Rejected != tc.rejected || res.Error != tc.stopped {
				t.Fatalf("%d %+v, want %d, %d imported, %d rejected, error %q", code, res, tc.code, tc.imported, tc.rejected, tc.stopped)
			}
			if len(res.Rejections) != len(tc.want) || len(res.Errors) != len(tc.want) {
				t.Fatalf("rejections %+v, errors %q: want lines %v", res.Rejections, res.Errors, tc.want)
			}
			for i, line := range tc.want {
				r := res.Rejections[i]
				if r.Line != line || r.Error == "" || res.Errors[i] != fmt.Sprintf("line %d: %s", line, r.Error) {
					t.Errorf("rejection %d: %+v and %q, want line %d in both", i, r, res.Errors[i], line)
				}
			}
		})
	}
}

// storeServer serves an API with cfg on a fresh store (pageServer's), on
// loopback, until the test ends.
func storeServer(t *testing.T, cfg Config) (*httptest.Server, *store.Store) {
	t.Helper()
	s := pageServer(t)
	s.SetConfig(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return srv, s.state.Load().store
}

// postImport posts body to srv's import with the token sekrit, decodes the
// answer into v and says its status.
func postImport(t *testing.T, srv *httptest.Server, body string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+"/api/v1/import", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer sekrit")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}
