package main

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/test"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/schemaconf"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// customCorefile serves status.example.org with docs/schemas.md's schema.
const customCorefile = `status.example.org:%s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.20
        db %s
        api off
        schema {
            fields product version os arch id
            version version
            platform os
            id id
        }
    }
}
`

const customBeacon = "myapp,1.2.3,Linux,x86_64,0123456789abcdef0123456789abcdef01234567"

func TestEncodeDecodeSchema(t *testing.T) {
	corefile := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(corefile, []byte(fmt.Sprintf(customCorefile, "1053", "se.db")), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, "", "encode", customBeacon, "--epoch", "1796000000", "--zone", "status.example.org", "--fields", "product,version,os,arch,id")
	if code != 0 || errs != "" || !strings.HasSuffix(out, ".1796000000.status.example.org.\n") {
		t.Fatalf("encode --fields: exit %d, %q %q", code, out, errs)
	}
	name := strings.TrimSpace(out)
	tests := []struct {
		args []string
		code int
		out  string // in stdout, or stderr when code != 0
		err  string // in stderr when code == 0
	}{
		{[]string{"encode", customBeacon, "--zone", "status.example.org", "--corefile", corefile}, 0, ".status.example.org.\n", ""},
		// ModSecurity's schema by default: the warning of issue 19, unchanged.
		{[]string{"encode", customBeacon, "--zone", "status.example.org"}, 0, ".status.example.org.\n", "warning: the collector will reject this beacon"},
		{[]string{"encode", "myapp,1.2.3,Linux", "--fields", "product,version,os,arch,id"}, 0, "", "warning: the collector will reject this beacon: beacon has the wrong number of fields: want 5"},
		{[]string{"encode", "my-app-with-a-long-name,1,l,x,i", "--fields", "product,version,os,arch,id"}, 0, "", "grammar: product"},
		{[]string{"encode", customBeacon, "--fields", "product,app.version,id"}, 2, `--fields: name "app.version" holds "."`, ""},
		{[]string{"encode", customBeacon, "--fields", "a,b", "--corefile", corefile}, 2, "exclude each other", ""},
		{[]string{"encode", customBeacon, "--zone", "other.example", "--corefile", corefile}, 1, "no statusengine block serves zone other.example.", ""},
		{[]string{"decode", name, "--zone", "status.example.org", "--fields", "product,version,os,arch,id"}, 0, "version:       1.2.3  (version)\nos:            Linux  (platform)\narch:          x86_64\nid:            0123456789abcdef0123456789abcdef01234567  (installation id)\nepoch:         1796000000", ""},
		{[]string{"decode", name, "--zone", "status.example.org", "--corefile", corefile}, 0, "schema:        fields product version os arch id; version version; platform os; id id\nproduct:       myapp\n", ""},
		{[]string{"decode", name, "--zone", "status.example.org", "--fields", "product,version,id"}, 1, "not a report: beacon has the wrong number of fields: want 3", ""},
		{[]string{"decode", name[strings.IndexByte(name, '.')+1:], "--zone", "status.example.org", "--fields", "product,version,os,arch,id"}, 1, "partial name", ""},
		{[]string{"decode", name, "--zone", "status.example.org"}, 1, "not a report", ""},
	}
	for _, tc := range tests {
		code, out, errs := cli(t, "", tc.args...)
		got := out
		if tc.code != 0 {
			got = errs
		}
		if code != tc.code || !strings.Contains(got, tc.out) || (tc.code == 0 && !strings.Contains(errs, tc.err)) || (tc.err == "" && tc.code == 0 && errs != "") {
			t.Errorf("%v: exit %d, stdout %q stderr %q; want exit %d, %q and %q", tc.args, code, out, errs, tc.code, tc.out, tc.err)
		}
	}
}

// send --zone Z reports a custom beacon to a running server of a custom
// schema, which stores it (counted stored).
func TestSendSchema(t *testing.T) {
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	conf := fmt.Sprintf(customCorefile, port, filepath.Join(dir, "se.db"))
	inst, err := test.CoreDNSServer(conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inst.Stop(); inst.ShutdownCallbacks() })
	corefile := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(corefile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}

	before := reportsCounted(t, "status.example.org.", "stored")
	code, out, errs := cli(t, "", "send", customBeacon, "--server", "127.0.0.1:"+port, "--zone", "status.example.org", "--corefile", corefile)
	if code != 0 || errs != "" || !strings.Contains(out, "answer: 192.0.2.20") {
		t.Fatalf("send: exit %d, %q %q", code, out, errs)
	}
	if got := reportsCounted(t, "status.example.org.", "stored") - before; got != 1 {
		t.Errorf("stored grew by %v, want 1", got)
	}
	// A beacon that does not fit: sent all the same, with the warning, and
	// counted malformed by the server.
	before = reportsCounted(t, "status.example.org.", "malformed")
	code, _, errs = cli(t, "", "send", "myapp,1.2.3,Linux,x86_64,ab,extra", "--server", "127.0.0.1:"+port, "--zone", "status.example.org", "--fields", "product,version,os,arch,id")
	if code != 0 || !strings.Contains(errs, "warning: the collector will reject this beacon") {
		t.Errorf("send of a misfit: exit %d, %q", code, errs)
	}
	if got := reportsCounted(t, "status.example.org.", "malformed") - before; got != 1 {
		t.Errorf("malformed grew by %v, want 1", got)
	}
}

// reportsCounted sums coredns_statusengine_reports_total of zone and
// outcome in this process's registry (the server runs in process).
func reportsCounted(t *testing.T, zone, outcome string) float64 {
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

// A custom zone's records exported from a database import into a new one
// once it is given the zone's schema (--corefile, --zone); without it each
// line is rejected, and check reads the schema from the file.
func TestImportCustomSchema(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.db")
	conf := fmt.Sprintf(customCorefile, "1053", src)
	corefile := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(corefile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := schemaconf.FromCorefile(corefile, "status.example.org")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(src, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSchema([]string{"status.example.org."}, sc); err != nil {
		t.Fatal(err)
	}
	r, err := codec.ParseSchema(sc, customBeacon)
	if err != nil {
		t.Fatal(err)
	}
	r.Epoch, r.HasEpoch = 1796000000, true
	if o, err := st.Submit(&record.Record{Received: time.Now(), Zone: "status.example.org.", Resolver: netip.MustParseAddr("192.0.2.1"), Report: r.AsReport()}); o != store.Stored {
		t.Fatal(o, err)
	}
	st.Close()

	code, exp, errs := cli(t, "", "export", "--db", src)
	if code != 0 || !strings.Contains(exp, customBeacon) {
		t.Fatalf("export: %d %q %q", code, exp, errs)
	}
	if code, out, errs := cli(t, "", "check", "--db", src); code != 0 {
		t.Errorf("check: %d %q %q", code, out, errs)
	}
	code, _, errs = cli(t, exp, "import", "--db", filepath.Join(dir, "bare.db"))
	if code != 1 || !strings.Contains(errs, "rejected") {
		t.Errorf("import without the schema: exit %d, %q", code, errs)
	}
	dst := filepath.Join(dir, "dst.db")
	code, out, errs := cli(t, exp, "import", "--db", dst, "--corefile", corefile, "--zone", "status.example.org")
	if code != 0 {
		t.Fatalf("import: exit %d, %q %q", code, out, errs)
	}
	code, again, _ := cli(t, "", "export", "--db", dst)
	if code != 0 || again != exp {
		t.Errorf("export after import:\n%s\nwant\n%s", again, exp)
	}
	if code, _, errs := cli(t, exp, "import", "--db", dst, "--corefile", corefile); code != 2 || !strings.Contains(errs, "--zone") {
		t.Errorf("--corefile without --zone: exit %d, %q", code, errs)
	}
}
