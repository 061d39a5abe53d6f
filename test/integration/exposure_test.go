package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coredns/coredns/test"
)

// advisoryRecord is an OSV record of ModSecurity, fixed in fixed.
func advisoryRecord(id, fixed string) string {
	return fmt.Sprintf(`{"id":%q,"affected":[{"package":{"name":"ModSecurity"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":%q}]}]}]}`, id, fixed)
}

// exposureSet reads which advisory set /api/v1/exposure counts against.
func exposureSet(t *testing.T, apiAddr string) (records int, isDefault bool) {
	t.Helper()
	resp, err := http.Get("http://" + apiAddr + "/api/v1/exposure?from=0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Set struct {
			Records int
			Default bool
		} `json:"advisory_set"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&e) != nil {
		t.Fatalf("exposure: %s", resp.Status)
	}
	return e.Set.Records, e.Set.Default
}

// TestExposureAdvisoriesReload: the api block's advisories are read with
// the Corefile, read again on reload, and a malformed record fails the
// reload, naming the file and the record, while the running set goes on.
func TestExposureAdvisoriesReload(t *testing.T) {
	dir := t.TempDir()
	db, file := filepath.Join(dir, "se.db"), filepath.Join(dir, "advisories.json")
	port, apiAddr := freePort(t), "127.0.0.1:"+freePort(t)
	conf := func(prop string) string {
		return strings.Replace(corefile(port, apiAddr, db, 60), "api "+apiAddr, "api "+apiAddr+" {\n            "+prop+"\n        }", 1)
	}
	inst, err := test.CoreDNSServer(conf("max_requests 16"))
	if err != nil {
		t.Fatal(err)
	}
	if n, def := exposureSet(t, apiAddr); !def || n == 0 {
		t.Fatalf("without advisories: %d records, default %v; want the default set", n, def)
	}

	os.WriteFile(file, []byte(advisoryRecord("LOCAL-1", "2.9.8")), 0o644)
	inst, err = inst.Restart(test.NewInput(conf("advisories " + file)))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if n, def := exposureSet(t, apiAddr); def || n != 1 {
		t.Fatalf("advisories FILE: %d records, default %v; want 1 of its own", n, def)
	}

	// The file changes: a reload reads it again.
	os.WriteFile(file, []byte("["+advisoryRecord("LOCAL-1", "2.9.8")+","+advisoryRecord("LOCAL-2", "2.9.9")+"]"), 0o644)
	inst, err = inst.Restart(test.NewInput(conf("advisories " + file)))
	if err != nil {
		t.Fatalf("reload: %v", err)
	}
	if n, _ := exposureSet(t, apiAddr); n != 2 {
		t.Fatalf("after the file changed: %d records, want 2", n)
	}

	// A malformed record: the reload fails and says where; the running
	// configuration goes on.
	os.WriteFile(file, []byte("["+advisoryRecord("LOCAL-1", "2.9.8")+","+advisoryRecord("LOCAL-3", "2.9.x")+"]"), 0o644)
	_, err = inst.Restart(test.NewInput(conf("advisories " + file)))
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), `record 2 ("LOCAL-3")`) {
		t.Fatalf("reload with a malformed record: %v; want an error naming %s and record 2", err, file)
	}
	if n, _ := exposureSet(t, apiAddr); n != 2 {
		t.Fatalf("after the failed reload: %d records, want the running 2", n)
	}
	inst.Stop()
	inst.ShutdownCallbacks()
}
