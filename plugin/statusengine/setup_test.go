package statusengine

import (
	"bytes"
	"errors"
	golog "log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

func TestParse(t *testing.T) {
	tests := []struct {
		input   string
		wantErr string // substring; "" means success
	}{
		{`statusengine`, ""},
		{`statusengine {
			answer 192.0.2.1 2001:db8::1
			ttl 1m
			db /tmp/x.db
			api 127.0.0.1:0
			ns ns1 ns2.example.net.
		}`, ""},
		{"statusengine {\napi off\n}", ""},
		{"statusengine {\nttl 300\n}", ""},
		{"statusengine {\nbogus 1\n}", `unknown property "bogus"`},
		{"statusengine {\nanswer 300.1.1.1\n}", `answer: "300.1.1.1" is not an IP address`},
		{"statusengine {\nanswer\n}", "answer needs at least one IP address"},
		{"statusengine {\nttl forever\n}", `ttl: "forever" is neither seconds nor a duration`},
		{"statusengine {\nttl -5s\n}", "ttl: must be between"},
		{"statusengine {\nttl 99999999\n}", "ttl: must be between"},
		{"statusengine {\nttl 1 2\n}", "ttl needs one value"},
		{"statusengine {\ndb\n}", "db needs one file name"},
		{"statusengine {\napi localhost\n}", `api: "localhost" is not host:port`},
		{"statusengine {\napi a b\n}", "api needs one address"},
		{"statusengine {\nns bad..name\n}", `ns: "bad..name" is not a domain name`},
		{"statusengine {\nns ns1=192.0.2.1,2001:db8::1 ns2.example.net.=198.51.100.2 ns3\n}", ""},
		{"statusengine {\nns ns1=\n}", `ns: "" of ns1 is not an IP address`},
		{"statusengine {\nns ns1=192.0.2.1,\n}", `ns: "" of ns1 is not an IP address`},
		{"statusengine {\nns ns1=300.1.1.1\n}", `ns: "300.1.1.1" of ns1 is not an IP address`},
		{"statusengine {\nns ns1=0.0.0.0\n}", `ns: "0.0.0.0" of ns1 is not an IP address`},
		{"statusengine {\nns ns1=192.0.2.1=192.0.2.2\n}", `ns: "192.0.2.1=192.0.2.2" of ns1 is not an IP address`},
		{"statusengine {\nns =192.0.2.1\n}", `ns: "" is not a domain name`},
		{"statusengine {\nns .\n}", `ns: "." is not a domain name`},
		{"statusengine {\nns\n}", "ns needs at least one name server name"},
		{"statusengine {\nttl 60\nttl 30\n}", "ttl specified more than once"},
		{"statusengine\nstatusengine", "Testfile:2 - Error during parsing: statusengine can only be used once per server block"},
		{"statusengine {\nanswer ::1\n}", "Testfile:2 - Error during parsing: answer needs an IPv4 address"},
		{"statusengine {\nanswer 2001:db8::1 ::1\n}", "answer needs an IPv4 address"},
		{"statusengine {\nanswer ::1 192.0.2.1\n}", ""},
		{"statusengine {\nlimit 120 30\nmax_size 10G\naddresses truncate\nretention 400d 1m\n}", ""},
		{"statusengine {\nlimit off\naddresses drop\nretention 12h\n}", ""},
		{"statusengine {\nlimit -1\n}", `limit: "-1" is not a positive rate`},
		{"statusengine {\nlimit 10 0\n}", `limit: burst "0"`},
		{"statusengine {\nlimit\n}", "limit needs RATE_PER_MINUTE"},
		{"statusengine {\nmax_size 10X\n}", "max_size: not a size"},
		{"statusengine {\nmax_size 0\n}", "max_size: not a size"},
		{"statusengine {\naddresses some\n}", `addresses: "some" is not one of`},
		{"statusengine {\nretention forever\n}", `retention: "forever"`},
		{"statusengine {\nretention 1d 1ms\n}", `sweep interval "1ms"`},
		{"statusengine {\nanswer_deadline 2s\n}", ""},
		{"statusengine {\nanswer_deadline off\n}", ""},
		{"statusengine {\nanswer_deadline\n}", "answer_deadline: needs one duration"},
		{"statusengine {\nanswer_deadline 1s 2s\n}", "answer_deadline: needs one duration"},
		{"statusengine {\nanswer_deadline soon\n}", `answer_deadline: "soon" is not a duration from 1ms to 1m0s, or off`},
		{"statusengine {\nanswer_deadline 0\n}", `answer_deadline: "0" is not a duration`},
		{"statusengine {\nanswer_deadline -1s\n}", `answer_deadline: "-1s" is not a duration`},
		{"statusengine {\nanswer_deadline 1h\n}", `answer_deadline: "1h" is not a duration`},
		{"statusengine {\nanswer_deadline OFF\n}", `answer_deadline: "OFF" is not a duration`},
		{"statusengine {\nanswer_deadline 1s\nanswer_deadline off\n}", "answer_deadline specified more than once"},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		_, err := parse(c)
		checkParseErr(t, i, err, tc.wantErr)
	}
}

// TestParseDB: a db that names no place a store can live is a Corefile
// error naming the line and the property, not a "damaged" file at startup
// (a directory), a store that writes into nothing (/dev/null) or a wait
// (a FIFO).
func TestParseDB(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		db      string
		wantErr string
	}{
		{dir, "is a directory"},
		{"/dev/null", "/dev/null is not a regular file (a character device)"},
		{fifo, "is not a regular file (a FIFO)"},
		{filepath.Join(file, "se.db"), "se.db: not a directory"},
		{filepath.Join(dir, "missing", "se.db"), "no directory for"},
		{filepath.Join(dir, "new.db"), ""},
		{file, ""},
		{link, ""}, // a link to a regular file is the operator's choice
	}
	if readOnly := readOnlyDir(t); readOnly != "" {
		tests = append(tests, struct{ db, wantErr string }{filepath.Join(readOnly, "se.db"), "is not writable"})
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", "statusengine {\napi off\ndb "+tc.db+"\n}")
		c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
		_, err := parse(c)
		if checkParseErr(t, i, err, tc.wantErr) && tc.wantErr != "" && !strings.Contains(err.Error(), "Testfile:3 - Error during parsing: db: ") {
			t.Errorf("test %d: error %q does not name line 3 and the property", i, err)
		}
	}
}

// readOnlyDir is a directory nothing can be created in: a read-only tmpfs
// when running as root (root writes a mode 0555 directory anyway), else a
// mode 0555 directory; "" when there can be none here.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		return dir
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_RDONLY, "size=1m"); err != nil {
		t.Logf("no read-only directory: mounting a read-only tmpfs: %v", err)
		return ""
	}
	t.Cleanup(func() { syscall.Unmount(dir, 0) })
	return dir
}

// checkParseErr reports whether err is what a test case wants: nil for an
// empty want, else an error containing want.
func checkParseErr(t *testing.T, i int, err error, want string) bool {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("test %d: unexpected error %v", i, err)
	case want != "" && err == nil:
		t.Errorf("test %d: expected error containing %q, got none", i, want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Errorf("test %d: error %q does not contain %q", i, err, want)
	default:
		return true
	}
	return false
}

func TestParseErrorNamesLine(t *testing.T) {
	c := caddy.NewTestController("dns", "statusengine {\n  answer 192.0.2.1\n  tll 60\n}")
	_, err := parse(c)
	if err == nil || !strings.Contains(err.Error(), ":3 ") || !strings.Contains(err.Error(), `"tll"`) {
		t.Fatalf("error %v should name line 3 and the property", err)
	}
}

// answer_deadline sets how long an answer waits for its report to be
// durable; a bad value is an error naming the line and the property.
func TestParseAnswerDeadline(t *testing.T) {
	tests := []struct {
		input string
		want  time.Duration
	}{
		{"statusengine", store.DefaultAnswerWait},
		{"statusengine {\nanswer_deadline 2s\n}", 2 * time.Second},
		{"statusengine {\nanswer_deadline 1ms\n}", time.Millisecond},
		{"statusengine {\nanswer_deadline off\n}", store.NoAnswerDeadline},
	}
	for _, tc := range tests {
		se, err := parse(caddy.NewTestController("dns", tc.input))
		if err != nil {
			t.Errorf("%q: %v", tc.input, err)
			continue
		}
		if se.answerWait != tc.want {
			t.Errorf("%q: answer wait %v, want %v", tc.input, se.answerWait, tc.want)
		}
	}
	_, err := parse(caddy.NewTestController("dns", "statusengine {\n  answer 192.0.2.1\n  answer_deadline 90s\n}"))
	if err == nil || !strings.Contains(err.Error(), ":3 ") || !strings.Contains(err.Error(), `answer_deadline: "90s"`) {
		t.Fatalf("error %v should name line 3 and answer_deadline", err)
	}
}

func TestParseDefaults(t *testing.T) {
	c := caddy.NewTestController("dns", `statusengine`)
	c.ServerBlockKeys = []string{"status.modsecurity.org.:1053", "rpc.atomicorp.com.:1053"}
	se, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(se.Zones) != 2 || se.Zones[0] != "status.modsecurity.org." || se.Zones[1] != "rpc.atomicorp.com." {
		t.Errorf("zones = %v", se.Zones)
	}
	if se.answers.ttl != defaultTTL || len(se.answers.a) != 1 || se.answers.a[0].String() != "127.0.0.1" {
		t.Errorf("answers = %+v", se.answers)
	}
	if se.api.addr != defaultAPI || !strings.HasSuffix(se.dbPath, "/"+defaultDB) {
		t.Errorf("api %q db %q", se.api.addr, se.dbPath)
	}
}

func TestParseNS(t *testing.T) {
	c := caddy.NewTestController("dns", "statusengine {\nns NS1=192.0.2.1,2001:db8::1 ns2.example.net. ns3.status.modsecurity.org.\n}")
	c.ServerBlockKeys = []string{"status.modsecurity.org.:1053"}
	se, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	// Inside the zone: ns1 with its two addresses, ns3 without (the address
	// the query arrives on); ns2 lies outside.
	h := se.answers.hosts
	if len(h) != 2 || len(h["ns1.status.modsecurity.org."]) != 2 || h["ns1.status.modsecurity.org."][0].String() != "192.0.2.1" {
		t.Errorf("hosts = %v", h)
	}
	if addrs, ok := h["ns3.status.modsecurity.org."]; !ok || len(addrs) != 0 {
		t.Errorf("ns3: %v %v, want an in-zone name without addresses", addrs, ok)
	}
	if got := se.answers.inZoneHosts(); len(got) != 1 || got[0] != "ns3.status.modsecurity.org." {
		t.Errorf("inZoneHosts = %v", got)
	}
}

func TestWildcardListener(t *testing.T) {
	tests := []struct {
		hosts []string
		want  bool
	}{
		{[]string{""}, true},
		{[]string{"0.0.0.0"}, true},
		{[]string{"::"}, true},
		{[]string{"127.0.0.1", "::"}, true},
		{[]string{"192.0.2.53"}, false},
		{[]string{"192.0.2.53", "2001:db8::53"}, false},
	}
	for _, tc := range tests {
		if got := wildcardListener(tc.hosts); got != tc.want {
			t.Errorf("wildcardListener(%q) = %v, want %v", tc.hosts, got, tc.want)
		}
	}
}

// One line at startup says where the store is, what it holds and where the
// API answers.
func TestStartupLine(t *testing.T) {
	var buf bytes.Buffer
	golog.SetOutput(&buf)
	defer golog.SetOutput(os.Stderr)
	se := &StatusEngine{dbPath: filepath.Join(t.TempDir(), "se.db"), api: apiConfig{addr: "127.0.0.1:8053"}}
	if err := se.startup(); err != nil {
		t.Fatal(err)
	}
	defer se.shutdown()
	want := "[INFO] plugin/statusengine: database " + se.dbPath + ": 0 reports; API http://127.0.0.1:8053/"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("startup logged %q, want a line %q", buf.String(), want)
	}
}

func TestAPIURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "off",
		"localhost:8053": "http://localhost:8053/",
		":8053":          "http://localhost:8053/",
		"[::1]:8053":     "http://[::1]:8053/",
		"0.0.0.0:80":     "http://0.0.0.0:80/",
	} {
		if got := apiURL(addr); got != want {
			t.Errorf("apiURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestBindError(t *testing.T) {
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	tests := []struct {
		err  error
		want string // "" means no error of ours
	}{
		{nil, ""},
		{denied, "cannot listen on 127.0.0.1:53: listen tcp: bind: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE"},
		{&net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}, ""},
		{errors.New("something else"), ""},
	}
	for _, tc := range tests {
		got := bindError("127.0.0.1:53", tc.err)
		switch {
		case tc.want == "" && got != nil:
			t.Errorf("bindError(%v) = %v, want nil", tc.err, got)
		case tc.want != "" && (got == nil || !strings.HasPrefix(got.Error(), tc.want) || !strings.Contains(got.Error(), "setcap") || !strings.Contains(got.Error(), "AmbientCapabilities")):
			t.Errorf("bindError(%v) = %v, want %q and what to do", tc.err, got, tc.want)
		}
	}
}
