package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

func TestBackup(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, _ := codec.ParseBeacon("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75")
	for i := range 3 {
		rep.Epoch, rep.HasEpoch = 1795549302+int64(i), true
		if _, err := st.Submit(&record.Record{Received: time.Now(), Zone: "status.modsecurity.org.", Report: rep}); err != nil {
			t.Fatal(err)
		}
	}
	s := New()
	s.SetStore(st)
	s.SetConfig(Config{Token: "sekrit"})
	srv := httptest.NewServer(s)
	defer srv.Close()

	get := func(token string) *http.Response {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/backup", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if resp := get(""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without token: %s, want 401", resp.Status)
	}
	resp := get("sekrit")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("with token: %s %v", resp.Status, resp.Header)
	}
	out := filepath.Join(t.TempDir(), "copy.db")
	f, _ := os.Create(out)
	n, err := io.Copy(f, resp.Body)
	f.Close()
	if err != nil || strconv.FormatInt(n, 10) != resp.Header.Get("Content-Length") {
		t.Fatalf("copied %d bytes (%v), Content-Length %s", n, err, resp.Header.Get("Content-Length"))
	}
	cp, err := store.Open(out, store.Options{})
	if err != nil {
		t.Fatalf("the copy does not open: %v", err)
	}
	defer cp.Close()
	if cp.Count() != 3 {
		t.Errorf("the copy holds %d reports, want 3", cp.Count())
	}
}

func TestImport(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New()
	s.SetStore(st)
	s.SetConfig(Config{Token: "sekrit"})
	srv := httptest.NewServer(s)
	defer srv.Close()

	body := `{"received":"2026-11-25T08:00:00.123456789Z","zone":"status.modsecurity.org.","beacon":"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75","epoch":1795549302,"resolver":"192.0.2.53"}
not json
`
	post := func(token string) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/api/v1/import", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(""); code != http.StatusUnauthorized {
		t.Errorf("without token: %d, want 401", code)
	}
	if code, b := post("sekrit"); code != 200 || !strings.Contains(b, `"imported":1,"duplicate":0,"rejected":1,"errors":["line 2: invalid character`) {
		t.Errorf("import: %d %s", code, b)
	}
	if code, b := post("sekrit"); code != 200 || !strings.Contains(b, `"imported":0,"duplicate":1,"rejected":1`) {
		t.Errorf("import again: %d %s", code, b)
	}
	if st.Count() != 1 {
		t.Errorf("Count = %d, want 1", st.Count())
	}
}
