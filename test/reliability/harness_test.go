package reliability

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/internal/netnstest"
	"github.com/statusengine/statusengine/internal/servertest"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const zone = "status.modsecurity.org."

// coreBinary is the CoreDNS build under test, and toolBinary the operator
// tool (./build/statusengine), built once by TestMain.
var coreBinary, toolBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "se-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	coreBinary = filepath.Join(dir, "coredns")
	toolBinary = filepath.Join(dir, "statusengine")
	root, err = servertest.ModuleRoot()
	if err == nil {
		var out []byte
		if out, err = servertest.Build(context.Background(), "go", root, coreBinary); err != nil {
			err = fmt.Errorf("go build ./build/coredns: %v\n%s", err, out)
		} else if out, err = servertest.BuildPackage(context.Background(), "go", root, "./build/statusengine", toolBinary); err != nil {
			err = fmt.Errorf("go build ./build/statusengine: %v\n%s", err, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// root is the module's directory, found by TestMain.
var root string

func moduleRoot() string { return root }

// needRoot skips a test that needs root, but fails it in CI where the
// suite runs as root and a skip would hide a missing proof.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root (CI runs as root)")
		}
		t.Skip("needs root")
	}
}

// needCommand skips without the program, fails with CI=true.
func needCommand(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found: install the Debian package %s", name, pkg)
		}
		t.Skipf("%s not found (Debian package %s)", name, pkg)
	}
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The DNS port is UDP too.
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		u.Close()
		return port
	}
	t.Fatal("no free port")
	return 0
}

// config is one Corefile for the server under test.
type config struct {
	DB      string // bbolt file
	API     string // host:port of the side listener
	Options string // more statusengine properties, one a line
	Server  string // more plugins of the server block (reload, log, ...)
	APIBody string // inside api ADDR { ... }
	TTL     int    // 60 when 0
	Bind    string // addresses of the DNS listener, 127.0.0.1 when ""
}

func (c config) corefile(dnsPort, metricsPort int) string {
	api := c.API
	ttl := c.TTL
	if ttl == 0 {
		ttl = 60
	}
	bind := c.Bind
	if bind == "" {
		bind = "127.0.0.1"
	}
	if c.APIBody != "" {
		api += " {\n" + c.APIBody + "\n        }"
	}
	return fmt.Sprintf(`status.modsecurity.org:%d {
    bind %s
    statusengine {
        answer 192.0.2.10
        ttl %d
        db %s
        api %s
%s
    }
    prometheus 127.0.0.1:%d
    errors
%s
}
`, dnsPort, bind, ttl, c.DB, api, indent(c.Options), metricsPort, c.Server)
}

func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			b.WriteString("        " + strings.TrimSpace(l) + "\n")
		}
	}
	return b.String()
}

// server is one CoreDNS process under test.
type server struct {
	t       *testing.T
	dir     string
	cfg     config
	dnsPort int
	metrics int
	conf    string

	ns   *netnstest.NS // runs inside it when set
	proc *servertest.Proc
	out  *syncBuffer
}

// http is a client that reaches the server's listeners.
func (s *server) http() *http.Client {
	if s.ns != nil {
		return s.ns.HTTPClient(10 * time.Second)
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// exchange asks m over UDP from local ("" for any), in the server's namespace.
func (s *server) exchange(m *dns.Msg, local string, timeout time.Duration) (*dns.Msg, error) {
	if s.ns == nil && local == "" {
		c := &dns.Client{Timeout: timeout}
		r, _, err := c.Exchange(m, s.dnsAddr())
		return r, err
	}
	var conn net.Conn
	var err error
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if s.ns != nil {
		conn, err = s.ns.Dial(ctx, "udp", local, s.dnsAddr())
	} else {
		d := net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(local)}}
		conn, err = d.DialContext(ctx, "udp", s.dnsAddr())
	}
	if err != nil {
		return nil, err
	}
	co := &dns.Conn{Conn: conn}
	defer co.Close()
	co.SetDeadline(time.Now().Add(timeout))
	if err := co.WriteMsg(m); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

func (s *server) dnsAddr() string { return fmt.Sprintf("127.0.0.1:%d", s.dnsPort) }

// newServer writes a Corefile with fresh ports into a temp dir; cfg.DB
// defaults to a file there and cfg.API to a free port.
func newServer(t *testing.T, cfg config) *server {
	t.Helper()
	dir := t.TempDir()
	if cfg.DB == "" {
		cfg.DB = filepath.Join(dir, "se.db")
	}
	if cfg.API == "" {
		cfg.API = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	}
	s := &server{t: t, dir: dir, cfg: cfg, dnsPort: freePort(t), metrics: freePort(t), conf: filepath.Join(dir, "Corefile")}
	s.writeConfig(cfg)
	t.Cleanup(s.kill)
	return s
}

func (s *server) writeConfig(cfg config) {
	s.cfg = cfg
	if err := os.WriteFile(s.conf, []byte(cfg.corefile(s.dnsPort, s.metrics)), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// start runs the binary and waits until DNS, the API and the metrics answer.
func (s *server) start() {
	t := s.t
	t.Helper()
	s.out = &syncBuffer{}
	cmd := exec.Command(coreBinary, "-conf", s.conf)
	if s.ns != nil {
		cmd = s.ns.Command(coreBinary, "-conf", s.conf)
	}
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.out, s.out
	p, err := servertest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p

	deadline := time.Now().Add(15 * time.Second)
	for {
		if p.Exited() {
			t.Fatalf("server exited at start: %s", s.out)
		}
		if s.ready() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready after 15s: %s", s.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) ready() bool {
	m := new(dns.Msg)
	m.SetQuestion(zone, dns.TypeSOA)
	if _, err := s.exchange(m, "", 200*time.Millisecond); err != nil {
		return false
	}
	for _, u := range []string{"http://" + s.cfg.API + "/api/v1/openapi.json", fmt.Sprintf("http://127.0.0.1:%d/metrics", s.metrics)} {
		resp, err := s.http().Get(u)
		if err != nil {
			return false
		}
		resp.Body.Close()
	}
	return true
}

// running tells whether the process is still alive.
func (s *server) running() bool { return s.proc != nil && !s.proc.Exited() }

// kill ends the process at once (SIGKILL), as a crash or the OOM killer would.
func (s *server) kill() {
	if s.proc == nil {
		return
	}
	s.proc.Cmd.Process.Signal(syscall.SIGKILL)
	<-s.proc.Done()
}

// stop ends the process gracefully, as systemd would.
func (s *server) stop() {
	s.t.Helper()
	s.proc.Cmd.Process.Signal(syscall.SIGTERM)
	if !s.proc.WaitExit(15 * time.Second) {
		s.kill()
		s.t.Fatalf("server did not stop within 15s of SIGTERM: %s", s.out)
	}
}

func (s *server) signal(sig os.Signal) {
	if err := s.proc.Cmd.Process.Signal(sig); err != nil {
		s.t.Fatal(err)
	}
}

// waitLog waits for re in the output after offset; false on timeout.
func (s *server) waitLog(re *regexp.Regexp, offset int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if re.Match(s.out.Bytes()[offset:]) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// metricsText is the Prometheus text of the server.
func (s *server) metricsText() string {
	s.t.Helper()
	resp, err := s.http().Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.metrics))
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// outcomes reads coredns_statusengine_reports_total by outcome.
func (s *server) outcomes() map[string]float64 {
	return sumMetric(s.metricsText(), "coredns_statusengine_reports_total", "outcome")
}

// sumMetric sums the samples of name by the value of label.
func sumMetric(text, name, label string) map[string]float64 {
	out := map[string]float64{}
	re := regexp.MustCompile(label + `="([^"]*)"`)
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		sp := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[sp+1:], 64)
		if err != nil {
			continue
		}
		key := ""
		if m := re.FindStringSubmatch(l[:sp]); m != nil {
			key = m[1]
		}
		out[key] += v
	}
	return out
}

// metricTotal sums every sample of name.
func metricTotal(text, name string) float64 {
	var sum float64
	for _, v := range sumMetric(text, name, "__none__") {
		sum += v
	}
	return sum
}

// delta is after minus before, outcomes that did not change left out.
func delta(before, after map[string]float64) map[string]float64 {
	d := map[string]float64{}
	for k, v := range after {
		if v-before[k] != 0 {
			d[k] = v - before[k]
		}
	}
	return d
}

// syncBuffer is the process output, written by os/exec and read by tests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

func (b *syncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Len()
}

func (b *syncBuffer) String() string { return string(b.Bytes()) }

// beacon is a valid report of installation i: a 40-hex id makes it unique.
func beacon(i int) string {
	return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
}

// reportName is the query name of installation i started at epoch.
func reportName(i int, epoch int64) string { return codec.Encode(beacon(i), epoch, zone) }

// sendReports asks the server for n new reports, of installations first to
// first+n-1, and fails the test unless each gets its A answer within 2 s.
func (s *server) sendReports(t *testing.T, first, n int) {
	t.Helper()
	for i := range n {
		m := new(dns.Msg)
		m.SetQuestion(reportName(first+i, 1795700000), dns.TypeA)
		if r, err := s.exchange(m, "", 2*time.Second); err != nil || len(r.Answer) != 1 {
			t.Fatalf("report query %d: %v %v", i, r, err)
		}
	}
}

// storedNames checks the database file after the server is gone (every
// page, every record), opens it and returns the query name of every record
// (lower case, as Encode makes it).
func storedNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	checkFile(t, path)
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatalf("database does not open: %v", err)
	}
	defer st.Close()
	names := map[string]bool{}
	err = st.Each(time.Unix(0, 0), time.Now().Add(time.Hour), 0, func(r *record.Record) error {
		epoch := int64(-1)
		if r.Report.HasEpoch {
			epoch = r.Report.Epoch
		}
		names[strings.ToLower(codec.Encode(r.Report.Beacon, epoch, zone))] = true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// checkFile runs the store's check (the one `statusengine check` runs):
// every page read without mapping the file, then every record and rollup.
func checkFile(t *testing.T, path string) {
	t.Helper()
	rep, err := store.Check(path)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("check: %d unreadable records, problems %q", rep.Unreadable, rep.Problems)
	}
}

// query asks one question over UDP (or TCP) and fails the test on error.
func query(t *testing.T, addr, net, name string, qtype, qclass uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Question[0].Qclass = qclass
	c := &dns.Client{Net: net, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", net, name, dns.TypeToString[qtype], err)
	}
	return r
}

// limitOff turns the per-source limit off for tests whose load comes from
// one address (loopback is not charged anyway; this keeps them independent
// of that rule).
func limitOff(*testing.T) string { return "limit off" }
