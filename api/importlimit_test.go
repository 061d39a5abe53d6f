package api

import (
	"strings"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// TestImportLineLimit: the import's one line limit is store.MaxLine (1 MiB,
// as the README says): a 70 KB line and a line of exactly 1 MiB are taken
// (before: 400 "bufio.Scanner: token too long" past 64 KiB); a line one
// byte longer stops the import with 400 and a JSON error naming the line
// and the limit, the lines before it stored.
func TestImportLineLimit(t *testing.T) {
	srv, _ := storeServer(t, Config{Token: "sekrit"})
	// line is a valid record of n bytes: white space pads it.
	line := func(id string, n int) string {
		rec := `{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,` +
			id + `","epoch":1795549302}`
		return rec[:len(rec)-1] + strings.Repeat(" ", n-len(rec)) + "}"
	}
	post := func(body string) (int, map[string]any) {
		var out map[string]any
		return postImport(t, srv, body, &out), out
	}
	if code, out := post(line("01", 70000) + "\n" + line("02", store.MaxLine) + "\n" + line("03", store.MaxLine)); code != 200 || out["imported"] != 3.0 {
		t.Errorf("lines of 70 KB and of 1 MiB: %d %v, want 200 and 3 imported", code, out)
	}
	code, out := post(line("04", 300) + "\n" + line("05", 300) + "\n" + line("06", store.MaxLine+1) + "\n" + line("07", 300) + "\n")
	msg, _ := out["error"].(string)
	if code != 400 || msg != "import stopped: line 3: longer than the 1 MiB limit on an import line" || out["imported"] != 2.0 {
		t.Errorf("a line of 1 MiB + 1: %d %v, want 400 naming line 3 and the 1 MiB limit, 2 imported", code, out)
	}
	t.Logf("%d: %s", code, msg)
}
