package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// ---------------------------------------------------------------------------
// Recursive resolvers between the glibc stub and our server. Each runs as a
// copy of its Debian binary, from the temp dir, in the foreground, as root,
// inside the namespace, with a configuration written here and nothing read
// from /etc. (Debian ships AppArmor profiles that attach to /usr/sbin/unbound,
// /usr/sbin/named and others and keep them to /etc and /var: a copy elsewhere
// is not attached.) Every resolver sends only to our server: the namespace has
// no route out, so the root-server priming some of them try fails at once.

// resolver is one started resolver.
type resolver struct {
	*proc
	kind    string
	logFile string // its own log file; "" when it logs to its output
}

// ownLog is what the resolver logged.
func (r *resolver) ownLog() string {
	if r.logFile == "" {
		return r.log()
	}
	b, _ := os.ReadFile(r.logFile)
	return string(b)
}

// need finds the programs a scenario runs, or skips it (fails with CI=true)
// naming the Debian package.
func need(t *testing.T, pkg string, names ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	var missing []string
	for _, n := range names {
		if p := findBin(n); p != "" {
			paths[n] = p
		} else {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		skipOrFail(t, envTrue("CI"), "missing %s (Debian package %s); install with: apt-get install -y %s",
			strings.Join(missing, ", "), pkg, pkg)
	}
	return paths
}

// resolverDir makes the resolver's private directory and copies its binary
// there (see above), returning both.
func (h *harness) resolverDir(t *testing.T, name, bin string) (dir, copied string) {
	t.Helper()
	dir = filepath.Join(h.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copied = filepath.Join(dir, filepath.Base(bin))
	if out, err := h.run(30*time.Second, nil, h.cp, bin, copied); err != nil {
		t.Fatalf("copying %s: %v: %s", bin, err, out)
	}
	return dir, copied
}

// waitResolver waits until the resolver on addr:53 answers a name of the
// zone (which it gets from our server), or fails with its log.
func (h *harness) waitResolver(t *testing.T, r *resolver, addr string) {
	t.Helper()
	const probe = "status.modsecurity.org."
	var resp dnsReply
	var err error
	ok := waitFor(20*time.Second, func() bool {
		if r.Exited() {
			return true
		}
		resp, err = h.dnsQuery(net.JoinHostPort(addr, "53"), probe, 1)
		return err == nil && resp.rcode == 0 && resp.ancount > 0
	})
	if r.Exited() || !ok {
		t.Fatalf("%s on %s:53 did not resolve %s A within 20s (exited: %v %v; last reply %s, %v)\noutput:\n%s\nlog:\n%s",
			r.kind, addr, probe, r.Exited(), r.Err(), resp, err, tail(r.log(), 4000), tail(r.ownLog(), 8000))
	}
	t.Logf("%s is up on %s:53: %s A -> %s", r.kind, addr, probe, resp)
}

// ---------------------------------------------------------------------------
// Unbound: verbosity 4, so that its log shows every query it sends upstream,
// the 0x20-randomised name and whether the reply echoed it.

// startUnbound starts Unbound on listen:53 with a stub zone for our server at
// stubAddr: QNAME minimisation and 0x20 on, and with prime the stub is primed
// (Unbound asks the zone's NS set and then the NS names' addresses, and sends
// every later query to those).
func (h *harness) startUnbound(t *testing.T, name, listen, stubAddr string, prime bool) *resolver {
	t.Helper()
	bins := need(t, "unbound", "unbound", "unbound-checkconf")
	dir, bin := h.resolverDir(t, name, bins["unbound"])
	r := &resolver{kind: "unbound", logFile: filepath.Join(dir, "unbound.log")}
	conf := filepath.Join(dir, "unbound.conf")
	primeOpt := "no"
	if prime {
		primeOpt = "yes"
	}
	writeFile(t, conf, fmt.Sprintf(`server:
    verbosity: 4
    interface: %[2]s
    port: 53
    do-ip6: no
    do-daemonize: no
    username: ""
    chroot: ""
    directory: "%[1]s"
    pidfile: "%[1]s/unbound.pid"
    use-syslog: no
    logfile: "%[3]s"
    log-queries: yes
    log-replies: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    qname-minimisation: yes
    use-caps-for-id: yes
stub-zone:
    name: "%[4]s"
    stub-addr: %[5]s@53
    stub-prime: %[6]s
`, dir, listen, r.logFile, zone, stubAddr, primeOpt))
	if out, err := h.run(30*time.Second, nil, bins["unbound-checkconf"], conf); err != nil {
		t.Fatalf("unbound-checkconf: %v: %s", err, out)
	}
	r.proc = h.startProc(t, "unbound", filepath.Join(dir, "stdout.log"), bin, "-d", "-c", conf)
	if !waitFor(15*time.Second, func() bool {
		return r.Exited() || strings.Contains(r.ownLog(), "start of service")
	}) || r.Exited() {
		t.Fatalf("unbound did not start within 15s (exited: %v %v)\nstdout:\n%s\nlog:\n%s", r.Exited(), r.Err(), r.log(), tail(r.ownLog(), 8000))
	}
	h.waitResolver(t, r, listen)
	return r
}

var (
	reUBClient = regexp.MustCompile(`(?m)info: 127\.0\.0\.1 (\S+) A IN$`)
	reUBSent   = regexp.MustCompile(`(?m)info: sending query: (\S+) (\S+) IN$`)
	// verbosity 4: the name as it goes out after use-caps-for-id
	reUBPerturbed = regexp.MustCompile(`(?m)debug: qname perturbed to (\S+)$`)
	reUBCapsFail  = regexp.MustCompile(`(?mi)^.*(capsforid|0x20 fallback|0x20 failed|wrong 0x20).*$`)
)

// ---------------------------------------------------------------------------
// BIND 9: a static-stub zone for our server, QNAME minimisation relaxed (the
// default) or strict. BIND minimises with NS queries and sends DNS cookies.

func (h *harness) startBind(t *testing.T, name, minimisation string) *resolver {
	t.Helper()
	bins := need(t, "bind9", "named", "named-checkconf")
	dir, bin := h.resolverDir(t, name, bins["named"])
	r := &resolver{kind: "named", logFile: filepath.Join(dir, "named.log")}
	conf := filepath.Join(dir, "named.conf")
	writeFile(t, conf, fmt.Sprintf(`options {
    directory "%[1]s";
    pid-file "%[1]s/named.pid";
    session-keyfile "%[1]s/session.key";
    managed-keys-directory "%[1]s";
    listen-on port 53 { %[2]s; };
    listen-on-v6 { none; };
    query-source address %[2]s;
    recursion yes;
    allow-query { 127.0.0.0/8; };
    allow-recursion { 127.0.0.0/8; };
    dnssec-validation no;
    qname-minimization %[3]s;
    notify no;
};
controls { };
logging {
    channel all { file "%[4]s"; severity info; print-time yes; print-category yes; print-severity yes; };
    category default { all; };
    category queries { all; };
    category resolver { all; };
    category lame-servers { all; };
    category edns-disabled { all; };
};
zone "%[5]s" {
    type static-stub;
    server-addresses { %[6]s; };
};
`, dir, directAddr, minimisation, r.logFile, zone, authAddr))
	if out, err := h.run(30*time.Second, nil, bins["named-checkconf"], conf); err != nil {
		t.Fatalf("named-checkconf: %v: %s", err, out)
	}
	r.proc = h.startProc(t, "named", filepath.Join(dir, "stdout.log"), bin, "-f", "-4", "-c", conf)
	h.waitResolver(t, r, directAddr)
	return r
}

// ---------------------------------------------------------------------------
// Knot Resolver 5: the STUB policy sends the zone's queries to our server.

func (h *harness) startKnot(t *testing.T, name string) *resolver {
	t.Helper()
	bins := need(t, "knot-resolver", "kresd")
	dir, bin := h.resolverDir(t, name, bins["kresd"])
	r := &resolver{kind: "kresd"}
	conf := filepath.Join(dir, "kresd.conf")
	writeFile(t, conf, fmt.Sprintf(`-- written by test/e2e
log_level('info')
net.ipv6 = false
net.listen('%[2]s', 53, { kind = 'dns' })
cache.open(10 * MB, 'lmdb://%[1]s/cache')
trust_anchors.remove('.')
policy.add(policy.suffix(policy.STUB({'%[3]s'}), {todname('%[4]s.')}))
`, dir, directAddr, authAddr, zone))
	r.proc = h.startProc(t, "kresd", filepath.Join(dir, "stdout.log"), bin, "-n", "-c", conf, dir)
	h.waitResolver(t, r, directAddr)
	return r
}

// ---------------------------------------------------------------------------
// PowerDNS Recursor 4: forward-zones (RD clear, minimising with A queries).

func (h *harness) startPdns(t *testing.T, name string) *resolver {
	t.Helper()
	bins := need(t, "pdns-recursor", "pdns_recursor")
	dir, bin := h.resolverDir(t, name, bins["pdns_recursor"])
	r := &resolver{kind: "pdns_recursor"}
	writeFile(t, filepath.Join(dir, "recursor.conf"), fmt.Sprintf(`# written by test/e2e
local-address=%[2]s
local-port=53
allow-from=127.0.0.0/8
query-local-address=%[2]s
forward-zones=%[4]s=%[3]s
dont-query=
dnssec=off
socket-dir=%[1]s
daemon=no
write-pid=no
disable-syslog=yes
log-timestamp=yes
loglevel=6
quiet=no
threads=1
security-poll-suffix=
`, dir, directAddr, authAddr, zone))
	r.proc = h.startProc(t, "pdns_recursor", filepath.Join(dir, "stdout.log"), bin, "--config-dir="+dir)
	h.waitResolver(t, r, directAddr)
	return r
}

// ---------------------------------------------------------------------------
// dnsmasq forwarding to Unbound (a home router or a small office in front of
// a real resolver): dnsmasq on 127.0.0.1 -> Unbound on 127.0.0.3 -> us.

func (h *harness) startDnsmasq(t *testing.T, name, upstream string) *resolver {
	t.Helper()
	bins := need(t, "dnsmasq", "dnsmasq")
	dir, bin := h.resolverDir(t, name, bins["dnsmasq"])
	r := &resolver{kind: "dnsmasq"}
	r.proc = h.startProc(t, "dnsmasq", filepath.Join(dir, "stdout.log"), bin,
		"--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
		"--listen-address="+directAddr, "--bind-interfaces", "--port=53", "--server="+upstream,
		"--log-queries=extra", "--log-facility=-", "--user=root", "--group=root", "--pid-file="+filepath.Join(dir, "dnsmasq.pid"))
	h.waitResolver(t, r, directAddr)
	return r
}
