package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/test"

	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
	"github.com/statusengine/statusengine/plugin/statusengine/store"

	"github.com/statusengine/statusengine/plugin/statusengine"
)

func init() { statusengine.AddDirective() }

const (
	realBeacon = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"
	realName   = "GIXDSLRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV.1795549302.status.modsecurity.org."
	fixture    = "../../tinydns/testdata/current" // written by Debian's tinydns
)

// cli runs one command line in process and returns its exit status and output.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(&env{stdout: &out, stderr: &errb, stdin: strings.NewReader(stdin)}, args)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, c := range commands {
		code, out, _ := cli(t, "", c.name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: statusengine "+c.name) {
			t.Errorf("%s --help: exit %d, %q", c.name, code, out)
		}
	}
	if code, out, _ := cli(t, "", "help"); code != 0 || !strings.Contains(out, "import-tinydns") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	if code, _, errs := cli(t, "", "frobnicate"); code != 2 || !strings.Contains(errs, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errs)
	}
	if code, _, _ := cli(t, ""); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
	if code, _, errs := cli(t, "", "encode", realBeacon, "--bogus"); code != 2 || !strings.Contains(errs, "bogus") {
		t.Errorf("bad flag: exit %d, %q", code, errs)
	}
}

func TestEncodeDecode(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // contained in stdout (or stderr when code != 0)
	}{
		{[]string{"encode", realBeacon, "--epoch", "1795549302"}, 0, realName + "\n"},
		{[]string{"encode", "--epoch=1795549302", realBeacon}, 0, realName + "\n"},
		{[]string{"encode", realBeacon, "--no-epoch", "--zone", "rpc.atomicorp.com", "--label-len", "30"}, 0, "ZC4OJOGE2CYNZV.rpc.atomicorp.com.\n"},
		{[]string{"encode"}, 2, "want one BEACON"},
		{[]string{"encode", realBeacon, "--label-len", "0"}, 2, "--label-len"},
		{[]string{"encode", strings.Repeat("x,", 100)}, 1, "more than DNS allows"},
		{[]string{"decode", strings.ToLower(realName)}, 0, "server:        Apache/2.4.71 (Debian)"},
		{[]string{"decode", realName}, 0, "epoch:         1795549302 (2026-11-24T19:41:42Z)"},
		{[]string{"decode", "GE2CYNZV.1795549302.status.modsecurity.org"}, 1, "partial name"},
		{[]string{"decode", "ZZZZ1.1795549302.status.modsecurity.org"}, 1, "not unpadded base32"},
		{[]string{"decode", "www.example.org"}, 1, "name not in zone"},
		{[]string{"decode", "GIXDSLRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV.1.rpc.atomicorp.com", "--zone", "rpc.atomicorp.com."}, 0, "modsec:        2.9.7"},
	}
	for _, tc := range tests {
		code, out, errs := cli(t, "", tc.args...)
		got := out
		if tc.code != 0 {
			got = errs
		}
		if code != tc.code || !strings.Contains(got, tc.out) {
			t.Errorf("%v: exit %d, stdout %q stderr %q; want exit %d and %q", tc.args, code, out, errs, tc.code, tc.out)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// server runs a real statusengine CoreDNS in process on loopback.
type server struct {
	dns, api, db string
	inst         interface {
		Stop() error
		ShutdownCallbacks() []error
	}
}

func startServer(t *testing.T, name string) *server {
	t.Helper()
	s := &server{dns: "127.0.0.1:" + freePort(t), api: "127.0.0.1:" + freePort(t), db: filepath.Join(t.TempDir(), name+".db")}
	_, port, _ := net.SplitHostPort(s.dns)
	inst, err := test.CoreDNSServer(fmt.Sprintf(`status.modsecurity.org:%s {
    bind 127.0.0.1
    statusengine {
        answer 192.0.2.10
        db %s
        api %s
    }
}`, port, s.db, s.api))
	if err != nil {
		t.Fatal(err)
	}
	s.inst = inst
	t.Cleanup(s.stop)
	return s
}

func (s *server) stop() {
	if s.inst != nil {
		s.inst.Stop()
		s.inst.ShutdownCallbacks() // releases the store, as a real shutdown does
		s.inst = nil
	}
}

func TestSend(t *testing.T) {
	s := startServer(t, "send")
	code, out, errs := cli(t, "", "send", realBeacon, "--server", s.dns, "--epoch", "1795549302")
	if code != 0 || !strings.Contains(out, "answer: 192.0.2.10") || !strings.Contains(out, realName) {
		t.Errorf("send: exit %d, %q %q", code, out, errs)
	}
	// Not the server's zone: REFUSED, no A record.
	code, _, errs = cli(t, "", "send", realBeacon, "--server", s.dns, "--zone", "example.org")
	if code != 1 || !strings.Contains(errs, "report not taken") || !strings.Contains(errs, "REFUSED") {
		t.Errorf("send to the wrong zone: exit %d, %q", code, errs)
	}
	// Nobody there.
	code, _, errs = cli(t, "", "send", realBeacon, "--server", "127.0.0.1:"+freePort(t), "--timeout", "200ms")
	if code != 1 || !strings.Contains(errs, "no answer") {
		t.Errorf("send to nobody: exit %d, %q", code, errs)
	}
}

func TestImportTinydns(t *testing.T) {
	db := filepath.Join(t.TempDir(), "se.db")
	code, out, errs := cli(t, "", "import-tinydns", "--db", db, fixture)
	if code != 0 || out != "imported 4, duplicate 2, rejected 1, ignored 5\n" {
		t.Fatalf("import-tinydns: exit %d, %q %q", code, out, errs)
	}
	if !strings.Contains(errs, "current:10: rejected: data labels are not unpadded base32") {
		t.Errorf("rejected line not shown: %q", errs)
	}
	// The same log again, and from standard input: all duplicates.
	log, _ := os.ReadFile(fixture)
	code, out, _ = cli(t, string(log), "import-tinydns", "--db", db, "--quiet", fixture, "-")
	if code != 0 || out != "imported 0, duplicate 12, rejected 2, ignored 10\n" {
		t.Errorf("again: exit %d, %q", code, out)
	}
	// Located by the embedded country database by default; loopback is nowhere.
	_, out, _ = cli(t, "", "export", "--db", db)
	if !strings.Contains(out, `"geo":{"source":"resolver"}`) {
		t.Errorf("export after import-tinydns: %s", out)
	}
	if code, _, errs := cli(t, "", "import-tinydns", "--db", db, "--geoip", "/nonexistent.mmdb", fixture); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing geoip: exit %d, %q", code, errs)
	}
	if code, _, errs := cli(t, "", "import-tinydns", "--db", db, "/nonexistent.log"); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing log: exit %d, %q", code, errs)
	}
	if code, _, _ := cli(t, "", "import-tinydns", fixture); code != 2 {
		t.Errorf("no --db: exit %d, want 2", code)
	}
}

func TestExportImportBackup(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	if code, _, errs := cli(t, "", "import-tinydns", "--db", a, "--quiet", fixture); code != 0 {
		t.Fatal(errs)
	}
	nd := filepath.Join(dir, "a.ndjson")
	code, _, errs := cli(t, "", "export", "--db", a, "--out", nd)
	if code != 0 || !strings.Contains(errs, "exported 4 records") {
		t.Fatalf("export: exit %d, %q", code, errs)
	}
	if code, out, _ := cli(t, "", "import", "--db", b, nd); code != 0 || out != "imported 4, duplicate 0, rejected 0\n" {
		t.Fatalf("import: exit %d, %q", code, out)
	}
	data, _ := os.ReadFile(nd)
	if code, out, _ := cli(t, string(data), "import", "--db", b, "-"); code != 0 || out != "imported 0, duplicate 4, rejected 0\n" {
		t.Fatalf("import again: exit %d, %q", code, out)
	}
	// Both databases export the same lines.
	_, outB, _ := cli(t, "", "export", "--db", b)
	if outB != string(data) {
		t.Errorf("export of the copy differs:\n%s\nvs\n%s", outB, data)
	}
	// A time window: the fixture's reports arrived on 2026-11-25.
	if _, out, _ := cli(t, "", "export", "--db", b, "--from", "2026-11-26"); out != "" {
		t.Errorf("export after the log: %q", out)
	}
	if _, out, _ := cli(t, "", "export", "--db", b, "--from", "2026-11-25", "--to", "2026-11-25"); strings.Count(out, "\n") != 4 {
		t.Errorf("export of the day: %q", out)
	}
	if code, _, _ := cli(t, "", "export", "--db", b, "--from", "yesterday"); code != 2 {
		t.Errorf("bad --from: exit %d, want 2", code)
	}
	if code, _, errs := cli(t, "", "export", "--db", filepath.Join(dir, "typo.db")); code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("export of a missing db: exit %d, %q", code, errs)
	}

	bk := filepath.Join(dir, "backup.db")
	if code, _, errs := cli(t, "", "backup", "--db", b, "--out", bk); code != 0 {
		t.Fatalf("backup: %s", errs)
	}
	st, err := store.Open(bk, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Count() != 4 {
		t.Errorf("backup holds %d, want 4", st.Count())
	}
	// While st holds the lock, as a running server does: a clear refusal
	// after about a second.
	start := time.Now()
	code, _, errs = cli(t, "", "export", "--db", bk)
	if code != 1 || !strings.Contains(errs, "database is in use by a running server: use the API backup endpoint or stop the server") || time.Since(start) > 5*time.Second {
		t.Errorf("locked db: exit %d, %q after %v", code, errs, time.Since(start))
	}
	st.Close()
}

func TestProgress(t *testing.T) {
	var errb bytes.Buffer
	e := &env{stderr: &errb, tty: false}
	if newProgress(e, "x", 100<<20) != nil {
		t.Error("a progress bar without a terminal")
	}
	e.tty = true
	if newProgress(e, "x", 100) != nil {
		t.Error("a progress bar for a small file")
	}
	p := newProgress(e, "big.log", 4<<20)
	p.set(2 << 20)
	p.done()
	if s := errb.String(); !strings.Contains(s, "big.log [===============               ]  50% 2/4 MiB") || !strings.HasSuffix(s, "100% 4/4 MiB\n") {
		t.Errorf("progress output %q", s)
	}
}

func TestImportTinydnsGeoip(t *testing.T) {
	dir := t.TempDir()
	mmdb := geotest.WriteCity(t, []geotest.Place{{Network: "81.2.69.0/24", Country: "GB", Name: "United Kingdom", City: "London", Lat: 51.5, Lon: -0.1}})
	log := filepath.Join(dir, "current")
	os.WriteFile(log, []byte("@400000006b069f361852d844 510245a0:0035:0001 + 0001 "+strings.ToLower(strings.TrimSuffix(realName, "."))+"\n"), 0o644)
	db := filepath.Join(dir, "se.db")
	if code, out, errs := cli(t, "", "import-tinydns", "--db", db, "--geoip", mmdb, log); code != 0 || out != "imported 1, duplicate 0, rejected 0, ignored 0\n" {
		t.Fatalf("exit %d, %q %q", code, out, errs)
	}
	_, out, _ := cli(t, "", "export", "--db", db)
	if !strings.Contains(out, `"resolver":"81.2.69.160"`) || !strings.Contains(out, `"city":"London"`) || !strings.Contains(out, `"received":"2026-11-25T08:41:16.408`) {
		t.Errorf("export: %s", out)
	}
}
