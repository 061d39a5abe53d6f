package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/api/apitypes"
)

// TestReadToken: the read_token (what peers pull with) reads
// /api/v1/reports, and gets 403 with a JSON error on everything only the
// token opens: import, backup, export. The token keeps every right.
func TestReadToken(t *testing.T) {
	srv, st := storeServer(t, Config{Token: "full-token", ReadToken: "read-token"})
	line := `{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75","epoch":1795549302}` + "\n"
	tests := []struct {
		method, path, token string
		want                int
	}{
		{"GET", "/api/v1/reports", "read-token", 200},
		{"GET", "/api/v1/imports", "read-token", 200},
		{"GET", "/api/v1/imports", "", 401},
		{"GET", "/api/v1/reports", "full-token", 200},
		{"GET", "/api/v1/reports", "", 401},
		{"GET", "/api/v1/reports", "read-tokenx", 401},
		{"POST", "/api/v1/import", "read-token", 403},
		{"GET", "/api/v1/backup", "read-token", 403},
		{"GET", "/api/v1/export", "read-token", 403},
		{"POST", "/api/v1/import", "", 401},
		{"POST", "/api/v1/import", "full-token", 200},
		{"GET", "/api/v1/export", "full-token", 200},
	}
	for _, tc := range tests {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(line))
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s with %q: %d, want %d (%s)", tc.method, tc.path, tc.token, resp.StatusCode, tc.want, b)
			continue
		}
		if tc.want >= 400 {
			var e errorBody
			if json.Unmarshal(b, &e) != nil || e.Error == "" {
				t.Errorf("%s %s with %q: %d without a JSON error: %s", tc.method, tc.path, tc.token, tc.want, b)
			}
			if tc.want == 403 && !strings.Contains(e.Error, "read_token") {
				t.Errorf("403 does not say why: %s", e.Error)
			}
		}
	}
	if st.Count() != 1 {
		t.Errorf("%d records, want the one the token imported", st.Count())
	}
}

// TestImportZones: an import into a server of status.modsecurity.org takes
// only that zone's records; the others are rejected and named by line.
func TestImportZones(t *testing.T) {
	srv, _ := storeServer(t, Config{Token: "sekrit", Zones: []string{"Status.ModSecurity.org"}})
	rec := func(zone, modsec string, epoch string) string {
		return `{"received":"2026-11-25T08:00:00Z","zone":"` + zone + `","resolver":"198.51.100.9","beacon":"` + modsec +
			`,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75","epoch":` + epoch + `}` + "\n"
	}
	body := rec("status.modsecurity.org.", "2.9.7", "1795549302") + rec("evil.example.", "99.9.9", "1795549303") +
		rec("status.modsecurity.org.", "2.9.8", "1795549304")
	var res apitypes.ImportResult
	if code := postImport(t, srv, body, &res); code != 200 || res.Imported != 2 || res.Rejected != 1 || len(res.Errors) != 1 ||
		!strings.HasPrefix(res.Errors[0], `line 2: zone "evil.example." is not one this server serves`) {
		t.Errorf("import: %d %+v", code, res)
	}
}
