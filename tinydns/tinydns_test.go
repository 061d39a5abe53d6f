package tinydns

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const (
	zone       = "status.modsecurity.org."
	realBeacon = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"
	nginx40    = "2.9.6,nginx,1.7.2/1.7.2,8.45/8.45 2021-06-15,Lua 5.1,2.9.14,96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8"
	beta2014   = "2.7.7,Apache/2.4.4 (Unix),1.4.6/1.4.6, 8.32 /8.32 2012-11-30,Lua 5.1/(null),2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8"
	windows    = "2.9.3,IIS,1.7.0/1.7.0,8.44/8.44,(null),2.9.10,d1"

	sendEnv = "SE_TINYDNS_SEND" // set: this process is the query sender inside the namespace
)

// queries is what the sender asks tinydns, in order, and what Import must
// make of each answer line: the same list serves both sides.
var queries = []struct {
	name  string
	qtype uint16
	want  string // imported, duplicate, rejected, ignored
}{
	{"1795549302." + zone, dns.TypeA, "ignored"},          // QNAME minimisation, first step
	{"GE2CYNZV.1795549302." + zone, dns.TypeA, "ignored"}, // and the next
	{codec.Encode(realBeacon, 1795549302, zone), dns.TypeA, "imported"},
	{codec.Encode(realBeacon, 1795549302, zone), dns.TypeA, "duplicate"}, // a resolver's retry
	{"gIxDslRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV.1795549302.StAtUs.MODSECURITY.org.", dns.TypeA, "duplicate"},
	{codec.Encode(nginx40, 1795549400, zone), dns.TypeA, "imported"},
	{codec.Encode(beta2014, -1, zone), dns.TypeA, "imported"}, // 2014 beta: no epoch label
	{codec.EncodeLabels(windows, 1795549500, zone, 30), dns.TypeA, "imported"},
	{"ZZZZ1.1795549302." + zone, dns.TypeA, "rejected"},
	{"www.example.org.", dns.TypeA, "ignored"}, // not tinydns's zone: logged with -
	{zone, dns.TypeA, "ignored"},               // the apex
}

func TestMain(m *testing.M) {
	if os.Getenv(sendEnv) != "" {
		os.Exit(send())
	}
	os.Exit(m.Run())
}

// send asks tinydns each query as ModSecurity does: one UDP question, RD
// set, no EDNS.
func send() int {
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for _, q := range queries {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		c.Timeout = 2 * time.Second
		if !dns.IsSubDomain(zone, q.name) {
			c.Timeout = 200 * time.Millisecond // tinydns drops what it is not authoritative for
		}
		if _, _, err := c.Exchange(m, "127.0.0.1:53"); err != nil && c.Timeout > time.Second {
			fmt.Fprintln(os.Stderr, q.name, err)
			return 1
		}
	}
	return 0
}

func wantStats() Stats {
	var s Stats
	s.Ignored = 1 // "starting tinydns"
	for _, q := range queries {
		switch q.want {
		case "imported":
			s.Imported++
		case "duplicate":
			s.Duplicate++
		case "rejected":
			s.Rejected++
		case "ignored":
			s.Ignored++
		}
	}
	return s
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func records(t *testing.T, st *store.Store) []*record.Record {
	t.Helper()
	var out []*record.Record
	st.Each(time.Unix(1, 0), time.Unix(1<<33-1, 0), 0, func(r *record.Record) error { out = append(out, r); return nil })
	return out
}

// need skips when a tool is missing, except in CI where it must be there.
func need(t *testing.T, cond bool, why string) {
	t.Helper()
	if cond {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: install it)", why)
	}
	t.Skip(why)
}

// TestRealTinydns runs Debian's tinydns in a network namespace of its own on
// 127.0.0.1:53, sends it the queries, logs through daemontools' tai64n as
// the original collector's multilog did, and imports that log.
func TestRealTinydns(t *testing.T) {
	need(t, os.Geteuid() == 0, "needs root for a network namespace and tinydns's chroot")
	for _, tool := range []string{"tinydns", "tinydns-data", "tai64n", "ip"} {
		_, err := exec.LookPath(tool)
		need(t, err == nil, tool+" not found: apt-get install tinydns daemontools iproute2")
	}

	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil { // tinydns reads data.cdb as nobody after chroot
		t.Fatal(err)
	}
	// The original collector's data: answer every name in the zone.
	data := ".status.modsecurity.org:127.0.0.1:a:259200\n+*.status.modsecurity.org:127.0.0.1:60\n"
	if err := os.WriteFile(filepath.Join(root, "data"), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := exec.Command("tinydns-data")
	mk.Dir = root
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("tinydns-data: %v: %s", err, out)
	}

	ns := fmt.Sprintf("se-tinydns-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}

	logPath := filepath.Join(t.TempDir(), "current")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	tai := exec.Command("tai64n")
	tai.Stdout = logFile
	pipe, err := tai.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	srv := exec.Command("ip", "netns", "exec", ns, "tinydns")
	srv.Env = []string{"IP=127.0.0.1", "ROOT=" + root, "UID=65534", "GID=65534", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	srv.Stderr = pipe // tinydns logs to standard error
	if err := tai.Start(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	pipe.Close() // tinydns holds the write end now
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		srv.Process.Kill() // ip netns exec execs tinydns: this pid is tinydns
		srv.Wait()
		tai.Wait()
	}
	t.Cleanup(stop)

	// Wait for "starting tinydns": it binds before it logs that.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if strings.Contains(string(b), "starting tinydns") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tinydns did not start; log: %q", b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	sender := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
	sender.Env = append(os.Environ(), sendEnv+"=1")
	if out, err := sender.CombinedOutput(); err != nil {
		t.Fatalf("sending queries: %v: %s", err, out)
	}
	stop()

	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tinydns log:\n%s", log)
	if dst := os.Getenv("SE_TINYDNS_FIXTURE"); dst != "" { // go test -run RealTinydns to refresh testdata
		os.WriteFile(dst, log, 0o644)
	}
	if n := strings.Count(string(log), "\n"); n != len(queries)+1 {
		t.Fatalf("log has %d lines, want %d", n, len(queries)+1)
	}

	st := openStore(t)
	f, _ := os.Open(logPath)
	defer f.Close()
	stats, err := Import(st, f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if stats != wantStats() {
		t.Errorf("stats = %+v, want %+v", stats, wantStats())
	}
	for _, r := range records(t, st) {
		if r.Resolver != netip.MustParseAddr("127.0.0.1") || time.Since(r.Received) > time.Minute || time.Since(r.Received) < 0 {
			t.Errorf("record %q: resolver %v, received %v; want 127.0.0.1 and the log time", r.Report.Beacon, r.Resolver, r.Received)
		}
	}
}
