package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/netnstest"
	"github.com/statusengine/statusengine/internal/servertest"
)

// Addresses inside the namespace. Nothing here is reachable from, or routed
// out of, the namespace: it has nothing but its own loopback.
const (
	directAddr = "127.0.0.1" // our server in the direct scenario; the resolver the stub asks in the others
	authAddr   = "127.0.0.2" // our server behind a resolver
	innerAddr  = "127.0.0.3" // the second resolver of a chain (Unbound behind dnsmasq)
	apiAddr    = "127.0.0.1:8053"
)

// ---------------------------------------------------------------------------
// Requirements: skip (or fail) with a clear message.

func envTrue(name string) bool { v, _ := strconv.ParseBool(os.Getenv(name)); return v }

// skipOrFail skips the test, or fails it when fatal is set (CI=true and a
// package is missing) or when SE_E2E_REQUIRE=1 asks for every skip to fail.
func skipOrFail(t *testing.T, fatal bool, format string, args ...any) {
	t.Helper()
	switch {
	case fatal:
		t.Fatalf(format+"\n(failing instead of skipping: CI=true and a required package is missing)", args...)
	case envTrue("SE_E2E_REQUIRE"):
		t.Fatalf(format+"\n(failing instead of skipping: SE_E2E_REQUIRE=1)", args...)
	}
	t.Skipf(format, args...)
}

// findBin looks in PATH, then in the sbin directories that a non-login root
// shell (sudo, CI runners) may leave out of PATH.
func findBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

type tools struct {
	ip, cp, apache2ctl, goCmd string
}

const aptHint = "apt-get install -y apache2 libapache2-mod-security2 iproute2"

func checkRequirements(t *testing.T) tools {
	t.Helper()
	if runtime.GOOS != "linux" {
		skipOrFail(t, false, "TestRealModSecurity needs Linux (network namespaces, Debian's apache2 + mod_security2)")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, false, "TestRealModSecurity needs root (ip netns, Apache on port 80 and DNS on port 53 inside a private namespace); "+
			"run: sudo env PATH=$PATH go test ./test/e2e/ -run TestRealModSecurity -v -count=1")
	}
	var tl tools
	var missing []string
	bin := func(dst *string, name, pkg string) {
		p := findBin(name)
		if p == "" {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", name, pkg))
		}
		if dst != nil {
			*dst = p
		}
	}
	file := func(path, pkg string) {
		if _, err := os.Stat(path); err != nil {
			missing = append(missing, fmt.Sprintf("%s (Debian package %s)", path, pkg))
		}
	}
	bin(&tl.ip, "ip", "iproute2")
	bin(&tl.cp, "cp", "coreutils")
	bin(&tl.apache2ctl, "apache2ctl", "apache2")
	bin(nil, "apache2", "apache2-bin")
	file("/etc/apache2/apache2.conf", "apache2")
	file("/etc/apache2/mods-available/unique_id.load", "apache2")
	file("/etc/apache2/mods-available/security2.load", "libapache2-mod-security2")
	file("/usr/lib/apache2/modules/mod_security2.so", "libapache2-mod-security2")
	if len(missing) > 0 {
		skipOrFail(t, envTrue("CI"), "TestRealModSecurity: missing %s; install with: %s",
			strings.Join(missing, ", "), aptHint)
	}
	if p := findBin("go"); p != "" {
		tl.goCmd = p
	} else {
		tl.goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	return tl
}

// ---------------------------------------------------------------------------
// The harness: one namespace, one private Apache configuration, one temp dir.

type harness struct {
	tools
	ns        *netnstest.NS
	dir       string // private temp dir (0755 so www-data can reach lock/ and msc-data/)
	apacheDir string // private copy of /etc/apache2 (APACHE_CONFDIR)
	errorLog  string
	pidFile   string
	coredns   string // the server binary under test
}

func newHarness(t *testing.T, tl tools) *harness {
	t.Helper()
	dir, err := os.MkdirTemp("", "se-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if envTrue("SE_E2E_KEEP") {
			t.Logf("SE_E2E_KEEP=1: leaving %s in place", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return &harness{tools: tl, dir: dir}
}

// run runs a short command with a deadline. Output goes to a file, not a
// pipe, so a daemon that inherits it (Apache) cannot make us wait for EOF.
func (h *harness) run(timeout time.Duration, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := os.CreateTemp(h.dir, "cmd-*.out")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), env...)
	cmd.WaitDelay = 2 * time.Second
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	if ctx.Err() == context.DeadlineExceeded {
		err = fmt.Errorf("%s %s: timed out after %v: %w", name, strings.Join(args, " "), timeout, err)
	} else if err != nil {
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), err
}

// inNetns runs a short command inside the namespace.
func (h *harness) inNetns(timeout time.Duration, env []string, args ...string) (string, error) {
	return h.run(timeout, env, h.ip, h.ns.ExecArgs(args[0], args[1:]...)...)
}

// buildServer builds ./build/coredns once from the module root.
func (h *harness) buildServer(t *testing.T) {
	t.Helper()
	root, err := servertest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	h.coredns = filepath.Join(h.dir, "coredns")
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if b, err := servertest.Build(ctx, h.goCmd, root, h.coredns); err != nil {
		t.Fatalf("go build ./build/coredns: %v\n%s", err, bytes.TrimSpace(b))
	}
	t.Logf("built %s in %v", h.coredns, time.Since(start).Round(time.Millisecond))
	out, err := h.run(30*time.Second, nil, h.coredns, "-plugins")
	if err != nil {
		t.Fatalf("coredns -plugins: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^\s*(dns\.)?statusengine\s*$`).MatchString(out) {
		t.Fatalf("the server built from ./build/coredns does not list the statusengine plugin (coredns -plugins):\n%s", out)
	}
}

// setupNetns creates the namespace: lo up, 127.0.0.2/8 on lo, and
// /etc/netns/<ns>/{resolv.conf,nsswitch.conf}, which `ip netns exec`
// bind-mounts over /etc for the processes it starts (the host's files stay as
// they are). nsswitch.conf pins "hosts: files dns" so that glibc resolves the
// beacon through resolv.conf (127.0.0.1) and never hands it to a host daemon
// (systemd-resolved, nscd, mdns) outside the namespace.
func (h *harness) setupNetns(t *testing.T) {
	t.Helper()
	name := fmt.Sprintf("se-e2e-%d", os.Getpid())
	ns, err := netnstest.Add(h.ip, name)
	if err != nil && strings.Contains(err.Error(), "File exists") {
		// A stale namespace of a crashed run with our pid: only this test makes such names.
		(&netnstest.NS{Name: name, IP: h.ip}).Delete()
		ns, err = netnstest.Add(h.ip, name)
	}
	if err != nil {
		skipOrFail(t, false, "cannot create a network namespace (%v); the test needs root with CAP_SYS_ADMIN (a privileged container or a VM)", err)
	}
	h.ns = ns
	etcNetns := "/etc/netns"
	_, statErr := os.Stat(etcNetns)
	createdEtcNetns := os.IsNotExist(statErr)
	nsEtc := filepath.Join(etcNetns, ns.Name)
	t.Cleanup(func() {
		if err := ns.Delete(); err != nil {
			t.Error(err)
		}
		os.RemoveAll(nsEtc)
		if createdEtcNetns {
			os.Remove(etcNetns) // only if empty
		}
	})
	if err := ns.Setup(authAddr+"/8", innerAddr+"/8"); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(nsEtc, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(nsEtc, "resolv.conf"), "nameserver 127.0.0.1\n")
	nss := "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n"
	if b, err := os.ReadFile("/etc/nsswitch.conf"); err == nil {
		nss = regexp.MustCompile(`(?m)^hosts:.*$`).ReplaceAllString(string(b), "hosts:          files dns")
	}
	writeFile(t, filepath.Join(nsEtc, "nsswitch.conf"), nss)
	t.Logf("network namespace %s: lo up with 127.0.0.1, %s and %s; /etc/netns/%s/resolv.conf -> nameserver 127.0.0.1", ns.Name, authAddr, innerAddr, ns.Name)
}

// writeFile replaces path (never writing through a symlink of the copied tree).
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	os.Remove(path)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Apache with mod_security2, private configuration (like drive-modsec.sh setup).

func (h *harness) setupApache(t *testing.T) {
	t.Helper()
	base := filepath.Join(h.dir, "apache")
	for _, d := range []string{"logs", "run", "lock", "msc-data"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	u, err := user.Lookup("www-data")
	if err != nil {
		t.Fatalf("user www-data (created by Debian's base-passwd, used by apache2): %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, d := range []string{"lock", "msc-data"} {
		if err := os.Chown(filepath.Join(base, d), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	h.apacheDir = filepath.Join(base, "apache2")
	if out, err := h.run(30*time.Second, nil, h.cp, "-a", "/etc/apache2", h.apacheDir); err != nil {
		t.Fatalf("copying /etc/apache2: %v: %s", err, out)
	}
	h.errorLog = filepath.Join(base, "logs", "error.log")
	h.pidFile = filepath.Join(base, "run", "apache2.pid")
	writeFile(t, filepath.Join(h.apacheDir, "envvars"), fmt.Sprintf(`unset HOME
export APACHE_RUN_USER=www-data
export APACHE_RUN_GROUP=www-data
export APACHE_PID_FILE=%[1]s/run/apache2.pid
export APACHE_RUN_DIR=%[1]s/run
export APACHE_LOCK_DIR=%[1]s/lock
export APACHE_LOG_DIR=%[1]s/logs
export LANG=C
`, base))
	writeFile(t, filepath.Join(h.apacheDir, "ports.conf"), "Listen 127.0.0.1:80\n")
	// ServerName avoids Apache's own lookup of the host name (DNS noise).
	writeFile(t, filepath.Join(h.apacheDir, "conf-enabled", "zz-servername.conf"), "ServerName localhost\n")
	for _, m := range []string{"unique_id.load", "security2.load"} {
		link := filepath.Join(h.apacheDir, "mods-enabled", m)
		os.Remove(link)
		if err := os.Symlink("../mods-available/"+m, link); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(h.apacheDir, "mods-enabled", "security2.conf"), fmt.Sprintf(`<IfModule security2_module>
    SecDataDir %s/msc-data
    IncludeOptional /etc/modsecurity/*.conf
    IncludeOptional /usr/share/modsecurity-crs/*.load
    SecStatusEngine On
</IfModule>
`, base))
	writeFile(t, h.errorLog, "")
	t.Cleanup(func() { h.stopApacheIfRunning(t) })
	if out, err := h.apachectl(30*time.Second, "configtest"); err != nil {
		t.Fatalf("apache2ctl configtest (APACHE_CONFDIR=%s): %v\n%s", h.apacheDir, err, out)
	}
	t.Logf("Apache config in %s: Listen 127.0.0.1:80, ServerName localhost, unique_id + security2, SecStatusEngine On", h.apacheDir)
}

// apachectl runs Debian's apache2ctl on our private configuration inside the
// namespace. APACHE_STARTED_BY_SYSTEMD stops apache2ctl from turning
// `-k start` into `systemctl start apache2` (the host's Apache, in the host
// namespace) when PID 1 is systemd, as on a CI virtual machine.
func (h *harness) apachectl(timeout time.Duration, args ...string) (string, error) {
	env := []string{"APACHE_CONFDIR=" + h.apacheDir, "APACHE_STARTED_BY_SYSTEMD=true"}
	return h.inNetns(timeout, env, append([]string{h.apache2ctl}, args...)...)
}

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z' && s[i+2] != 'X'
	}
	return true
}

// waitFor polls cond every 50 ms until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (h *harness) apachePid() int {
	b, err := os.ReadFile(h.pidFile)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// stopApache stops the Apache whose master is pid (read from our private pid
// file), with bounded waits; SIGKILL by that pid as the last resort.
func (h *harness) stopApache(t *testing.T, pid int) {
	t.Helper()
	if out, err := h.apachectl(20*time.Second, "-k", "stop"); err != nil {
		t.Errorf("apache2ctl -k stop: %v: %s", err, out)
	}
	if !waitFor(15*time.Second, func() bool { return !alive(pid) }) {
		t.Errorf("Apache (pid %d) still running 15s after -k stop; killing it", pid)
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
		waitFor(5*time.Second, func() bool { return !alive(pid) })
	}
	os.Remove(h.pidFile)
}

func (h *harness) stopApacheIfRunning(t *testing.T) {
	if pid := h.apachePid(); pid > 0 && alive(pid) {
		h.stopApache(t, pid)
	}
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// tail returns at most the last n bytes of s, cut at a line start.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return "[...]\n" + s
}

// apacheStart is one Apache cold start as seen in its error.log.
type apacheStart struct {
	n                 int
	started, returned time.Time // around `apache2ctl -k start`
	calls             []string  // beacons of the "StatusEngine call: ..." lines
	sent              int       // "StatusEngine call successfully sent" lines
	failed            []string  // queries of "StatusEngine call failed" lines
	lines             []string  // every StatusEngine line
	graceful          bool      // a `-k graceful` was done before the stop
	restarts          []string  // with graceful: the SIGUSR1 and "resuming" lines
}

var (
	reCall   = regexp.MustCompile(`ModSecurity: StatusEngine call: "(.*)"\s*$`)
	reSent   = regexp.MustCompile(`StatusEngine call successfully sent`)
	reFailed = regexp.MustCompile(`StatusEngine call failed\. Query: (\S*)`)
	reResume = regexp.MustCompile(`AH00489: .*resuming normal operations`)
	reUSR1   = regexp.MustCompile(`AH00493: SIGUSR1 received`)
)

// coldStart starts Apache (the beacon is resolved synchronously before
// `-k start` returns), waits for the pid file, optionally does a graceful
// restart (which must not beacon), stops it and waits for the master to exit,
// then parses the new part of error.log.
func (h *harness) coldStart(t *testing.T, n int, graceful bool) apacheStart {
	t.Helper()
	s := apacheStart{n: n, graceful: graceful}
	off := fileSize(h.errorLog)
	s.started = time.Now()
	out, err := h.apachectl(40*time.Second, "-k", "start")
	s.returned = time.Now()
	if err != nil {
		t.Fatalf("start %d: apache2ctl -k start: %v\n%s\nerror.log:\n%s", n, err, out, tail(readFrom(h.errorLog, off), 4000))
	}
	var pid int
	if !waitFor(10*time.Second, func() bool { pid = h.apachePid(); return pid > 0 }) {
		t.Fatalf("start %d: no pid file %s 10s after apache2ctl -k start\nerror.log:\n%s", n, h.pidFile, tail(readFrom(h.errorLog, off), 4000))
	}
	if graceful {
		count := func() int { return len(reResume.FindAllString(readFrom(h.errorLog, off), -1)) }
		if !waitFor(10*time.Second, func() bool { return count() >= 1 }) {
			t.Errorf("start %d: Apache did not log 'resuming normal operations' within 10s", n)
		}
		if out, err := h.apachectl(20*time.Second, "-k", "graceful"); err != nil {
			t.Errorf("start %d: apache2ctl -k graceful: %v: %s", n, err, out)
		} else if !waitFor(10*time.Second, func() bool { return count() >= 2 }) {
			t.Errorf("start %d: Apache did not finish the graceful restart within 10s", n)
		}
	}
	h.stopApache(t, pid)
	for _, line := range strings.Split(readFrom(h.errorLog, off), "\n") {
		if graceful && (reResume.MatchString(line) || reUSR1.MatchString(line)) {
			s.restarts = append(s.restarts, line)
		}
		if !strings.Contains(line, "StatusEngine") {
			continue
		}
		s.lines = append(s.lines, line)
		if m := reCall.FindStringSubmatch(line); m != nil {
			s.calls = append(s.calls, m[1])
		}
		if reSent.MatchString(line) {
			s.sent++
		}
		if m := reFailed.FindStringSubmatch(line); m != nil {
			s.failed = append(s.failed, m[1])
		}
	}
	return s
}

// spaceStarts waits until at least 1.1 s have passed since prev started and
// the wall clock is in a later second than prev's, so the epoch label differs.
func spaceStarts(prev apacheStart) {
	for i := 0; i < 100; i++ { // bounded: at most ~3 s
		if time.Since(prev.started) >= 1100*time.Millisecond && time.Now().Unix() > prev.returned.Unix() {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Long-running processes inside the namespace, stopped by their own pid.

type proc struct {
	*servertest.Proc
	name    string
	logPath string
}

func (h *harness) startProc(t *testing.T, name, logPath string, args ...string) *proc {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// The started process is the daemon itself (coredns or a resolver), not a
	// wrapper: see netnstest.NS.Command.
	cmd := h.ns.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	sp, err := servertest.Start(cmd)
	lf.Close()
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{Proc: sp, name: name, logPath: logPath}
	t.Cleanup(func() { p.stop(t) })
	t.Logf("started %s (pid %d): %s", name, p.Pid(), strings.Join(args, " "))
	return p
}

// stop sends SIGTERM to the process we started, then SIGKILL after 10 s.
func (p *proc) stop(t *testing.T) {
	if p.Exited() {
		return
	}
	p.Cmd.Process.Signal(syscall.SIGTERM)
	if p.WaitExit(10 * time.Second) {
		return
	}
	t.Errorf("%s (pid %d) did not exit within 10s of SIGTERM; sending SIGKILL", p.name, p.Pid())
	p.Cmd.Process.Kill()
	if !p.WaitExit(5 * time.Second) {
		t.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.Pid())
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// ---------------------------------------------------------------------------
// Our server.

const corefileTmpl = `status.modsecurity.org:53 {
    bind %s
    log
    errors
    statusengine {
        answer %s
        db %s
        api %s
    }
}
`

type server struct {
	*proc
	h        *harness
	dir      string
	corefile string
}

// startServer writes a Corefile and starts our server inside the namespace,
// bound to bind:53 and answering every report name with answer, with its API
// on 127.0.0.1:8053 (inside the namespace too; the test reaches it with a
// socket opened in the namespace, see netnstest.NS.Dial). The stock `log`
// plugin is on so that the queries the server saw can be reported.
func (h *harness) startServer(t *testing.T, name, bind, answer string) *server {
	t.Helper()
	dir := filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &server{h: h, dir: dir, corefile: filepath.Join(dir, "Corefile")}
	cf := fmt.Sprintf(corefileTmpl, bind, answer, filepath.Join(dir, "statusengine.db"), apiAddr)
	writeFile(t, s.corefile, cf)
	t.Logf("Corefile:\n%s", cf)
	s.proc = h.startProc(t, "coredns", filepath.Join(dir, "server.log"), h.coredns, "-conf", s.corefile)

	// Ready when the API answers and a DNS query to bind:53 gets a reply.
	var lastErr error
	ready := waitFor(30*time.Second, func() bool {
		if s.Exited() {
			return true
		}
		code, body, err := h.httpGet(fmt.Sprintf("http://%s/api/0/1", apiAddr))
		if err != nil || code != http.StatusOK {
			lastErr = fmt.Errorf("GET /api/0/1: %d %q %v", code, body, err)
			return false
		}
		return true
	})
	if s.Exited() {
		t.Fatalf("our server exited during startup (%v); its output:\n%s", s.Err(), tail(s.log(), 8000))
	}
	if !ready {
		t.Fatalf("our server's API did not answer within 30s (last: %v); its output:\n%s", lastErr, tail(s.log(), 8000))
	}
	// The probe name is the zone apex in mixed case: the reply must echo the
	// question's letter case exactly (Unbound's use-caps-for-id relies on it).
	const probe = "StAtUs.MoDsEcUrItY.oRg."
	var resp dnsReply
	var err error
	if !waitFor(10*time.Second, func() bool {
		resp, err = h.dnsQuery(net.JoinHostPort(bind, "53"), probe, 1)
		return err == nil
	}) {
		t.Fatalf("our server did not answer a DNS query on %s:53 within 10s: %v; its output:\n%s", bind, err, tail(s.log(), 8000))
	}
	t.Logf("our server is up: API on %s; probe %s A @%s:53 -> %s", apiAddr, probe, bind, resp)
	if resp.qname != probe || resp.rcode != 0 {
		t.Errorf("probe %s A: reply %s; want NOERROR with the question echoed byte for byte", probe, resp)
	}
	return s
}

// apiResponse is the GET /api/{from}/{to} document.
type apiResponse struct {
	Time struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Amount  int                          `json:"amount"`
	Results []map[string]json.RawMessage `json:"results"`
}

func (s *server) reports() (*apiResponse, []byte, error) {
	url := fmt.Sprintf("http://%s/api/0/%d", apiAddr, time.Now().Unix()+60)
	code, body, err := s.h.httpGet(url)
	if err != nil {
		return nil, body, err
	}
	if code != http.StatusOK {
		return nil, body, fmt.Errorf("GET %s: HTTP %d", url, code)
	}
	var r apiResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, body, fmt.Errorf("GET %s: decoding: %v", url, err)
	}
	return &r, body, nil
}

// waitReports polls the API until it lists at least want reports (storage
// may be batched), then waits a little more and reads again, so that a late
// extra report (a duplicate, a stored partial name) is seen too.
func (s *server) waitReports(t *testing.T, want int) (*apiResponse, []byte) {
	t.Helper()
	var r *apiResponse
	var body []byte
	var err error
	waitFor(15*time.Second, func() bool {
		r, body, err = s.reports()
		return err == nil && r.Amount >= want && len(r.Results) >= want
	})
	time.Sleep(1500 * time.Millisecond)
	r, body, err = s.reports()
	if err != nil {
		t.Fatalf("API: %v\nbody: %s\nserver output:\n%s", err, body, tail(s.log(), 8000))
	}
	return r, body
}

// seenQuery is one query line of the stock `log` plugin: the question, the
// DO bit, the rcode and the reply's flags (rd is copied from the query).
type seenQuery struct{ qtype, name, proto, do, rcode, flags string }

func (q seenQuery) String() string {
	return fmt.Sprintf("%s %s %s do=%s -> %s %s", q.proto, q.qtype, q.name, q.do, q.rcode, q.flags)
}

var reLogLine = regexp.MustCompile(`"(\S+) IN (\S+) (udp|tcp) \d+ (true|false) \d+" (\S+) (\S+)`)

func (s *server) queries() []seenQuery {
	var qs []seenQuery
	for _, m := range reLogLine.FindAllStringSubmatch(s.log(), -1) {
		qs = append(qs, seenQuery{qtype: m[1], name: m[2], proto: m[3], do: m[4], rcode: m[5], flags: m[6]})
	}
	return qs
}

// ---------------------------------------------------------------------------
// Talking to things inside the namespace.

func (h *harness) httpGet(url string) (int, []byte, error) {
	resp, err := h.ns.HTTPClient(5 * time.Second).Get(url)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, body, err
}

type dnsReply struct {
	rcode, ancount int
	qname          string
	aa             bool
}

func (r dnsReply) String() string {
	return fmt.Sprintf("rcode=%d answers=%d aa=%v qname=%s", r.rcode, r.ancount, r.aa, r.qname)
}

// dnsQuery sends one plain UDP query (RD set, no EDNS) inside the namespace.
func (h *harness) dnsQuery(server, name string, qtype uint16) (dnsReply, error) {
	var r dnsReply
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := h.ns.Dial(ctx, "udp", "", server)
	if err != nil {
		return r, err
	}
	defer c.Close()
	var idb [2]byte
	rand.Read(idb[:])
	id := binary.BigEndian.Uint16(idb[:])
	msg := binary.BigEndian.AppendUint16(nil, id)
	msg = append(msg, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0)
	for _, l := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		msg = append(msg, byte(len(l)))
		msg = append(msg, l...)
	}
	msg = append(msg, 0)
	msg = binary.BigEndian.AppendUint16(msg, qtype)
	msg = binary.BigEndian.AppendUint16(msg, 1)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return r, err
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		return r, err
	}
	buf = buf[:n]
	if n < 12 || binary.BigEndian.Uint16(buf) != id {
		return r, errors.New("short reply or wrong id")
	}
	r.rcode = int(buf[3] & 0x0f)
	r.aa = buf[2]&0x04 != 0
	r.ancount = int(binary.BigEndian.Uint16(buf[6:]))
	var labels []string
	for off := 12; off < n && buf[off] != 0 && buf[off] < 64 && off+1+int(buf[off]) <= n; off += 1 + int(buf[off]) {
		labels = append(labels, string(buf[off+1:off+1+int(buf[off])]))
	}
	r.qname = strings.Join(labels, ".") + "."
	return r, nil
}
