package reliability

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// loader is a Go load generator that remembers every name whose answer it
// received, for tests that need the client's own log (reloads).
type loader struct {
	addr string
	next atomic.Int64 // installation number of the next report

	mu       sync.Mutex
	answered []string
	lat      []time.Duration
	timeouts atomic.Int64
	other    atomic.Int64 // answers without the A record

	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad runs workers sending fresh report names, each waiting for its
// answer (so the rate follows the server's commit latency), from base on.
func startLoad(addr string, workers int, base int64) *loader {
	l := &loader{addr: addr, stop: make(chan struct{})}
	l.next.Store(base)
	for range workers {
		l.wg.Add(1)
		go l.work()
	}
	return l
}

func (l *loader) work() {
	defer l.wg.Done()
	c := &dns.Client{Timeout: time.Second}
	for {
		select {
		case <-l.stop:
			return
		default:
		}
		name := reportName(int(l.next.Add(1)), 1795600000)
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		start := time.Now()
		r, _, err := c.Exchange(m, l.addr)
		d := time.Since(start)
		if err != nil {
			l.timeouts.Add(1)
			time.Sleep(10 * time.Millisecond) // a server gone for a moment
			continue
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			l.other.Add(1)
			continue
		}
		l.mu.Lock()
		l.answered = append(l.answered, strings.ToLower(name))
		l.lat = append(l.lat, d)
		l.mu.Unlock()
	}
}

// count is the number of answered reports so far.
func (l *loader) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.answered)
}

// finish stops the workers and returns the answered names.
func (l *loader) finish() []string {
	close(l.stop)
	l.wg.Wait()
	return l.answered
}

// percentile of the answer latencies seen, p in [0,1].
func (l *loader) percentile(p float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return percentile(l.lat, p)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// missing lists the answered names not in stored.
func missing(answered []string, stored map[string]bool) []string {
	var out []string
	for _, n := range answered {
		if !stored[n] {
			out = append(out, n)
		}
	}
	return out
}

// dnsperfRun is one dnsperf process over a file of fresh report names.
type dnsperfRun struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// startDnsperf sends n fresh report names (installations base..base+n-1)
// once each, with -v so that every answered name is printed.
func startDnsperf(t *testing.T, bin, addr string, n, base int, seconds int) *dnsperfRun {
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
		"-t", "1", "-c", "4", "-q", "200", "-v")
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

// answered parses dnsperf -v: "> NOERROR name A 0.000123" per answered
// query, "> T name A" per timeout. It returns the names answered NOERROR
// (lower case) and the count of timeouts.
func (r *dnsperfRun) answered() (names []string, timeouts int, summary string) {
	sc := bufio.NewScanner(bytes.NewReader(r.out.Bytes()))
	var sum strings.Builder
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 3 && f[0] == ">" && f[1] == "T":
			timeouts++
		case len(f) >= 4 && f[0] == ">" && f[1] == "NOERROR":
			names = append(names, strings.ToLower(f[2]))
		case len(f) > 0 && f[0] != ">":
			if strings.Contains(sc.Text(), "Queries") || strings.Contains(sc.Text(), "Run time") {
				sum.WriteString(strings.TrimSpace(sc.Text()) + "; ")
			}
		}
	}
	return names, timeouts, sum.String()
}
