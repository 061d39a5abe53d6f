package api

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDamagedStoreAnswers503: the file is damaged under a running store
// (both meta pages overwritten, as a log written through a symlink to the
// database did). Before, GET /api/v1/reports closed the connection with no
// status (the stream aborted before its first byte), and later reads
// waited in bbolt for good. Now the first read takes the store down and
// every request gets 503 at once with a JSON error naming the file and the
// check and salvage commands.
func TestDamagedStoreAnswers503(t *testing.T) {
	f := newFixture(t, 300)
	path := f.st.Path()
	db, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := []byte(strings.Repeat("\xa5", 2*os.Getpagesize()))
	if _, err := db.WriteAt(junk, 0); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, p := range []string{
		"/api/v1/reports", // the first read: bbolt panics inside it
		"/api/v1/reports",
		"/api/v1/summary",
		"/api/v1/export",
		"/api/1700000000/1700086400",
		"/api/v1/public/daily",                 // the days the rollups count (Store.Days)
		"/api/v1/public/daily/2023-11-14.json", // a past day: HasDay reads the rollups
	} {
		start := time.Now()
		resp, err := http.Get(f.http.URL + p)
		if err != nil {
			t.Fatalf("GET %s: %v", p, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		var e errorBody
		if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &e) != nil ||
			!strings.Contains(e.Error, "statusengine check --db "+path) || !strings.Contains(e.Error, "statusengine salvage") {
			t.Errorf("GET %s: %s %.300s, want 503 with the damage and the commands", p, resp.Status, body)
		}
		if took > 2*time.Second {
			t.Errorf("GET %s took %v", p, took)
		}
	}
	if f.st.Down() == nil {
		t.Error("the store is not down")
	}
}
