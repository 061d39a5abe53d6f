package reliability

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

var reloadDone = regexp.MustCompile(`Reloading complete`)

// TestReloadUnderLoad reloads the Corefile under a steady load of fresh
// reports, by the reload plugin and by SIGUSR1 (in two servers: CoreDNS's
// reload plugin stops watching after a SIGUSR1 reload, coredns/coredns#6263):
// a new TTL, a new api address and back, a broken Corefile, then a fixed
// one. Every reload must complete within seconds (bbolt's file lock is
// shared, not waited for), the server must keep answering, the API must
// answer on the right address only, and every answered report must be in
// the file.
func TestReloadUnderLoad(t *testing.T) {
	for _, mode := range []string{"reload plugin", "SIGUSR1"} {
		t.Run(strings.ReplaceAll(mode, " ", "_"), func(t *testing.T) { reloadUnderLoad(t, mode) })
	}
}

func reloadUnderLoad(t *testing.T, mode string) {
	apiA := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	apiB := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := config{API: apiA, Options: limitOff(t)}
	if mode == "reload plugin" {
		cfg.Server = "reload 2s 1s"
	}
	s := newServer(t, cfg)
	cfg = s.cfg
	s.start()

	load := startLoad(s.dnsAddr(), 4, 0)
	defer func() {
		if load != nil {
			load.finish()
		}
	}()
	waitAnswered(t, load, 200)

	// apply writes the Corefile and, for SIGUSR1, signals.
	apply := func(c config) {
		s.writeConfig(c)
		if mode == "SIGUSR1" {
			s.signal(syscall.SIGUSR1)
		}
	}
	var reloadTimes []time.Duration
	// reload waits for the reload to complete after the output offset and
	// checks that reports kept flowing after it.
	reload := func(what string, c config) {
		t.Helper()
		off := s.out.Len()
		n := load.count()
		start := time.Now()
		apply(c)
		if !s.waitLog(reloadDone, off, 15*time.Second) {
			t.Fatalf("%s: no \"Reloading complete\" within 15s: %s", what, s.out.Bytes()[off:])
		}
		reloadTimes = append(reloadTimes, time.Since(start).Round(time.Millisecond))
		waitAnswered(t, load, n+500)
		if !s.running() {
			t.Fatalf("%s: server exited: %s", what, s.out)
		}
	}
	ttl := func(want uint32) {
		t.Helper()
		r := query(t, s.dnsAddr(), "udp", reportName(1, 1), dns.TypeA, dns.ClassINET)
		if len(r.Answer) != 1 || r.Answer[0].Header().Ttl != want {
			t.Errorf("answer %v, want TTL %d", r.Answer, want)
		}
	}

	// A new TTL.
	cfg.TTL = 30
	reload("new ttl", cfg)
	ttl(30)
	apiAnswers(t, apiA, true)

	// A new api address: the new one answers, the old one is closed.
	cfg.API = apiB
	reload("new api address", cfg)
	apiAnswers(t, apiB, true)
	apiAnswers(t, apiA, false)

	// And back.
	cfg.API = apiA
	reload("api address back", cfg)
	apiAnswers(t, apiA, true)
	apiAnswers(t, apiB, false)

	// A broken Corefile: the server goes on with the old one, API included.
	broken := cfg
	broken.Options += "\nno_such_property 1"
	off := s.out.Len()
	n := load.count()
	apply(broken)
	if !s.waitLog(regexp.MustCompile(`no_such_property`), off, 15*time.Second) {
		t.Fatalf("broken Corefile: no error logged: %s", s.out.Bytes()[off:])
	}
	waitAnswered(t, load, n+200)
	apiAnswers(t, apiA, true)
	ttl(30)
	if !s.running() {
		t.Fatalf("server exited on a broken Corefile: %s", s.out)
	}

	// Fixed again.
	cfg.TTL = 20
	reload("fixed Corefile", cfg)
	ttl(20)
	apiAnswers(t, apiA, true)

	answered := load.finish()
	timeouts := load.timeouts.Load()
	load = nil
	s.stop()
	stored := storedNames(t, s.cfg.DB)
	lost := missing(answered, stored)
	t.Logf("%s: %d reloads completed and 1 broken Corefile refused under load: %d reports answered, %d client timeouts, %d records, %d lost; reload times %v",
		mode, len(reloadTimes), len(answered), timeouts, len(stored), len(lost), reloadTimes)
	if len(lost) > 0 {
		t.Errorf("%d answered reports lost across reloads, e.g. %v", len(lost), lost[:min(3, len(lost))])
	}
	for _, d := range reloadTimes {
		if d > 10*time.Second {
			t.Errorf("a reload took %v", d)
		}
	}
}

// waitAnswered waits until the load has n answered reports.
func waitAnswered(t *testing.T, l *loader, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for l.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d answered reports (want %d), %d timeouts", l.count(), n, l.timeouts.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiAnswers checks that the API answers on addr, or that nothing listens.
func apiAnswers(t *testing.T, addr string, want bool) {
	t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/api/v1/summary?from=0")
	if err != nil {
		if want {
			t.Errorf("api on %s: %v", addr, err)
		}
		return
	}
	resp.Body.Close()
	if !want {
		t.Errorf("api still answers on the old address %s", addr)
	} else if resp.StatusCode != http.StatusOK {
		t.Errorf("api on %s: status %d", addr, resp.StatusCode)
	}
}
