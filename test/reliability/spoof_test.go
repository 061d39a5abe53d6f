package reliability

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// spoofPrefix is made local to the test's namespace: one socket sends from
// any of its addresses (2^28 /48 networks), as spoofed IPv6 sources would.
const spoofPrefix = "3fff::/20"

// spoofSource is the address of the i-th spoofed /48.
func spoofSource(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x3f, 0xff, 0, byte(i >> 16), byte(i >> 8), byte(i), 15: 1})
}

// spoofer sends report names from chosen source addresses, workers at once,
// each waiting for its answer, and counts the answers.
func spoof(t *testing.T, s *server, workers int, n int, src func(i int) netip.Addr, name func(i int) string) (answered int64) {
	t.Helper()
	dst := &net.UDPAddr{IP: net.IPv6loopback, Port: s.dnsPort}
	var next, ok, sendRetries, resent atomic.Int64
	var sendErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		var conn *net.UDPConn
		var err error
		if nerr := s.ns.Do(func() { conn, err = net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified}) }); nerr != nil || err != nil {
			t.Fatalf("socket in the namespace: %v %v", nerr, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer conn.Close()
			buf := make([]byte, 1500)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				m := new(dns.Msg)
				m.SetQuestion(name(i), dns.TypeA)
				b, _ := m.Pack()
				oob := unix.PktInfo6(&unix.Inet6Pktinfo{Addr: src(i).As16()})
				// The kernel may refuse a send from yet another source
				// address for a moment (ENOBUFS): send again. A query with
				// no answer after 2 s is sent once or twice more and logged:
				// one lost on its way in (counted by the server neither
				// time) then counts once; one whose answer was lost would
				// count twice, and the test's exact figures say so.
				answered := false
				for attempt := 0; attempt < 3 && !answered; attempt++ {
					if attempt > 0 {
						resent.Add(1)
					}
					var err error
					for try := 0; try < 50; try++ {
						if _, _, err = conn.WriteMsgUDP(b, oob, dst); err == nil {
							break
						}
						sendRetries.Add(1)
						time.Sleep(10 * time.Millisecond)
					}
					if err != nil {
						sendErr.CompareAndSwap(nil, &err)
						break
					}
					conn.SetReadDeadline(time.Now().Add(2 * time.Second))
					for {
						k, _, err := conn.ReadFromUDP(buf)
						if err != nil {
							break // timeout: send again
						}
						r := new(dns.Msg)
						if r.Unpack(buf[:k]) == nil && r.Id == m.Id {
							if r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
								ok.Add(1)
							}
							answered = true
							break
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	if e := sendErr.Load(); e != nil {
		t.Errorf("a query could not be sent after 50 tries: %v", *e)
	}
	if n := sendRetries.Load(); n > 0 {
		t.Logf("%d sends tried again (refused by the kernel)", n)
	}
	if n := resent.Load(); n > 0 {
		t.Logf("%d queries sent again after 2 s without an answer; the namespace's drop counters: %s", n, dropCounters(s))
	}
	return ok.Load()
}

// TestLimiterUnderSpoofedSources (issue 10, point 7): the per-source limiter
// keeps limiting a busy source however many other sources come. A source
// that spent its burst sends on after 110,000 reports from as many spoofed
// IPv6 /48s (more than the 100,000 buckets the limiter keeps): it is still
// limited, where it used to get a fresh burst when the limiter, full, forgot
// every bucket. The sources beyond what it can keep are refused while every
// bucket is busy.
func TestLimiterUnderSpoofedSources(t *testing.T) {
	ns := newNetns(t)
	if err := ns.AddLocalRoute(spoofPrefix); err != nil {
		t.Fatal(err)
	}
	// One new report per source network every ten minutes, a burst of 60: a
	// bucket touched once is busy (refilling) for ten minutes, longer than
	// the test.
	s := newServer(t, config{Options: "limit 0.1 60", Bind: "127.0.0.1 ::1"})
	s.ns = ns
	s.start()
	busy := func(int) netip.Addr { return netip.MustParseAddr("3fff:fff:ffff::53") }
	flood := 110000

	phase := func(what string, n int, src func(int) netip.Addr, base int) map[string]float64 {
		before := s.outcomes()
		start := time.Now()
		got := spoof(t, s, 128, n, src, func(i int) string { return reportName(base+i, 1795900000) })
		d := delta(before, s.outcomes())
		t.Logf("%s: %d queries answered of %d in %v: %v", what, got, n, time.Since(start).Round(time.Millisecond), d)
		if got != int64(n) {
			t.Errorf("%s: %d of %d answered; limited reports must be answered too; the namespace's UDP and IPv6 drop counters: %s", what, got, n, dropCounters(s))
		}
		return d
	}
	d := phase("busy source, 100 new reports", 100, busy, 0)
	if d["stored"] != 60 || d["limited"] != 40 {
		t.Fatalf("busy source: %v, want its burst of 60 stored and 40 limited", d)
	}
	d = phase(fmt.Sprintf("%d spoofed /48s, one new report each", flood), flood, spoofSource, 1000)
	// 100,000 buckets, one of them the busy source's: the sources past
	// them are refused while every bucket is refilling.
	if d["stored"] != 99999 || d["limited"] != float64(flood-99999) {
		t.Errorf("flood: %v, want 99,999 stored (the buckets kept beside the busy source's), the rest limited", d)
	}
	d = phase("busy source again, 20 new reports", 20, busy, 500000)
	if d["stored"] > 1 {
		t.Errorf("the busy source stored %v of 20 after the flood: it got a fresh burst (want at most the 0.1 a minute it refills)", d["stored"])
	}
}

// dropCounters are the nonzero UDP6 error and IPv6 discard counters of the
// server's namespace (/proc/net/snmp6 as its thread sees it): where a query
// the server never counted was lost.
func dropCounters(s *server) string {
	var b []byte
	s.ns.Do(func() { b, _ = os.ReadFile("/proc/thread-self/net/snmp6") })
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] != "0" && (strings.Contains(f[0], "Err") || strings.Contains(f[0], "Discard") || strings.Contains(f[0], "NoRoute")) {
			out = append(out, f[0]+"="+f[1])
		}
	}
	return strings.Join(out, " ")
}
