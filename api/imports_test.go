package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/api/apitypes"
)

// TestImportsCursor: GET /api/v1/imports takes the cursor of an earlier
// page, hex, once; anything else is a 400 with a JSON message, never a
// wrap to the first entry.
func TestImportsCursor(t *testing.T) {
	f := newFixture(t, 10)
	tests := []struct {
		query string
		code  int
	}{
		{"", http.StatusOK},
		{"?cursor=0", http.StatusOK},
		{"?cursor=ffffffffffffffff", http.StatusOK},
		{"?cursor=1&limit=1", http.StatusOK},
		{"?cursor=zz", http.StatusBadRequest},
		{"?cursor=-1", http.StatusBadRequest},
		{"?cursor=+1", http.StatusBadRequest},
		{"?cursor=0x1", http.StatusBadRequest},
		{"?cursor=" + strings.Repeat("0", 17), http.StatusBadRequest},
		{"?cursor=1&cursor=2", http.StatusBadRequest},
		{"?limit=0", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			if tc.code == http.StatusOK {
				var page apitypes.ImportsPage
				if code, _ := f.get(t, "/api/v1/imports"+tc.query, "", &page); code != tc.code || page.Reports == nil {
					t.Errorf("%s: %d, reports %v; want %d and a list", tc.query, code, page.Reports, tc.code)
				}
				return
			}
			var e errorBody
			if code, _ := f.get(t, "/api/v1/imports"+tc.query, "", &e); code != tc.code || e.Error == "" {
				t.Errorf("%s: %d %q, want %d with a message", tc.query, code, e.Error, tc.code)
			}
		})
	}
}
