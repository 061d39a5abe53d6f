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
// private network namespace:
//
//   - direct: glibc stub resolver -> our server on 127.0.0.1:53;
//   - unbound: glibc stub -> Unbound on 127.0.0.1:53 (stub-zone, QNAME
//     minimisation, 0x20) -> our server on 127.0.0.2:53.
//
// Each scenario does two Apache cold starts (the second scenario adds a
// graceful restart, which must not report), then checks through the JSON API
// that exactly one report per cold start was stored, with the fields Apache
// logged. Needs root and the Debian packages listed in test/README.md.
func TestRealModSecurity(t *testing.T) {
	tl := checkRequirements(t)
	h := newHarness(t, tl)
	h.setupNetns(t) // first: skips at once where namespaces are not permitted
	h.buildServer(t)
	h.setupApache(t)

	t.Run("direct", func(t *testing.T) {
		srv := h.startServer(t, "direct", directAddr)
		dumpOnFailure(t, h, srv, nil)
		starts := []apacheStart{h.coldStart(t, 1, false)}
		spaceStarts(starts[0])
		starts = append(starts, h.coldStart(t, 2, false))
		checkApacheLines(t, starts)
		checkStored(t, srv, starts)
		checkServerQueries(t, srv, starts, false)
	})

	t.Run("unbound", func(t *testing.T) {
		srv := h.startServer(t, "unbound", authAddr)
		ub := h.startUnbound(t, authAddr)
		dumpOnFailure(t, h, srv, ub)
		starts := []apacheStart{h.coldStart(t, 1, false)}
		spaceStarts(starts[0])
		starts = append(starts, h.coldStart(t, 2, true)) // + graceful: no report
		checkApacheLines(t, starts)
		checkStored(t, srv, starts)
		checkServerQueries(t, srv, starts, true)
		checkMinimised(t, ub, starts)
	})
}

// dumpOnFailure logs, if the (sub)test failed, everything needed to diagnose
// it from a CI log: our server's output, Apache's error.log, Unbound's logs.
func dumpOnFailure(t *testing.T, h *harness, srv *server, ub *unbound) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("Apache error.log (%s):\n%s", h.errorLog, tail(readFrom(h.errorLog, 0), 16000))
		t.Logf("our server's output (%s):\n%s", srv.logPath, tail(srv.log(), 32000))
		if ub != nil {
			t.Logf("unbound stdout/stderr:\n%s", tail(ub.log(), 4000))
			t.Logf("unbound log (%s):\n%s", ub.logFile, tail(ub.unboundLog(), 64000))
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
func checkServerQueries(t *testing.T, srv *server, starts []apacheStart, viaUnbound bool) {
	t.Helper()
	qs := srv.queries()
	var lines []string
	full, other := 0, 0
	for _, q := range qs {
		lines = append(lines, fmt.Sprintf("%s %s %s -> %s", q.proto, q.qtype, q.name, q.rcode))
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
		case !viaUnbound && n != 1:
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
func checkMinimised(t *testing.T, ub *unbound, starts []apacheStart) {
	t.Helper()
	log := ub.unboundLog()
	clients := reUBClient.FindAllStringSubmatch(log, -1)
	sent := reUBSent.FindAllStringSubmatch(log, -1)
	perturbed := reUBPerturbed.FindAllStringSubmatch(log, -1)
	good := strings.Count(log, "good 0x20-ID in reply qname")
	t.Logf("unbound: %d client queries, %d upstream queries, %d case-randomised names, %d replies with a good 0x20 echo",
		len(clients), len(sent), len(perturbed), good)
	if bad := reUBCapsFail.FindAllString(log, -1); len(bad) > 0 {
		t.Errorf("Unbound reports 0x20 (use-caps-for-id) trouble with our server's replies: %q", bad)
	}
	if good < len(perturbed) {
		t.Errorf("Unbound logged %d case-randomised queries but only %d replies with a good 0x20 echo", len(perturbed), good)
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
