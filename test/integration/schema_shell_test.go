package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// shellLines returns the name= and dig lines of the shell client block of
// docs/schemas.md, as written: the test runs them, so the doc cannot drift.
func shellLines(t *testing.T) (nameLine, digLine string) {
	t.Helper()
	doc, err := os.ReadFile("../../docs/schemas.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- shell-client:")
	if !ok {
		t.Fatal("docs/schemas.md has no <!-- shell-client: --> block")
	}
	_, block, _ = strings.Cut(block, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	for _, l := range strings.Split(block, "\n") {
		switch {
		case strings.HasPrefix(l, "name="):
			nameLine = l
		case strings.HasPrefix(l, "dig "):
			digLine = l
		}
	}
	if nameLine == "" || digLine == "" {
		t.Fatalf("the shell client block of docs/schemas.md lacks a name= or dig line:\n%s", block)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "\n    "+nameLine+"\n") {
		t.Errorf("README.md does not show the shell line of docs/schemas.md:\n%s", nameLine)
	}
	return nameLine, digLine
}

// needTools skips without the programs the shell line runs, and fails in
// CI, which installs them (coreutils, dnsutils).
func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found", n)
			}
			t.Skipf("%s not found", n)
		}
	}
}

// runSh runs script with sh (POSIX; dash on Debian), bounded in time.
func runSh(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", "set -eu\n"+script)
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("sh: %v\n%s\nscript:\n%s", err, stderr, script)
	}
	return string(out)
}

// TestShellClientEncoding: the shell line's name is the name the codec's
// encoder (and so the client package and ModSecurity) makes, for beacons
// of every length from 1 to 150 bytes (every Base32 padding case, one to
// five labels), client time label aside.
func TestShellClientEncoding(t *testing.T) {
	needTools(t, "sh", "base32", "tr", "fold", "paste", "date")
	nameLine, _ := shellLines(t)
	var beacons []string
	for n := 1; n <= 150; n++ {
		b := fmt.Sprintf("p,%d,", n)
		b += strings.Repeat("x", max(0, n-len(b)))
		beacons = append(beacons, b[:n])
	}
	var script strings.Builder
	script.WriteString("zone=status.example.org\n")
	for _, b := range beacons {
		fmt.Fprintf(&script, "beacon='%s'\n%s\necho \"$name\"\n", b, nameLine)
	}
	names := strings.Split(strings.TrimSpace(runSh(t, script.String())), "\n")
	if len(names) != len(beacons) {
		t.Fatalf("%d names for %d beacons", len(names), len(beacons))
	}
	for i, b := range beacons {
		labels := strings.Split(names[i], ".")
		if len(labels) < 4 {
			t.Fatalf("beacon %q: name %q", b, names[i])
		}
		epoch := labels[len(labels)-4]
		var e int64
		if _, err := fmt.Sscan(epoch, &e); err != nil {
			t.Fatalf("beacon %q: name %q has no time label", b, names[i])
		}
		if want := codec.Encode(b, e, "status.example.org"); names[i]+"." != want {
			t.Errorf("beacon %q: the shell line makes\n %s\nthe encoder\n %s", b, names[i], want)
		}
	}
}

// TestShellClientLine runs the shell client of docs/schemas.md, exactly as
// written, against a CoreDNS server of a custom schema on loopback (dig
// @127.0.0.1 only: nothing leaves the machine): the server answers it, and
// stores it as a report of its schema (counted stored).
func TestShellClientLine(t *testing.T) {
	needTools(t, "sh", "base32", "tr", "fold", "paste", "date", "dig")
	nameLine, digLine := shellLines(t)
	if !strings.Contains(digLine, "@127.0.0.1") {
		t.Fatalf("the doc's dig line must ask the loopback server: %s", digLine)
	}
	port := freePort(t)
	inst, err := test.CoreDNSServer(fmt.Sprintf(`status.example.org:%s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.30
        db %s
        api off
        schema {
            fields product version os arch id
            version version
            platform os
            id id
        }
    }
}`, port, filepath.Join(t.TempDir(), "se.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() })

	const beacon = "myapp,1.2.3,Linux,x86_64,0123456789abcdef0123456789abcdef01234567"
	before := outcomeCount(t, "status.example.org.", "stored")
	out := runSh(t, fmt.Sprintf("beacon='%s' zone=status.example.org port=%s\n%s\necho \"$name\"\n%s\n", beacon, port, nameLine, digLine))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || lines[1] != "192.0.2.30" {
		t.Fatalf("the shell line printed %q, want its name and the answer 192.0.2.30", out)
	}
	r, err := codec.DecodeSchema(mustExampleSchema(t), lines[0], "status.example.org")
	if err != nil || r.Beacon != beacon || !r.HasEpoch || time.Since(time.Unix(r.Epoch, 0)).Abs() > time.Minute {
		t.Errorf("the shell line's name %s decodes to %+v, %v", lines[0], r, err)
	}
	if got := outcomeCount(t, "status.example.org.", "stored") - before; got != 1 {
		t.Errorf("the server stored %v reports of the shell line, want 1", got)
	}
}

func mustExampleSchema(t *testing.T) *codec.Schema {
	t.Helper()
	s, err := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// outcomeCount sums coredns_statusengine_reports_total of zone and outcome
// in this process's registry (the servers run in process).
func outcomeCount(t *testing.T, zone, outcome string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "coredns_statusengine_reports_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["zone"] == zone && labels["outcome"] == outcome {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestTwoSchemasShareDBAndAPI: two server blocks, ModSecurity's zone and a
// zone of a custom schema, share one database and one API, the layout
// docs/schemas.md shows. Each answers its own names and stores its own
// reports once; the original-compatible API lists ModSecurity's report
// only, /api/v1/summary counts ModSecurity's by default and the custom
// one with ?zone=, and the database keeps the custom zone's schema.
func TestTwoSchemasShareDBAndAPI(t *testing.T) {
	port, apiAddr := freePort(t), "127.0.0.1:"+freePort(t)
	db := filepath.Join(t.TempDir(), "se.db")
	inst, err := test.CoreDNSServer(fmt.Sprintf(`status.modsecurity.org:%[1]s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.10
        db %[2]s
        api %[3]s
    }
}
status.example.org:%[1]s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.30
        db %[2]s
        api %[3]s
        schema {
            fields product version os arch id
            version version
            platform os
            id id
        }
        title "Example status"
    }
}`, port, db, apiAddr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() })
	addr := "127.0.0.1:" + port

	stored := outcomeCount(t, "status.example.org.", "stored")
	malformed := outcomeCount(t, "status.example.org.", "malformed")
	custom := codec.Encode("myapp,1.2.3,Linux,x86_64,ab", 1796000000, "status.example.org")
	if r := query(t, addr, custom, dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.30" {
		t.Fatalf("custom zone answer: %v", r)
	}
	// ModSecurity's beacon in the custom zone does not fit its schema.
	if r := query(t, addr, codec.Encode(realBeacon, 1796000000, "status.example.org"), dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("custom zone answer: %v", r)
	}
	if r := query(t, addr, codec.Encode(realBeacon, 1796000000, zone), dns.TypeA); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.10" {
		t.Fatalf("ModSecurity zone answer: %v", r)
	}
	if got := outcomeCount(t, "status.example.org.", "stored") - stored; got != 1 {
		t.Errorf("custom zone: %v stored, want 1", got)
	}
	// The same report again (a resolver's retry): a duplicate.
	query(t, addr, custom, dns.TypeA)
	if got := outcomeCount(t, "status.example.org.", "duplicate"); got < 1 {
		t.Errorf("custom zone: the retry was not counted a duplicate")
	}
	if got := outcomeCount(t, "status.example.org.", "malformed") - malformed; got != 1 {
		t.Errorf("custom zone: %v malformed, want 1", got)
	}
	var rows []map[string]any
	for range 50 { // the commit is at most 100 ms behind the answer
		var n int
		if n, rows = compatAmount(t, apiAddr); n == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(rows) != 1 || rows[0]["beacon"] != realBeacon {
		t.Errorf("the shared API lists %v, want ModSecurity's report only", rows)
	}
	for _, c := range []struct {
		path, zone, field string
	}{
		{"/api/v1/summary", "", "modsec"},
		{"/api/v1/summary?zone=status.example.org", "status.example.org.", "version"},
		{"/api/v1/summary?zone=status.modsecurity.org", "", "modsec"},
	} {
		var sum struct {
			Reports, Installations int
			Zone                   string
			VersionField           string `json:"version_field"`
			Breakdowns             map[string][]any
		}
		resp, err := http.Get("http://" + apiAddr + c.path)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(&sum)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || sum.Reports != 1 || sum.Installations != 1 || sum.Zone != c.zone {
			t.Errorf("%s: %d %+v %v", c.path, resp.StatusCode, sum, err)
		}
		if _, ok := sum.Breakdowns[c.field]; !ok {
			t.Errorf("%s: no breakdown %q: %v", c.path, c.field, sum.Breakdowns)
		}
	}
	if resp, err := http.Get("http://" + apiAddr + "/api/v1/summary?zone=nowhere.example"); err != nil || resp.StatusCode != 400 {
		t.Errorf("unknown zone: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// TestSchemaChangeAcrossRestart: the database keeps a zone's schema, so a
// restart whose Corefile changes it other than by adding fields at the end
// fails with an error naming the zone, and the stored report is read with
// the schema it was stored with; an extension starts.
func TestSchemaChangeAcrossRestart(t *testing.T) {
	db := filepath.Join(t.TempDir(), "se.db")
	conf := func(port, fields string) string {
		return fmt.Sprintf(`status.example.org:%s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.30
        db %s
        api off
        schema {
            fields %s
            version version
            platform os
            id id
        }
    }
}`, port, db, fields)
	}
	port := freePort(t)
	inst, err := test.CoreDNSServer(conf(port, "product version os arch id"))
	if err != nil {
		t.Fatal(err)
	}
	stored := outcomeCount(t, "status.example.org.", "stored")
	query(t, "127.0.0.1:"+port, codec.Encode("myapp,1.2.3,Linux,x86_64,ab", 1796000000, "status.example.org"), dns.TypeA)
	if got := outcomeCount(t, "status.example.org.", "stored") - stored; got != 1 {
		t.Errorf("stored %v, want 1", got)
	}
	inst.Stop()
	inst.ShutdownCallbacks()

	port = freePort(t)
	inst, err = test.CoreDNSServer(conf(port, "version product os arch id"))
	if err == nil {
		inst.Stop()
		inst.ShutdownCallbacks()
		t.Fatal("a restart with the fields reordered started")
	}
	if !strings.Contains(err.Error(), "zone status.example.org.") || !strings.Contains(err.Error(), "only be added at the end") {
		t.Errorf("error %v, want one naming the zone and the rule", err)
	}
	inst, err = test.CoreDNSServer(conf(port, "product version os arch id locale\n            min_fields 5"))
	if err != nil {
		t.Fatalf("a restart with a field added at the end: %v", err)
	}
	inst.Stop()
	inst.ShutdownCallbacks()
}

// TestCorefileExample: Corefile.example, on ports of its own and a
// temporary database, starts; its two zones answer and store their
// reports, and the shared API lists both zones.
func TestCorefileExample(t *testing.T) {
	b, err := os.ReadFile("../../Corefile.example")
	if err != nil {
		t.Fatal(err)
	}
	port, apiPort := freePort(t), freePort(t)
	conf := strings.NewReplacer(":1053", ":"+port, "localhost:8053", "127.0.0.1:"+apiPort,
		"localhost:9153", "127.0.0.1:"+freePort(t), "localhost:8181", "127.0.0.1:"+freePort(t),
		"db statusengine.db", "db "+filepath.Join(t.TempDir(), "se.db")).Replace(string(b))
	inst, err := test.CoreDNSServer(conf)
	if err != nil {
		t.Fatalf("Corefile.example: %v", err)
	}
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() })
	addr := "127.0.0.1:" + port
	stored := outcomeCount(t, "status.example.org.", "stored")
	if r := query(t, addr, codec.Encode("myapp,1.2.3,Linux,x86_64,ab", 1796000000, "status.example.org"), dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("custom zone: %v", r)
	}
	if r := query(t, addr, codec.Encode(realBeacon, 1796000000, "status.modsecurity.org"), dns.TypeA); len(r.Answer) != 1 {
		t.Fatalf("ModSecurity's zone: %v", r)
	}
	if got := outcomeCount(t, "status.example.org.", "stored") - stored; got != 1 {
		t.Errorf("custom zone stored %v, want 1", got)
	}
	resp, err := http.Get("http://127.0.0.1:" + apiPort + "/api/v1/zones")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var zs struct {
		Zones []struct{ Zone, Title string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&zs); err != nil || len(zs.Zones) != 2 || zs.Zones[1].Title != "Example status" {
		t.Errorf("zones %+v %v", zs, err)
	}
}
