package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// prefill writes n reports of n/4 installations over the last 30 days into
// a new database at path, through the store as an import.
func prefill(t *testing.T, path string, n int) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	im := store.NewImporter(st, func(at int, err error) { t.Errorf("prefill %d: %v", at, err) })
	now := time.Now()
	step := 30 * 24 * time.Hour / time.Duration(n)
	for i := range n {
		rep, err := codec.ParseBeacon(beacon(i % (n/4 + 1)))
		if err != nil {
			t.Fatal(err)
		}
		rep.Epoch, rep.HasEpoch = 1700000000+int64(i), true
		rec := &record.Record{Received: now.Add(-time.Duration(n-i) * step), Zone: zone, Report: rep}
		if err := im.Add(rec, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSlowBackupUnderLoad: a client downloads GET /api/v1/backup at 20 KB/s
// while new reports arrive at 3,000 a second. Before, the backup held a read
// transaction that blocked bbolt's remap, Submit's own read waited behind it,
// and 74% of the queries got no answer while goroutines piled up (18,564).
// Now the backup is a local snapshot streamed afterwards, Submit opens no
// transaction and bbolt never remaps below 8 GiB: every query is answered,
// every answered report is stored, goroutines stay bounded and the summary
// answers.
func TestSlowBackupUnderLoad(t *testing.T) {
	perf := needCommand(t, "dnsperf", "dnsperf")
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	prefill(t, s.cfg.DB, 150000)
	s.start()
	before := metricTotal(s.metricsText(), "go_goroutines")

	// The slow reader: 1 KiB every 50 ms.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+s.cfg.API+"/api/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength < 1<<20 {
		t.Fatalf("backup: %s, %d bytes", resp.Status, resp.ContentLength)
	}
	readDone := make(chan int64)
	go func() {
		var n int64
		buf := make([]byte, 1024)
		for ctx.Err() == nil {
			k, err := resp.Body.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		readDone <- n
	}()

	// 3,000 new reports a second for 10 s.
	run := startDnsperfRate(t, perf, s.dnsAddr(), 40000, 5000000, 10, 3000)
	var maxGoroutines float64
	var summaryWorst time.Duration
	for run.cmd.ProcessState == nil {
		select {
		case <-run.done:
		case <-time.After(time.Second):
		}
		maxGoroutines = max(maxGoroutines, metricTotal(s.metricsText(), "go_goroutines"))
		start := time.Now()
		code, _ := rawGet(t, s.cfg.API, "/api/v1/summary")
		summaryWorst = max(summaryWorst, time.Since(start))
		if code != 200 {
			t.Errorf("summary during the backup: %d", code)
		}
		if run.cmd.ProcessState != nil {
			break
		}
	}
	cancel()
	read := <-readDone
	resp.Body.Close()
	names, timeouts, summary := run.answered()
	t.Logf("backup read %d of %d bytes; dnsperf: %s", read, resp.ContentLength, summary)
	t.Logf("goroutines %v before, at most %v during; slowest summary %v", before, maxGoroutines, summaryWorst)
	if read >= resp.ContentLength {
		t.Fatal("the backup finished: the test did not hold a slow reader")
	}
	if timeouts > len(names)/200 || len(names) < 20000 {
		t.Errorf("%d answered, %d timed out: want every query answered", len(names), timeouts)
	}
	if maxGoroutines > before+600 {
		t.Errorf("goroutines grew from %v to %v", before, maxGoroutines)
	}
	if summaryWorst > 2*time.Second {
		t.Errorf("summary took %v during the backup", summaryWorst)
	}
	s.stop()
	if lost := missing(names, storedNames(t, s.cfg.DB)); len(lost) > 0 {
		t.Errorf("%d answered reports not stored, e.g. %s", len(lost), lost[0])
	}
}

// startDnsperfRate is startDnsperf at a fixed rate (-Q).
func startDnsperfRate(t *testing.T, bin, addr string, n, base, seconds, qps int) *dnsperfRun {
	t.Helper()
	host, port, _ := strings.Cut(addr, ":")
	data := filepath.Join(t.TempDir(), "names.txt")
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s A\n", reportName(base+i, 1795700000))
	}
	if err := os.WriteFile(data, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &dnsperfRun{done: make(chan error, 1)}
	r.cmd = exec.Command(bin, "-s", host, "-p", port, "-d", data, "-n", "1", "-l", fmt.Sprint(seconds),
		"-t", "2", "-c", "4", "-q", "200", "-Q", fmt.Sprint(qps), "-v")
	r.cmd.Stdout = &r.out
	r.cmd.Stderr = &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

// TestHostileImportLine: one NDJSON line with a 40 KB geo.country (and its
// cousins) through POST /api/v1/import. Before, it was stored, every later
// report failed ("key too large") and CoreDNS refused to start again. Now
// each line is rejected with its reason, live reports go on being stored,
// and a restart opens the file.
func TestHostileImportLine(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	long := strings.Repeat("Z", 40000)
	lines := []string{
		`{"received":"2026-11-25T08:00:01Z","zone":"status.modsecurity.org.","beacon":"` + beacon(1) + `","geo":{"country":"` + long + `"}}`,
		`{"received":"2026-11-25T08:00:02Z","zone":"status.modsecurity.org.","beacon":"` + beacon(2) + `","geo":{"country":"DE","city":"` + long + `"}}`,
		`{"received":"2026-11-25T08:00:03Z","zone":"` + long + `","beacon":"` + beacon(3) + `"}`,
		`{"received":"2026-11-25T08:00:04Z","zone":"status.modsecurity.org.","beacon":"` + beacon(4) + `","geo":{"country":"DE","lat":1e300,"lon":0}}`,
		`{"received":"2026-11-25T08:00:05Z","zone":"status.modsecurity.org.","beacon":"` + beacon(5) + `","epoch":99999999999999}`,
		`{"received":"2126-11-25T08:00:05Z","zone":"status.modsecurity.org.","beacon":"` + beacon(6) + `"}`,
	}
	req, _ := http.NewRequest("POST", "http://"+s.cfg.API+"/api/v1/import", strings.NewReader(strings.Join(lines, "\n")+"\n"))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	t.Logf("import: %s %.300s", resp.Status, body)
	if !bytes.Contains(body, []byte(`"imported":0`)) || !bytes.Contains(body, []byte(`"rejected":6`)) {
		t.Fatalf("hostile lines: %s", body)
	}
	before := s.outcomes()
	s.sendReports(t, 100, 50)
	if d := delta(before, s.outcomes()); d["stored"] != 50 || len(d) != 1 {
		t.Errorf("live reports after the hostile import: %v, want 50 stored", d)
	}
	s.stop()
	s.start()
	if st := metricTotal(s.metricsText(), "coredns_statusengine_store_up"); st != 1 {
		t.Errorf("store_up %v after the restart", st)
	}
	s.stop()
	if n := len(storedNames(t, s.cfg.DB)); n != 50 {
		t.Errorf("%d records stored, want the 50 live ones", n)
	}
}

// A Corefile with the status zone and a second zone CoreDNS serves from
// another plugin: a damaged statusengine file must not take that one down.
const otherZone = "other.example."

// TestDamagedFileKeepsCoreDNSUp: files with overwritten or zeroed pages of
// records, their first 12 KiB only, cut in half, or no valid meta page.
// Before, CoreDNS panicked at start (bbolt's page walk) or died of SIGBUS,
// and every zone was down. Now CoreDNS starts, answers the other zone and
// the status zone, counts the reports store_failed, exports store_up 0,
// says in one line which file and which command, reports not ready, and
// never writes the file; statusengine check exits 1 and salvage copies
// what is readable.
func TestDamagedFileKeepsCoreDNSUp(t *testing.T) {
	tool := buildTool(t)
	orig := filepath.Join(t.TempDir(), "orig.db")
	prefill(t, orig, 20000)
	f, err := boltfile.Open(orig)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := f.Leaves("records")
	used := int(f.HighWater()) * f.PageSize() // the file may be longer: bbolt grows it ahead
	f.Close()
	if err != nil || len(leaves) < 120 {
		t.Fatalf("leaves of records: %d %v", len(leaves), err)
	}
	r := rand.New(rand.NewPCG(9, 9))
	overwrite := func(n int, zero bool) func([]byte) []byte {
		return func(b []byte) []byte {
			for _, i := range r.Perm(len(leaves))[:n] {
				p := b[leaves[i]*4096 : (leaves[i]+1)*4096]
				for j := range p {
					p[j] = 0
					if !zero {
						p[j] = byte(r.IntN(256))
					}
				}
			}
			return b
		}
	}
	cases := []struct {
		name string
		f    func([]byte) []byte
	}{
		{"1 overwritten page", overwrite(1, false)},
		{"10 overwritten pages", overwrite(10, false)},
		{"100 overwritten pages", overwrite(100, false)},
		{"20 zeroed pages", overwrite(20, true)},
		{"first 12 KiB only", func(b []byte) []byte { return b[:12<<10] }},
		{"cut in half", func(b []byte) []byte { return b[:used/2] }},
		{"meta pages zeroed", func(b []byte) []byte { clear(b[:8192]); return b }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "se.db")
			b, _ := os.ReadFile(orig)
			if err := os.WriteFile(db, c.f(b), 0o600); err != nil {
				t.Fatal(err)
			}
			written, _ := os.ReadFile(db)
			s := newServer(t, config{DB: db, Options: limitOff(t)})
			readyPort := freePort(t)
			s.cfg.Server = fmt.Sprintf("    ready 127.0.0.1:%d", readyPort)
			s.writeConfig(s.cfg)
			other := fmt.Sprintf("%s:%d {\n    bind 127.0.0.1\n    template IN A %s {\n        answer \"{{ .Name }} 60 IN A 192.0.2.99\"\n    }\n}\n", otherZone, s.dnsPort, otherZone)
			conf, _ := os.ReadFile(s.conf)
			os.WriteFile(s.conf, append(conf, []byte(other)...), 0o644)
			s.start()

			m := new(dns.Msg)
			m.SetQuestion("www."+otherZone, dns.TypeA)
			if r, err := s.exchange(m, "", 2*time.Second); err != nil || len(r.Answer) != 1 {
				t.Errorf("the other zone: %v %v", r, err)
			}
			before := s.outcomes()
			s.sendReports(t, 900000, 20)
			d := delta(before, s.outcomes())
			text := s.metricsText()
			up := sumMetric(text, "coredns_statusengine_store_up", "db")[db]
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/ready", readyPort))
			ready := -1
			if err == nil {
				ready = resp.StatusCode
				resp.Body.Close()
			}
			log := regexp.MustCompile(`(?m)^.*`+regexp.QuoteMeta(db)+` is damaged.*statusengine check --db.*$`).FindAllString(s.out.String(), -1)
			t.Logf("outcomes %v, store_up %v, /ready %d, log %q", d, up, ready, log)
			if d["store_failed"] != 20 || up != 0 || ready != http.StatusServiceUnavailable || len(log) != 1 {
				t.Errorf("want 20 store_failed, store_up 0, /ready 503 and one log line")
			}
			s.stop()
			if now, _ := os.ReadFile(db); !bytes.Equal(now, written) {
				t.Error("the damaged file was written")
			}
			out, err := exec.Command(tool, "check", "--db", db).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Errorf("check: %v\n%s", err, out)
			}
			newDB := filepath.Join(t.TempDir(), "new.db")
			out, err = exec.Command(tool, "salvage", "--db", db, "--out", newDB).CombinedOutput()
			t.Logf("salvage: %s", bytes.TrimSpace(out))
			if err != nil && !strings.Contains(string(out), "not a bbolt database") {
				t.Errorf("salvage: %v", err)
			}
		})
	}
}

// buildTool builds ./build/statusengine once per test binary.
func buildTool(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(coreBinary), "statusengine")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	out, err := exec.Command("go", "-C", root, "build", "-o", bin, "./build/statusengine").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./build/statusengine: %v\n%s", err, out)
	}
	return bin
}

// TestHostileValidFile: sound bbolt files whose values no statusengine
// writes. Before, installation_next = 2^32+5 allocated 14.7 GB on the first
// commit, and a count stored as a bucket failed every commit. Now the server
// starts, answers, and either stores (bounded memory) or is down with a
// clear line.
func TestHostileValidFile(t *testing.T) {
	cases := []struct {
		name string
		edit func(tx *bolt.Tx) error
		up   bool
	}{
		{"absurd counters", func(tx *bolt.Tx) error {
			m := tx.Bucket([]byte("meta"))
			for _, k := range []string{"count", "rolled", "indexed.installations", "indexed.builds", "installation_next"} {
				if err := m.Put([]byte(k), []byte{0, 0, 0, 1, 0, 0, 0, 5}); err != nil {
					return err
				}
			}
			return nil
		}, true},
		{"count is a bucket", func(tx *bolt.Tx) error {
			m := tx.Bucket([]byte("meta"))
			m.Delete([]byte("count"))
			_, err := m.CreateBucket([]byte("count"))
			return err
		}, false},
		{"rollups of garbage", func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("rollups"))
			c := b.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if err := b.Put(append([]byte(nil), k...), []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f}); err != nil {
					return err
				}
			}
			return nil
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t, config{Options: limitOff(t)})
			prefill(t, s.cfg.DB, 2000)
			db, err := bolt.Open(s.cfg.DB, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(c.edit); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s.start()
			before := s.outcomes()
			s.sendReports(t, 700000, 200)
			d := delta(before, s.outcomes())
			rss := processRSS(t, s.proc.Cmd.Process.Pid)
			up := metricTotal(s.metricsText(), "coredns_statusengine_store_up")
			t.Logf("outcomes %v, store_up %v, RSS %d MiB", d, up, rss>>20)
			if rss > 300<<20 {
				t.Errorf("RSS %d MiB", rss>>20)
			}
			if c.up && (up != 1 || d["stored"] != 200) {
				t.Errorf("want the store up and 200 stored")
			}
			if !c.up && (up != 0 || d["store_failed"] != 200 || !strings.Contains(s.out.String(), "is damaged")) {
				t.Errorf("want the store down with a log line, and 200 store_failed")
			}
		})
	}
}

// processRSS reads VmRSS of pid.
func processRSS(t *testing.T, pid int) int64 { return processStatus(t, pid, "VmRSS") }

// processStatus reads a size field of /proc/pid/status, in bytes.
func processStatus(t *testing.T, pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s", field)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}
