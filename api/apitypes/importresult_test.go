package apitypes

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestReject: a rejected line is named in both lists, the same line, and
// no more than MaxRejections of them.
func TestReject(t *testing.T) {
	var res ImportResult
	for line := 1; line <= MaxRejections+5; line++ {
		res.Reject(line*2, errors.New("not a record"))
	}
	if len(res.Rejections) != MaxRejections || len(res.Errors) != MaxRejections {
		t.Fatalf("%d rejections, %d errors, want %d of each", len(res.Rejections), len(res.Errors), MaxRejections)
	}
	b, _ := json.Marshal(res)
	want := `"errors":["line 2: not a record",`
	if !strings.Contains(string(b), want) || !strings.Contains(string(b), `"rejections":[{"line":2,"error":"not a record"},{"line":4,`) {
		t.Errorf("%s, want errors and rejections naming line 2, 4...", b)
	}
	if b, _ := json.Marshal(ImportResult{Imported: 1}); string(b) != `{"imported":1,"duplicate":0,"rejected":0}` {
		t.Errorf("a clean import answers %s", b)
	}
}
