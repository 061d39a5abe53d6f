package reliability

import (
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/internal/servertest"
)

// startFails runs a server that must not start, and returns its output.
func startFails(t *testing.T, s *server) string {
	t.Helper()
	s.out = &syncBuffer{}
	cmd := exec.Command(coreBinary, "-conf", s.conf)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.out, s.out
	p, err := servertest.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	s.proc = p
	if !p.WaitExit(15 * time.Second) {
		t.Fatalf("server started on a busy api address (still running after 15 s): %s", s.out)
	}
	if p.Err() == nil {
		t.Errorf("server exited with status 0 on a busy api address")
	}
	return s.out.String()
}

// TestAPIAddressExclusive (issue 12, point 1): the api address is exclusive.
// A server whose api address is in use, by another statusengine or by
// anything else, does not start and names the address; a reload onto a busy
// address is refused and the running configuration goes on.
func TestAPIAddressExclusive(t *testing.T) {
	t.Run("held by another program", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		s := newServer(t, config{API: ln.Addr().String()})
		out := startFails(t, s)
		if !strings.Contains(out, ln.Addr().String()) || !strings.Contains(out, "address already in use") {
			t.Errorf("the error does not name the busy address %s: %s", ln.Addr(), out)
		}
		t.Logf("refused: %s", lastLine(out))
	})

	t.Run("held by another statusengine", func(t *testing.T) {
		first := newServer(t, config{Options: limitOff(t)})
		first.start()
		query(t, first.dnsAddr(), "udp", nextName(1), dns.TypeA, dns.ClassINET)
		second := newServer(t, config{API: first.cfg.API, Options: limitOff(t)})
		out := startFails(t, second)
		if !strings.Contains(out, first.cfg.API) {
			t.Errorf("the error does not name the busy address %s: %s", first.cfg.API, out)
		}
		// The first server still answers alone, from its own database.
		for range 10 {
			code, _, body := apiGet(t, first, "/api/v1/summary?from=0", "")
			if code != 200 || !strings.Contains(body, `"reports":1,`) {
				t.Fatalf("the first server's summary: %d %.200s", code, body)
			}
		}
		t.Logf("refused: %s", lastLine(out))
	})

	t.Run("reload onto a busy address", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		s := newServer(t, config{APIBody: "token old-token"})
		s.start()
		cfg := s.cfg
		cfg.API, cfg.APIBody = busy.Addr().String(), "token new-token"
		old := s.cfg.API
		off := s.out.Len()
		s.writeConfig(cfg)
		s.signal(syscall.SIGUSR1)
		if !s.waitLog(regexp.MustCompile(regexp.QuoteMeta(busy.Addr().String())+`.*address already in use`), off, 15*time.Second) {
			t.Fatalf("no error naming %s after the reload: %s", busy.Addr(), s.out.Bytes()[off:])
		}
		if reloadDone.Match(s.out.Bytes()[off:]) {
			t.Errorf("the reload onto a busy address completed: %s", s.out.Bytes()[off:])
		}
		s.cfg.API = old
		for token, want := range map[string]int{"old-token": 200, "new-token": 401} {
			if code, _, _ := apiGet(t, s, "/api/v1/reports?limit=1", token); code != want {
				t.Errorf("after the refused reload, %s gets %d, want %d: the old configuration must go on", token, code, want)
			}
		}
		if !s.running() {
			t.Fatalf("server exited: %s", s.out)
		}
		t.Logf("refused: %s", lastLine(string(s.out.Bytes()[off:])))
	})
}

// TestAPIBlockErrors (issue 10, point 8): an error inside api ADDRESS { }
// names the unknown property and its line.
func TestAPIBlockErrors(t *testing.T) {
	tests := []struct {
		body string
		want *regexp.Regexp
	}{
		{"token " + apiToken + "\nbogus 1", regexp.MustCompile(`Corefile:\d+ - Error during parsing: api: unknown property "bogus"`)},
		{"bogus 1", regexp.MustCompile(`Corefile:\d+ - Error during parsing: api: unknown property "bogus"`)},
		{"token a\ntoken b", regexp.MustCompile(`Corefile:\d+ - Error during parsing: api: token specified more than once`)},
	}
	for _, tc := range tests {
		s := newServer(t, config{APIBody: tc.body})
		out := startFails(t, s)
		m := tc.want.FindString(out)
		if m == "" {
			t.Errorf("api { %q }: %s, want %v", tc.body, out, tc.want)
			continue
		}
		// The line named is the property's own.
		var line int
		for i, l := range strings.Split(s.cfg.corefile(s.dnsPort, s.metrics), "\n") {
			if f := strings.Fields(l); len(f) > 0 && (f[0] == "bogus" || (f[0] == "token" && f[1] == "b")) {
				line = i + 1
			}
		}
		if !strings.Contains(m, "Corefile:"+strconv.Itoa(line)+" ") {
			t.Errorf("api { %q }: %q does not name line %d", tc.body, m, line)
		}
		t.Logf("%s", m)
	}
}

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}
