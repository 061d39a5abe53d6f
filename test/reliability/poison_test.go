package reliability

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// flood sends names from local inside the server's namespace, over
// workers sockets, and returns how many got the A answer.
func flood(t *testing.T, s *server, local string, names []string, workers int, spread time.Duration) (answered int64) {
	pause := spread * time.Duration(workers) / time.Duration(len(names))
	t.Helper()
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			remote := s.dnsAddr()
			if strings.Contains(local, ":") {
				remote = fmt.Sprintf("[::1]:%d", s.dnsPort)
			}
			conn, err := s.ns.Dial(context.Background(), "udp", local, remote)
			if err != nil {
				t.Error(err)
				return
			}
			co := &dns.Conn{Conn: conn}
			defer co.Close()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(names)) {
					return
				}
				time.Sleep(pause)
				m := new(dns.Msg)
				m.SetQuestion(names[i], dns.TypeA)
				co.SetDeadline(time.Now().Add(2 * time.Second))
				if co.WriteMsg(m) != nil {
					continue
				}
				r, err := co.ReadMsg()
				if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return ok.Load()
}

// TestPerSourceLimit: resolvers inventing thousands of installations a
// minute. With the default limit (60 a minute, burst 60) and with a custom
// one, what one resolver network (/24, /48) stores is bounded by burst +
// rate x elapsed; the excess is answered, counted as limited and not
// stored, and another network's reports are untouched.
func TestPerSourceLimit(t *testing.T) {
	ns := newNetns(t, "198.51.100.1/32", "198.51.100.2/32", "203.0.113.9/32", "2001:db8:5::1/128", "2001:db8:5::2/128")
	for _, tc := range []struct {
		option      string
		rate, burst float64
		spread      time.Duration // of each source's queries
	}{
		{"", 60, 60, 0}, // the default, all at once
		{"limit 120 10", 120, 10, 5 * time.Second},
	} {
		t.Run(fmt.Sprintf("rate %v burst %v", tc.rate, tc.burst), func(t *testing.T) {
			s := newServer(t, config{Options: tc.option, Bind: "127.0.0.1 ::1"})
			s.ns = ns
			s.start()
			before := s.outcomes()
			start := time.Now()

			// Two addresses of one /24 and two of one /48 flood; another
			// /24 sends a few real reports at the same time.
			var wg sync.WaitGroup
			type src struct {
				local string
				names []string
				got   int64
				took  time.Duration
			}
			srcs := []*src{
				{local: "198.51.100.1", names: names(100000, 1500)},
				{local: "198.51.100.2", names: names(200000, 1500)},
				{local: "2001:db8:5::1", names: names(300000, 500)},
				{local: "2001:db8:5::2", names: names(400000, 500)},
				{local: "203.0.113.9", names: names(500000, 4)},
			}
			for _, sr := range srcs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					t0 := time.Now()
					sr.got = flood(t, s, sr.local, sr.names, 4, tc.spread)
					sr.took = time.Since(t0)
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			sent := 0
			for _, sr := range srcs {
				sent += len(sr.names)
				if sr.got != int64(len(sr.names)) {
					t.Errorf("%s: %d of %d queries answered; limited reports must be answered too", sr.local, sr.got, len(sr.names))
				}
			}
			d := delta(before, s.outcomes())
			s.stop()

			perNet := map[string]int{}
			st, err := store.Open(s.cfg.DB, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			st.Each(time.Unix(0, 0), time.Now().Add(time.Hour), 0, func(r *record.Record) error {
				bits := 24
				if r.Resolver.Is6() {
					bits = 48
				}
				p, _ := r.Resolver.Prefix(bits)
				perNet[p.String()]++
				return nil
			})
			st.Close()

			// The two sources of a network run side by side; the bucket
			// refills at the rate while they do. A second of slack below for
			// the start of the sources.
			bounds := ""
			for _, n := range []struct {
				net  string
				took time.Duration
			}{{"198.51.100.0/24", max(srcs[0].took, srcs[1].took)}, {"2001:db8:5::/48", max(srcs[2].took, srcs[3].took)}} {
				high := int(math.Floor(tc.burst + tc.rate*n.took.Minutes() + 1))
				low := int(tc.burst + tc.rate*(n.took-time.Second).Minutes())
				bounds += fmt.Sprintf(" %s: %d..%d in %v;", n.net, low, high, n.took.Round(time.Millisecond))
				if got := perNet[n.net]; got > high || got < low {
					t.Errorf("%s stored %d reports in %v, want between %d and %d", n.net, got, n.took, low, high)
				}
			}
			if perNet["203.0.113.0/24"] != 4 {
				t.Errorf("203.0.113.0/24 stored %d of its 4 reports", perNet["203.0.113.0/24"])
			}
			total := perNet["198.51.100.0/24"] + perNet["2001:db8:5::/48"] + perNet["203.0.113.0/24"]
			if d["stored"] != float64(total) || d["limited"] != float64(sent-total) {
				t.Errorf("outcomes %v; want stored %d, limited %d", d, total, sent-total)
			}
			t.Logf("%d new installations from 3 networks in %v (%.0f a minute): stored %v (bounds%s), limited %v, all answered",
				sent, elapsed.Round(time.Millisecond), float64(sent)/elapsed.Minutes(), perNet, bounds, d["limited"])
		})
	}
}

func names(base, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = reportName(base+i, 1795800000)
	}
	return out
}

// TestMaxSize fills a store capped by max_size: answers go on, reports
// are counted as store_failed, the store_full gauge is 1, one log line
// names max_size, the API serves what is stored; a reload with a bigger
// cap resumes storing without a restart.
func TestMaxSize(t *testing.T) {
	cfg := config{Options: "max_size 1M\n" + limitOff(t)}
	s := newServer(t, cfg)
	cfg = s.cfg
	s.start()

	load := startLoad(s.dnsAddr(), 4, 0)
	deadline := time.Now().Add(60 * time.Second)
	for s.outcomes()["store_failed"] < 100 {
		if time.Now().After(deadline) {
			load.finish()
			t.Fatalf("1M store not full after 60s: %v", s.outcomes())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Full: answers continue at the pace of the load.
	n := load.count()
	time.Sleep(time.Second)
	perSecond := load.count() - n
	answered := load.finish()
	full := s.outcomes()
	text := s.metricsText()
	gauge := metricTotal(text, "coredns_statusengine_store_full")
	if perSecond < 20 {
		t.Errorf("only %d answers in the second after the store filled", perSecond)
	}
	if gauge != 1 {
		t.Errorf("coredns_statusengine_store_full = %v, want 1", gauge)
	}
	if !regexp.MustCompile(`max_size`).Match(s.out.Bytes()) {
		t.Errorf("no log line names max_size: %s", s.out)
	}
	if c := bytes.Count(s.out.Bytes(), []byte("max_size")); c > 3 {
		t.Errorf("max_size logged %d times; once per episode is enough: %s", c, s.out)
	}
	// The API serves what the file holds: every report counted stored but
	// those answered once in the write-ahead log, by the transaction whose
	// commit found the cap (they are stored when the cap is raised).
	stored := countAll(t, s)
	pending := metricTotal(text, "coredns_statusengine_log_pending")
	if float64(stored)+pending != full["stored"] {
		t.Errorf("API lists %d reports and the log holds %v more, %v were counted stored", stored, pending, full["stored"])
	}
	fileSize := fileLen(t, cfg.DB)

	// Raise the cap by reload: storing resumes by itself.
	cfg.Options = "max_size 64M\n" + limitOff(t)
	off := s.out.Len()
	s.writeConfig(cfg)
	s.signal(syscall.SIGUSR1)
	if !s.waitLog(reloadDone, off, 15*time.Second) {
		t.Fatalf("reload: %s", s.out.Bytes()[off:])
	}
	before := s.outcomes()
	for i := range 20 {
		query(t, s.dnsAddr(), "udp", reportName(900000+i, 1795800000), dns.TypeA, dns.ClassINET)
	}
	if d := delta(before, s.outcomes()); d["stored"] != 20 {
		t.Errorf("after raising max_size: outcomes %v, want 20 stored", d)
	}
	if g := metricTotal(s.metricsText(), "coredns_statusengine_store_full"); g != 0 {
		t.Errorf("store_full = %v after storing resumed", g)
	}
	if n, want := countAll(t, s), full["stored"]+20; float64(n) != want {
		t.Errorf("after raising max_size the API lists %d reports, %v were counted stored", n, want)
	}
	t.Logf("max_size 1M: file %d bytes, full after %v stored; %d answered in all, %v store_failed, %d answers in the second after; storing resumed after raising the cap",
		fileSize, full["stored"], len(answered), full["store_failed"], perSecond)
}

// countAll counts every record through the API's compatible endpoint.
func countAll(t *testing.T, s *server) int {
	t.Helper()
	var body struct {
		Amount int `json:"amount"`
	}
	getJSONWith(t, s.http(), fmt.Sprintf("http://%s/api/0/%d", s.cfg.API, time.Now().Unix()+60), &body)
	return body.Amount
}

func fileLen(t *testing.T, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestNoLeakToMetricsOrLogs sends names carrying terminal escapes, new
// lines and NUL bytes, and reports with distinctive field values: no
// metric label and no log line may carry them raw.
func TestNoLeakToMetricsOrLogs(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), Server: "log"})
	s.start()
	evil := []string{
		`\027[31mEVIL\010FAKELINE\000.1795549302.` + zone,
		`GIXD\010FAKE2\013\012.` + zone,
		`\255\254\027]0;title\007.` + zone,
	}
	for _, n := range evil {
		if r := query(t, s.dnsAddr(), "udp", n, dns.TypeA, dns.ClassINET); len(r.Answer) != 1 {
			t.Fatalf("%s: %v", n, r)
		}
	}
	marker := "2.9.7,LeakCheck/9.9.9 (Zz),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,ab"
	before := s.outcomes()
	query(t, s.dnsAddr(), "udp", encodeBeacon(marker), dns.TypeA, dns.ClassINET)
	if d := delta(before, s.outcomes()); d["stored"] != 1 {
		t.Fatalf("the marker report was not stored: %v", d)
	}
	time.Sleep(200 * time.Millisecond) // the log plugin writes after answering

	metrics := s.metricsText()
	for _, leak := range []string{"LeakCheck", "EVIL", "FAKE", "title", strings.Split(encodeBeacon(marker), ".")[0], "1795549302", "1795549999"} {
		if strings.Contains(strings.ToLower(metrics), strings.ToLower(leak)) {
			t.Errorf("metrics carry %q from a query name", leak)
		}
	}
	out := s.out.Bytes()
	for _, b := range []byte{0x1b, 0x00, 0x07, 0x08, 0x0b, 0xff} {
		if bytes.IndexByte(out, b) >= 0 {
			t.Errorf("the log holds a raw byte %#x from a query name", b)
		}
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "FAKE") || strings.HasPrefix(l, ".1795549302") {
			t.Errorf("a query name split the log into a forged line: %q", l)
		}
	}
	if !strings.Contains(strings.ToLower(string(out)), `\027[31mevil`) {
		t.Errorf("the log plugin did not log the name escaped: %s", out)
	}
	t.Logf("%d hostile names: metrics carry no query data, the log shows them escaped", len(evil)+1)
}

func encodeBeacon(b string) string {
	return strings.ToLower(codec.Encode(b, 1795549999, zone))
}
