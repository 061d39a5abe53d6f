package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/client"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// feed sends reports to both servers as resolvers would and returns the
// distinct reports (beacon and epoch) sent.
func feed(t *testing.T, a, b *server) map[string]bool {
	t.Helper()
	beacon := func(i int) string {
		return fmt.Sprintf("2.9.7,Apache/2.4.%d (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", 50+i, i)
	}
	send := func(srv *server, i int, epoch int64) {
		t.Helper()
		if _, err := client.Send(context.Background(), beacon(i), client.Options{Server: srv.dns, Epoch: epoch, Timeout: 2 * time.Second}); err != nil {
			t.Fatalf("send %d to %s: %v", i, srv.dns, err)
		}
	}
	const epoch = 1795549302
	want := map[string]bool{} // beacon + epoch of each distinct report
	for i := 0; i < 6; i++ {  // both servers
		send(a, i, epoch+int64(i))
		send(b, i, epoch+int64(i))
		want[fmt.Sprint(beacon(i), epoch+int64(i))] = true
	}
	for i := 6; i < 10; i++ { // only a
		send(a, i, epoch+int64(i))
		want[fmt.Sprint(beacon(i), epoch+int64(i))] = true
	}
	for i := 10; i < 13; i++ { // only b
		send(b, i, epoch+int64(i))
		want[fmt.Sprint(beacon(i), epoch+int64(i))] = true
	}
	// The next start of installation 0 reaches b only; the 2014 format
	// without an epoch label reaches both, close together.
	send(b, 0, epoch+100)
	want[fmt.Sprint(beacon(0), epoch+100)] = true
	send(a, 13, -1)
	send(b, 13, -1)
	want[fmt.Sprint(beacon(13), "none")] = true

	return want
}

// Two authoritative servers for the same zone, as every real delegation has:
// resolvers spread the reports over both and retries reach both. Each server
// stores what it receives; export from both and import into one database
// gives every report exactly once.
func TestTwoServersMerge(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	want := feed(t, a, b)

	// The scheduled merge: stop (or back up) each server, export, import.
	a.stop()
	b.stop()
	dir := t.TempDir()
	merged := filepath.Join(dir, "merged.db")
	for _, srv := range []*server{a, b} {
		nd := filepath.Join(dir, filepath.Base(srv.db)+".ndjson")
		if code, _, errs := cli(t, "", "export", "--db", srv.db, "--out", nd); code != 0 {
			t.Fatalf("export %s: %s", srv.db, errs)
		}
		if code, out, errs := cli(t, "", "import", "--db", merged, nd); code != 0 {
			t.Fatalf("import %s: %s %s", nd, out, errs)
		} else {
			t.Logf("import %s: %s", filepath.Base(nd), strings.TrimSpace(out))
		}
	}
	checkMerged(t, merged, want)

	// The merge is idempotent and does not depend on the order.
	again := filepath.Join(dir, "again.db")
	for _, db := range []string{b.db, a.db, b.db} {
		_, nd, _ := cli(t, "", "export", "--db", db)
		if code, _, errs := cli(t, nd, "import", "--db", again); code != 0 {
			t.Fatal(errs)
		}
	}
	checkMerged(t, again, want)
}

func checkMerged(t *testing.T, path string, want map[string]bool) {
	t.Helper()
	_, out, _ := cli(t, "", "export", "--db", path)
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e record.Wire
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatal(err)
		}
		k := fmt.Sprint(e.Beacon, "none")
		if e.Epoch != nil {
			k = fmt.Sprint(e.Beacon, *e.Epoch)
		}
		got[k]++
		if e.Resolver != "127.0.0.1" || e.Zone != "status.modsecurity.org." {
			t.Errorf("%s: resolver %q zone %q", k, e.Resolver, e.Zone)
		}
	}
	for k, n := range got {
		if n != 1 || !want[k] {
			t.Errorf("%s: %d times in %s (wanted: %v)", k, n, filepath.Base(path), want[k])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s holds %d distinct reports, want %d", filepath.Base(path), len(got), len(want))
	}
}

// The same merge with the servers running: one pulled through its NDJSON
// export endpoint, the other through the backup endpoint (a consistent copy
// of its database, then exported).
func TestTwoServersMergeWhileRunning(t *testing.T) {
	a, b := startServer(t, "a"), startServer(t, "b")
	want := feed(t, a, b)
	dir := t.TempDir()
	merged := filepath.Join(dir, "merged.db")

	url := fmt.Sprintf("http://%s/api/v1/export?from=0&to=%d", a.api, time.Now().Unix()+60)
	if code, out, errs := cli(t, "", "import", "--db", merged, url); code != 0 || !strings.HasPrefix(out, "imported 11,") {
		t.Fatalf("import from a's API: exit %d, %q %q", code, out, errs)
	}
	cp := filepath.Join(dir, "b-copy.db")
	if code, _, errs := cli(t, "", "backup", "--api", "http://"+b.api, "--out", cp); code != 0 {
		t.Fatalf("backup of b through its API: %s", errs)
	}
	_, nd, _ := cli(t, "", "export", "--db", cp)
	if code, out, errs := cli(t, nd, "import", "--db", merged); code != 0 || out != "imported 4, duplicate 7, rejected 0\n" {
		t.Fatalf("import of b's backup: exit %d, %q %q", code, out, errs)
	}
	checkMerged(t, merged, want)

	// Or merge into a itself, still running: pull b's records, push to a.
	url = fmt.Sprintf("http://%s/api/v1/export?from=0&to=%d", b.api, time.Now().Unix()+60)
	for _, wantOut := range []string{"imported 4, duplicate 7, rejected 0\n", "imported 0, duplicate 11, rejected 0\n"} {
		if code, out, errs := cli(t, "", "import", "--api", "http://"+a.api, url); code != 0 || out != wantOut {
			t.Fatalf("import into a's API: exit %d, %q %q; want %q", code, out, errs, wantOut)
		}
	}
	cpA := filepath.Join(dir, "a-copy.db")
	if code, _, errs := cli(t, "", "backup", "--api", "http://"+a.api, "--out", cpA); code != 0 {
		t.Fatal(errs)
	}
	checkMerged(t, cpA, want)

	// The server's own database is still in use: the tool says so.
	if code, _, errs := cli(t, "", "backup", "--db", a.db, "--out", filepath.Join(dir, "x.db")); code != 1 || !strings.Contains(errs, "in use by a running server") {
		t.Errorf("backup --db of a running server: exit %d, %q", code, errs)
	}
}
