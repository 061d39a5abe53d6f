package reliability

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
)

// TestLogSymlinkRefused reproduces the probe: `ln -s se.db se.db-wal`, start,
// send reports. Before, the log was written at offset 0 of the database:
// check read 0 records, the 500 earlier reports were gone and most answered
// reports ended store_failed (19,925 of 20,000 in the probe; 2,709 of 3,246
// in this test on 2c653f4); a link to any other file overwrote that file.
// Now the log is refused in one warning, every answered report is stored
// (answered after its commit), check reads them all and names the log, and
// the file the link names is unchanged byte for byte.
func TestLogSymlinkRefused(t *testing.T) {
	tool := buildTool(t)
	for _, tc := range []struct {
		name   string
		target func(dir, db string) string // what se.db-wal links to
	}{
		{"to the database", func(dir, db string) string { return filepath.Base(db) }},
		{"to another file", func(dir, db string) string {
			other := filepath.Join(dir, "operator.conf")
			if err := os.WriteFile(other, []byte("# an operator's file\nkeep = yes\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return other
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newServer(t, config{Options: limitOff(t)})
			prefill(t, s.cfg.DB, 500)
			lp := wal.LogPath(s.cfg.DB)
			target := tc.target(s.dir, s.cfg.DB)
			if err := os.Symlink(target, lp); err != nil {
				t.Fatal(err)
			}
			abs := target
			if !filepath.IsAbs(abs) {
				abs = filepath.Join(s.dir, target)
			}
			before, err := os.ReadFile(abs)
			if err != nil {
				t.Fatal(err)
			}
			s.start()
			outcomes0 := s.outcomes()
			load := startLoad(s.dnsAddr(), 8, 5000000)
			deadline := time.Now().Add(30 * time.Second)
			for load.count() < 3000 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			answered := load.finish()
			d := delta(outcomes0, s.outcomes())
			s.stop()
			log := regexp.MustCompile(`(?m)^.*WARNING.*`+regexp.QuoteMeta(lp)+` refused: it is a symbolic link.*$`).FindAllString(s.out.String(), -1)
			t.Logf("%d reports answered, outcomes %v; log %q", len(answered), d, log)
			if len(answered) < 3000 || d["store_failed"] != 0 || len(log) != 1 {
				t.Errorf("want 3000 answered, none store_failed, one warning")
			}
			if now, _ := os.ReadFile(abs); abs != s.cfg.DB && !bytes.Equal(now, before) {
				t.Errorf("%s was written through the link (%d bytes, was %d)", target, len(now), len(before))
			}
			if fi, err := os.Lstat(lp); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the link is gone: %v", err)
			}

			out, err := exec.Command(tool, "check", "--db", s.cfg.DB).CombinedOutput()
			m := regexp.MustCompile(`(\d+) records readable, (\d+) unreadable`).FindSubmatch(out)
			t.Logf("check: %s", bytes.TrimSpace(out))
			if m == nil {
				t.Fatalf("check: %v\n%s", err, out)
			}
			readable, _ := strconv.Atoi(string(m[1]))
			if want := 500 + len(answered); readable != want || string(m[2]) != "0" || !bytes.Contains(out, []byte("refused")) {
				t.Errorf("check read %s records (%s unreadable), want %d, and the log named", m[1], m[2], want)
			}
			os.Remove(lp) // for checkFile, which wants no problem at all
			stored := storedNames(t, s.cfg.DB)
			if lost := missing(answered, stored); len(lost) > 0 {
				t.Errorf("%d of %d answered reports not stored, e.g. %v", len(lost), len(answered), lost[:min(3, len(lost))])
			}
			if len(stored) != 500+len(answered) {
				t.Errorf("%d records, want %d", len(stored), 500+len(answered))
			}
		})
	}
}

// TestDamagedUnderRunningServer: the database's meta pages are overwritten
// under a running server (as the log written through a symlink to the
// database did), and the next write transaction makes bbolt panic with its
// writer lock held. Before, every later API read waited in bolt.DB.Begin
// (17 minutes, until killed), GET /api/v1/reports closed the connection
// with no status, and SIGTERM never completed (Close waited on bbolt's
// lock): only SIGKILL stopped CoreDNS. Now the store is down in one line,
// every API request answers 503 with a JSON error naming the damage and
// the check and salvage commands within 2 s, DNS keeps answering (the
// status zone counts store_failed, another zone is untouched), a reload
// (SIGUSR1) completes, and SIGTERM ends the process within seconds.
func TestDamagedUnderRunningServer(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	other := fmt.Sprintf("%s:%d {\n    bind 127.0.0.1\n    template IN A %s {\n        answer \"{{ .Name }} 60 IN A 192.0.2.99\"\n    }\n}\n", otherZone, s.dnsPort, otherZone)
	conf, _ := os.ReadFile(s.conf)
	os.WriteFile(s.conf, append(conf, []byte(other)...), 0o644)
	s.start()

	load := startLoad(s.dnsAddr(), 4, 6000000)
	deadline := time.Now().Add(20 * time.Second)
	for load.count() < 1000 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	answered := load.finish()
	time.Sleep(300 * time.Millisecond) // the last commit settles

	// Garbage over both meta pages: the next transaction bbolt begins
	// finds no valid meta page and panics inside Begin.
	junk := make([]byte, 2*os.Getpagesize())
	rand.Read(junk)
	f, err := os.OpenFile(s.cfg.DB, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(junk, 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	before := s.outcomes()
	s.sendReports(t, 7000000, 20)
	d := delta(before, s.outcomes())
	downLine := regexp.MustCompile(`(?m)^.*` + regexp.QuoteMeta(s.cfg.DB) + ` is damaged.*statusengine check --db.*$`)
	if !s.waitLog(downLine, 0, 5*time.Second) {
		t.Fatalf("no line says the file is damaged: %s", s.out)
	}
	up := sumMetric(s.metricsText(), "coredns_statusengine_store_up", "db")[s.cfg.DB]
	t.Logf("%d reports answered before the damage; after it 20 queries: outcomes %v, store_up %v", len(answered), d, up)
	if d["store_failed"] < 19 || up != 0 { // the first may have been answered from the seen cache
		t.Errorf("want store_failed and store_up 0")
	}

	for _, p := range []string{"/api/v1/reports", "/api/v1/summary", "/api/v1/export", "/api/v1/backup",
		"/api/v1/timeseries", "/api/1700000000/1700086400", "/api/v1/reports"} {
		start := time.Now()
		code, _, body := apiGet(t, s, p, apiToken)
		took := time.Since(start)
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		t.Logf("GET %s: %d in %v", p, code, took.Round(time.Millisecond))
		if code != http.StatusServiceUnavailable || !strings.Contains(e.Error, "is damaged") ||
			!strings.Contains(e.Error, "statusengine check --db "+s.cfg.DB) || !strings.Contains(e.Error, "statusengine salvage") {
			t.Errorf("GET %s: %d %.300s, want 503 with the damage and the commands", p, code, body)
		}
		if took > 2*time.Second {
			t.Errorf("GET %s took %v", p, took)
		}
	}
	m := new(dns.Msg)
	m.SetQuestion("www."+otherZone, dns.TypeA)
	if r, err := s.exchange(m, "", 2*time.Second); err != nil || len(r.Answer) != 1 {
		t.Errorf("the other zone: %v %v", r, err)
	}

	// A reload shares the store that is down: it completes, and the API
	// still answers 503 at once.
	off := s.out.Len()
	start := time.Now()
	s.signal(syscall.SIGUSR1)
	if !s.waitLog(regexp.MustCompile(`Reloading complete`), off, 10*time.Second) {
		t.Fatalf("no \"Reloading complete\" within 10 s of SIGUSR1: %s", s.out.Bytes()[off:])
	}
	t.Logf("SIGUSR1: reloaded in %v", time.Since(start).Round(time.Millisecond))
	if code, _, body := apiGet(t, s, "/api/v1/reports", apiToken); code != http.StatusServiceUnavailable {
		t.Errorf("after the reload: %d %.200s", code, body)
	}
	if r, err := s.exchange(m, "", 2*time.Second); err != nil || len(r.Answer) != 1 {
		t.Errorf("the other zone after the reload: %v %v", r, err)
	}

	start = time.Now()
	s.signal(syscall.SIGTERM)
	if !s.proc.WaitExit(10 * time.Second) {
		s.kill()
		t.Fatalf("CoreDNS did not exit within 10 s of SIGTERM")
	}
	t.Logf("SIGTERM: exited in %v", time.Since(start).Round(time.Millisecond))
}
