package e2e

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestRealModSecurity drives the real ModSecurity 2.x SecStatusEngine client
// (Debian's apache2 + libapache2-mod-security2) against our server, in a
// private network namespace, directly and through every resolver of the
// brief's table (see scenarios). Each scenario does two Apache cold starts,
// then checks through the JSON API that exactly one report per cold start was
// stored, with the fields Apache logged. Needs root and the Debian packages
// listed in test/README.md; a scenario whose resolver is not installed skips
// (fails with CI=true).
func TestRealModSecurity(t *testing.T) {
	tl := checkRequirements(t)
	h := newHarness(t, tl)
	h.setupNetns(t) // first: skips at once where namespaces are not permitted
	h.buildServer(t)
	h.setupApache(t)
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { h.runScenario(t, sc) })
	}
}

// scenario is one path from the glibc stub to our server.
type scenario struct {
	name   string
	answer string // the Corefile's answer address (what report names resolve to)
	// resolvers starts what the stub asks, our server listening on
	// authAddr; nil: the stub asks our server on directAddr.
	resolvers func(*testing.T, *harness) []*resolver
	graceful  bool // the second start also gets -k graceful, which must not report
	// check looks at what the resolvers sent, after the reports are checked.
	check func(*testing.T, *server, []*resolver, []apacheStart)
}

var scenarios = []scenario{
	{name: "direct", answer: "127.0.0.1"},
	{name: "unbound", answer: "127.0.0.1", graceful: true,
		resolvers: func(t *testing.T, h *harness) []*resolver {
			return []*resolver{h.startUnbound(t, "unbound", directAddr, authAddr, false)}
		},
		check: func(t *testing.T, _ *server, rs []*resolver, starts []apacheStart) { checkMinimised(t, rs[0], starts) }},
	// stub-prime: Unbound asks the zone's NS set, then ns1.<zone>'s address,
	// and sends everything after to that address. With an answer that is
	// not the server's, only an NS name resolving to the server itself
	// (the address the query arrived on) keeps the reports coming.
	{name: "unbound-stub-prime", answer: "127.0.0.9",
		resolvers: func(t *testing.T, h *harness) []*resolver {
			return []*resolver{h.startUnbound(t, "unbound-prime", directAddr, authAddr, true)}
		},
		check: func(t *testing.T, srv *server, rs []*resolver, starts []apacheStart) {
			checkMinimised(t, rs[0], starts)
			checkPrimed(t, srv)
		}},
	{name: "bind-relaxed", answer: "127.0.0.1",
		resolvers: func(t *testing.T, h *harness) []*resolver {
			return []*resolver{h.startBind(t, "bind-relaxed", "relaxed")}
		},
		check: func(t *testing.T, srv *server, _ []*resolver, starts []apacheStart) {
			checkMinimisedWith(t, srv, starts, "NS")
		}},
	{name: "bind-strict", answer: "127.0.0.1",
		resolvers: func(t *testing.T, h *harness) []*resolver {
			return []*resolver{h.startBind(t, "bind-strict", "strict")}
		},
		check: func(t *testing.T, srv *server, _ []*resolver, starts []apacheStart) {
			checkMinimisedWith(t, srv, starts, "NS")
		}},
	{name: "knot-stub", answer: "127.0.0.1",
		resolvers: func(t *testing.T, h *harness) []*resolver { return []*resolver{h.startKnot(t, "knot")} },
		check:     func(t *testing.T, srv *server, _ []*resolver, starts []apacheStart) { checkStubRD(t, srv, starts) }},
	{name: "pdns-forward", answer: "127.0.0.1",
		resolvers: func(t *testing.T, h *harness) []*resolver { return []*resolver{h.startPdns(t, "pdns")} },
		check: func(t *testing.T, srv *server, _ []*resolver, starts []apacheStart) {
			checkMinimisedWith(t, srv, starts, "A")
			checkNoRD(t, srv, starts)
		}},
	{name: "dnsmasq-unbound", answer: "127.0.0.1",
		resolvers: func(t *testing.T, h *harness) []*resolver {
			ub := h.startUnbound(t, "unbound-inner", innerAddr, authAddr, false)
			return []*resolver{h.startDnsmasq(t, "dnsmasq", innerAddr), ub}
		},
		check: func(t *testing.T, srv *server, _ []*resolver, starts []apacheStart) {
			checkMinimisedWith(t, srv, starts, "A")
		}},
}

// runScenario starts our server (and the scenario's resolvers), does two
// Apache cold starts and checks what was stored.
func (h *harness) runScenario(t *testing.T, sc scenario) {
	bind := directAddr
	if sc.resolvers != nil {
		bind = authAddr
	}
	srv := h.startServer(t, sc.name, bind, sc.answer)
	var rs []*resolver
	if sc.resolvers != nil {
		rs = sc.resolvers(t, h)
	}
	dumpOnFailure(t, h, srv, rs)
	starts := []apacheStart{h.coldStart(t, 1, false)}
	spaceStarts(starts[0])
	starts = append(starts, h.coldStart(t, 2, sc.graceful))
	checkApacheLines(t, starts)
	checkStored(t, srv, starts)
	checkServerQueries(t, srv, starts, sc.resolvers != nil)
	if sc.check != nil {
		sc.check(t, srv, rs, starts)
	}
}

// dumpOnFailure logs, if the (sub)test failed, everything needed to diagnose
// it from a CI log: our server's output, Apache's error.log, the resolvers'
// logs.
func dumpOnFailure(t *testing.T, h *harness, srv *server, rs []*resolver) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("Apache error.log (%s):\n%s", h.errorLog, tail(readFrom(h.errorLog, 0), 16000))
		t.Logf("our server's output (%s):\n%s", srv.logPath, tail(srv.log(), 32000))
		for _, r := range rs {
			t.Logf("%s output:\n%s", r.kind, tail(r.log(), 8000))
			if r.logFile != "" {
				t.Logf("%s log (%s):\n%s", r.kind, r.logFile, tail(r.ownLog(), 64000))
			}
		}
	})
}

// checkApacheLines: each cold start logged exactly one StatusEngine call and
// its success, and nothing on the graceful restart.
func checkApacheLines(t *testing.T, starts []apacheStart) {
	t.Helper()
	for _, s := range starts {
		what := "cold start"
		if s.graceful {
			what = "cold start + graceful restart"
		}
		t.Logf("Apache start %d (%s, started %s, -k start took %v):\n  %s", s.n, what,
			s.started.Format("15:04:05.000"), s.returned.Sub(s.started).Round(1e6), strings.Join(s.lines, "\n  "))
		if s.graceful {
			t.Logf("Apache start %d graceful restart:\n  %s", s.n, strings.Join(s.restarts, "\n  "))
			if len(s.restarts) != 3 {
				t.Errorf("start %d: want 'resuming normal operations', 'SIGUSR1 received', 'resuming normal operations' in error.log, got %d lines", s.n, len(s.restarts))
			}
		}
		if len(s.calls) != 1 {
			t.Errorf("start %d (%s): %d 'StatusEngine call' lines in error.log, want exactly 1", s.n, what, len(s.calls))
		}
		if s.sent != 1 || len(s.failed) > 0 {
			t.Errorf("start %d: 'successfully sent' lines: %d (want 1); 'call failed' queries: %q", s.n, s.sent, s.failed)
		}
		for _, b := range s.calls {
			if _, err := splitBeacon(b); err != nil {
				t.Errorf("start %d: logged beacon does not parse: %v", s.n, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

func str(rec map[string]json.RawMessage, key string) (string, error) {
	raw, ok := rec[key]
	if !ok {
		return "", fmt.Errorf("no %q field", key)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%q is %s, want a JSON string", key, raw)
	}
	return s, nil
}

func num(rec map[string]json.RawMessage, key string) (int64, error) {
	raw, ok := rec[key]
	if !ok {
		return 0, fmt.Errorf("no %q field", key)
	}
	var n int64
	if err := json.Unmarshal(raw, &n); err != nil {
		return 0, fmt.Errorf("%q is %s, want a JSON integer", key, raw)
	}
	return n, nil
}

// checkStored: the API lists exactly one report per cold start, and each
// report equals the beacon Apache logged for that start.
func checkStored(t *testing.T, srv *server, starts []apacheStart) {
	t.Helper()
	r, body := srv.waitReports(t, len(starts))
	t.Logf("GET /api/0/<now+60> -> %s", body)
	if r.Amount != len(r.Results) {
		t.Errorf("API amount=%d but %d results", r.Amount, len(r.Results))
	}
	if len(r.Results) != len(starts) {
		t.Fatalf("API lists %d reports after %d Apache cold starts, want exactly %d (one per cold start; no duplicates, no partial minimised names)",
			len(r.Results), len(starts), len(starts))
	}
	type rec struct {
		m     map[string]json.RawMessage
		epoch int64
	}
	var recs []rec
	for i, m := range r.Results {
		e, err := num(m, "client_epoch")
		if err != nil {
			t.Errorf("report %d: %v", i, err)
		}
		recs = append(recs, rec{m, e})
	}
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].epoch < recs[j].epoch })
	seen := map[int64]bool{}
	for i, rc := range recs {
		s := starts[i] // starts are in time order, and so are their epochs
		logged := s.calls[0]
		want, _ := splitBeacon(logged)
		t.Logf("stored report %d (matched to Apache start %d): %s", i+1, s.n, compact(rc.m))
		if seen[rc.epoch] {
			t.Errorf("report %d: client_epoch %d stored twice", i+1, rc.epoch)
		}
		seen[rc.epoch] = true
		for _, f := range []struct{ key, want string }{
			{"beacon", logged},
			{"version", want.Version},
			{"server", want.Server},
			{"apr_compiled", want.AprCompiled},
			{"apr_loaded", want.AprLoaded},
			{"pcre_compiled", want.PcreCompiled},
			{"pcre_loaded", want.PcreLoaded},
			{"lua", want.Lua},
			{"libxml", want.Libxml},
			{"id", want.ID},
		} {
			got, err := str(rc.m, f.key)
			if err != nil {
				t.Errorf("report %d: %v", i+1, err)
			} else if got != f.want {
				t.Errorf("report %d: %s = %q, Apache logged %q", i+1, f.key, got, f.want)
			}
		}
		lo, hi := s.started.Unix()-2, s.returned.Unix()+3
		if rc.epoch < lo || rc.epoch > hi {
			t.Errorf("report %d: client_epoch %d not within [%d, %d] (Apache start %d at %d)", i+1, rc.epoch, lo, hi, s.n, s.started.Unix())
		}
		if ts, err := str(rc.m, "ts_epoch"); err != nil {
			t.Errorf("report %d: %v", i+1, err)
		} else if v, err := strconv.ParseInt(ts, 10, 64); err != nil || v < lo || v > hi {
			t.Errorf("report %d: ts_epoch %q not a unix time within [%d, %d]", i+1, ts, lo, hi)
		}
		if _, ok := rc.m["dns_server"]; !ok {
			t.Errorf("report %d: no dns_server object", i+1)
		}
	}
}

func compact(m map[string]json.RawMessage) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// checkServerQueries reports what our server saw (stock `log` plugin, which
// prints names lowercased), and checks that every cold start's full beacon
// name reached it and was answered NOERROR.
func checkServerQueries(t *testing.T, srv *server, starts []apacheStart, viaResolver bool) {
	t.Helper()
	qs := srv.queries()
	var lines []string
	full, other := 0, 0
	for _, q := range qs {
		lines = append(lines, q.String())
		if b, _, err := decodeBeaconName(q.name); err == nil && isLogged(b, starts) {
			full++
		} else {
			other++
		}
		if q.rcode != "NOERROR" {
			t.Errorf("our server answered %s %s with %s", q.qtype, q.name, q.rcode)
		}
	}
	t.Logf("our server saw %d queries: %d full beacon names, %d others (readiness probes, minimised partial names):\n  %s",
		len(qs), full, other, strings.Join(lines, "\n  "))
	if len(qs) == 0 {
		t.Errorf("no query lines from the `log` plugin in our server's output")
		return
	}
	for _, s := range starts {
		n := 0
		for _, q := range qs {
			if b, e, err := decodeBeaconName(q.name); err == nil && b == s.calls[0] && s.epochOf(e) {
				n++
			}
		}
		switch {
		case n == 0:
			t.Errorf("Apache start %d: our server never saw the full beacon name", s.n)
		case !viaResolver && n != 1:
			t.Logf("note: Apache start %d: the full beacon name arrived %d times (glibc sends one query)", s.n, n)
		}
	}
}

func isLogged(beacon string, starts []apacheStart) bool {
	for _, s := range starts {
		if len(s.calls) > 0 && s.calls[0] == beacon {
			return true
		}
	}
	return false
}

// checkMinimised reads Unbound's log (verbosity 4): for each cold start,
// Unbound received the beacon name from the glibc stub and, minimising, first
// sent <epoch>.status.modsecurity.org to our server, then longer names, and
// finally the full name; every name went out with 0x20 case randomisation
// ("qname perturbed to") and every reply echoed the case ("good 0x20-ID").
func checkMinimised(t *testing.T, ub *resolver, starts []apacheStart) {
	t.Helper()
	log := ub.ownLog()
	clients := reUBClient.FindAllStringSubmatch(log, -1)
	sent := reUBSent.FindAllStringSubmatch(log, -1)
	perturbed := reUBPerturbed.FindAllStringSubmatch(log, -1)
	good := strings.Count(log, "good 0x20-ID in reply qname")
	// A query Unbound stopped waiting for has no reply to echo: its timeout
	// follows the round trips it measured (down to 50 ms), and a commit of
	// a new report may take longer on a busy disk; Unbound then asks again.
	timeouts := strings.Count(log, "debug: timeout udp")
	t.Logf("unbound: %d client queries, %d upstream queries, %d case-randomised names, %d replies with a good 0x20 echo, %d timed out",
		len(clients), len(sent), len(perturbed), good, timeouts)
	if bad := reUBCapsFail.FindAllString(log, -1); len(bad) > 0 {
		t.Errorf("Unbound reports 0x20 (use-caps-for-id) trouble with our server's replies: %q", bad)
	}
	if good < len(perturbed)-timeouts {
		t.Errorf("Unbound logged %d case-randomised queries (%d timed out) but only %d replies with a good 0x20 echo", len(perturbed), timeouts, good)
	}
	for _, s := range starts {
		var name string
		var epoch int64
		for _, c := range clients {
			if b, e, err := decodeBeaconName(c[1]); err == nil && b == s.calls[0] && s.epochOf(e) {
				name, epoch = c[1], e
			}
		}
		if name == "" {
			t.Errorf("Apache start %d: Unbound's log has no client query for the beacon", s.n)
			continue
		}
		suffix := strings.ToLower(fmt.Sprintf("%d.%s.", epoch, zone))
		under := func(n string) bool {
			n = strings.ToLower(n)
			return n == suffix || strings.HasSuffix(n, "."+suffix)
		}
		var up, wire []string
		for _, m := range sent {
			if under(m[1]) {
				up = append(up, m[2]+" "+m[1])
			}
		}
		for _, m := range perturbed {
			if under(m[1]) {
				wire = append(wire, m[1])
			}
		}
		t.Logf("Apache start %d: stub -> unbound: %s\n  unbound -> our server (%d queries):\n  %s\n  as sent (0x20):\n  %s",
			s.n, name, len(up), strings.Join(up, "\n  "), strings.Join(wire, "\n  "))
		if len(up) < 2 {
			t.Errorf("Apache start %d: Unbound sent %d queries for this epoch, want the minimised sequence (>= 2)", s.n, len(up))
			continue
		}
		if first := strings.ToLower(up[0]); first != "a "+suffix {
			t.Errorf("Apache start %d: Unbound's first upstream query was %q, want \"A %s\" (QNAME minimisation)", s.n, up[0], suffix)
		}
		if last := strings.ToLower(up[len(up)-1]); last != "a "+strings.ToLower(name) {
			t.Errorf("Apache start %d: Unbound's last upstream query was %q, want the full name %q", s.n, up[len(up)-1], name)
		}
		mixed := 0
		for _, w := range wire {
			if w != strings.ToLower(w) && w != strings.ToUpper(w) {
				mixed++
			}
		}
		if mixed == 0 {
			t.Errorf("Apache start %d: no case-randomised (0x20) upstream name in Unbound's log", s.n)
		}
	}
}

// epochOf reports whether a client epoch label belongs to start s: Apache
// takes it while `apache2ctl -k start` runs, and the starts are spaced so
// that these one- or two-second windows never overlap.
func (s apacheStart) epochOf(e int64) bool {
	return e >= s.started.Unix() && e <= s.returned.Unix()
}

// startQueries are the queries our server saw for the names of start s: the
// full beacon name and the minimised steps under <epoch>.<zone>.
func startQueries(srv *server, s apacheStart) (qs []seenQuery, full string) {
	var suffix string
	for _, q := range srv.queries() {
		if b, e, err := decodeBeaconName(q.name); err == nil && b == s.calls[0] && s.epochOf(e) {
			full, suffix = strings.ToLower(q.name), strings.ToLower(fmt.Sprintf("%d.%s.", e, zone))
			break
		}
	}
	if suffix == "" {
		return nil, ""
	}
	for _, q := range srv.queries() {
		if n := strings.ToLower(q.name); n == suffix || strings.HasSuffix(n, "."+suffix) {
			qs = append(qs, q)
		}
	}
	return qs, full
}

// checkMinimisedWith checks that, for each start, the resolver minimised
// with queries of qtype (Unbound and PowerDNS ask A, BIND asks NS): at least
// one query of that type for a name shorter than the full one, and the full
// name asked as A.
func checkMinimisedWith(t *testing.T, srv *server, starts []apacheStart, qtype string) {
	t.Helper()
	for _, s := range starts {
		qs, full := startQueries(srv, s)
		var lines []string
		steps, fullA := 0, 0
		for _, q := range qs {
			lines = append(lines, q.String())
			switch n := strings.ToLower(q.name); {
			case n == full && q.qtype == "A":
				fullA++
			case n != full && q.qtype == qtype:
				steps++
			}
		}
		t.Logf("Apache start %d: our server saw %d queries for this start:\n  %s", s.n, len(qs), strings.Join(lines, "\n  "))
		if steps == 0 {
			t.Errorf("Apache start %d: no minimised %s query for a partial name (QNAME minimisation with %s)", s.n, qtype, qtype)
		}
		if fullA == 0 {
			t.Errorf("Apache start %d: the full name was never asked as A", s.n)
		}
	}
}

// checkNoRD checks that the resolver sent its queries without recursion
// desired (PowerDNS's forward-zones), which our server answers all the same.
func checkNoRD(t *testing.T, srv *server, starts []apacheStart) {
	t.Helper()
	for _, s := range starts {
		qs, _ := startQueries(srv, s)
		for _, q := range qs {
			if strings.Contains(","+q.flags+",", ",rd,") {
				t.Errorf("Apache start %d: %s came with RD set; PowerDNS's forward-zones send RD=0", s.n, q)
			}
		}
	}
}

// checkPrimed checks that the resolver primed the zone: it asked our server
// for the zone's NS set (whose in-zone name server name comes with its
// address as glue, the address the query arrived on) before the reports
// came, so every report after went to the primed address.
func checkPrimed(t *testing.T, srv *server) {
	t.Helper()
	var seen []string
	ns := false
	for _, q := range srv.queries() {
		apexNS := q.qtype == "NS" && strings.EqualFold(q.name, zone+".")
		if apexNS || strings.EqualFold(q.name, "ns1."+zone+".") {
			seen = append(seen, q.String())
			ns = ns || apexNS
		}
	}
	t.Logf("priming, as our server saw it (the zone's NS set, lookups of ns1.%s):\n  %s", zone, strings.Join(seen, "\n  "))
	if !ns {
		t.Errorf("the resolver never asked our server for the zone's NS set (stub-prime)")
	}
}

// checkStubRD checks that the resolver sent each full name once as A with
// recursion desired and no minimised step (Knot Resolver's STUB policy).
func checkStubRD(t *testing.T, srv *server, starts []apacheStart) {
	t.Helper()
	for _, s := range starts {
		qs, full := startQueries(srv, s)
		for _, q := range qs {
			if strings.ToLower(q.name) != full || q.qtype != "A" || !strings.Contains(","+q.flags+",", ",rd,") {
				t.Errorf("Apache start %d: %s; the STUB policy sends the full name as A with RD set", s.n, q)
			}
		}
	}
}
