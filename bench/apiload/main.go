// Command apiload requests URLs from concurrent clients for a while and
// prints the latency percentiles of each URL as JSON. With -dns it measures
// the DNS answers of the same server meanwhile (two clients sending the
// names of a bench/gen file, each waiting for its answer), and with -pid the
// server's peak anonymous memory.
//
//	go run ./bench/apiload -c 20 -d 20s http://127.0.0.1:18053/api/v1/summary
//	go run ./bench/apiload -c 40 -d 20s -dns 127.0.0.1:15356 -names q.txt -pid 1234 http://127.0.0.1:18055/api/0/1767225600
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Result is the outcome for one URL.
type Result struct {
	URL      string  `json:"url"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Status   int     `json:"first_status"`
	Bytes    int64   `json:"bytes_last"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	// Statuses counts the answers by HTTP status ("error" for none).
	Statuses map[string]int `json:"statuses"`
	// DNS answers meanwhile, with -dns.
	DNS *DNSResult `json:"dns,omitempty"`
	// PeakAnonMiB is the server's peak RssAnon meanwhile, with -pid.
	PeakAnonMiB int64 `json:"peak_anon_mib,omitempty"`
}

// DNSResult is what the DNS clients saw.
type DNSResult struct {
	Answered int     `json:"answered"`
	Timeouts int64   `json:"timeouts"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

func main() {
	clients := flag.Int("c", 20, "concurrent clients per URL")
	dur := flag.Duration("d", 20*time.Second, "how long to load each URL")
	dnsAddr := flag.String("dns", "", "measure the DNS answers of this address meanwhile")
	namesFile := flag.String("names", "", "with -dns: the names to ask, a bench/gen file")
	pid := flag.Int("pid", 0, "sample the peak anonymous memory of this process meanwhile")
	flag.Parse()

	var names []string
	if *dnsAddr != "" {
		var err error
		if names, err = readNames(*namesFile); err != nil {
			fmt.Fprintln(os.Stderr, "apiload:", err)
			os.Exit(1)
		}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients}
	hc := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	var out []Result
	next := atomic.Int64{}
	for _, u := range flag.Args() {
		done := make(chan struct{})
		var probe chan *DNSResult
		if *dnsAddr != "" {
			probe = make(chan *DNSResult, 1)
			go func() { probe <- askDNS(*dnsAddr, names, &next, done) }()
		}
		var peak chan int64
		if *pid != 0 {
			peak = make(chan int64, 1)
			go func() { peak <- peakAnon(*pid, done) }()
		}
		r := load(hc, u, *clients, *dur)
		close(done)
		if probe != nil {
			r.DNS = <-probe
		}
		if peak != nil {
			r.PeakAnonMiB = <-peak >> 20
		}
		out = append(out, r)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

// readNames reads the first field of each line of a bench/gen file.
func readNames(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, _ := strings.Cut(sc.Text(), " "); name != "" {
			names = append(names, dns.Fqdn(name))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no names in %q", path)
	}
	return names, sc.Err()
}

// askDNS runs two clients asking names (each name once, from next on) until
// done, and returns the answer latencies.
func askDNS(addr string, names []string, next *atomic.Int64, done chan struct{}) *DNSResult {
	var (
		mu       sync.Mutex
		lat      []time.Duration
		timeouts atomic.Int64
		wg       sync.WaitGroup
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Timeout: 2 * time.Second}
			for {
				select {
				case <-done:
					return
				default:
				}
				m := new(dns.Msg)
				m.SetQuestion(names[int(next.Add(1)-1)%len(names)], dns.TypeA)
				start := time.Now()
				if _, _, err := c.Exchange(m, addr); err != nil {
					timeouts.Add(1)
					continue
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	r := &DNSResult{Answered: len(lat), Timeouts: timeouts.Load()}
	if len(lat) > 0 {
		r.P50ms = ms(lat[len(lat)*50/100])
		r.P99ms = ms(lat[min(len(lat)-1, len(lat)*99/100)])
	}
	return r
}

// peakAnon samples RssAnon of pid every 100 ms until done.
func peakAnon(pid int, done chan struct{}) int64 {
	var peak int64
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "RssAnon:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					peak = max(peak, kb<<10)
				}
			}
		}
		select {
		case <-done:
			return peak
		case <-t.C:
		}
	}
}

// load runs clients goroutines requesting url back to back until dur is over.
func load(hc *http.Client, url string, clients int, dur time.Duration) Result {
	res := Result{URL: url, Statuses: map[string]int{}}
	var (
		mu   sync.Mutex
		lat  []time.Duration
		wg   sync.WaitGroup
		stop = time.Now().Add(dur)
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				start := time.Now()
				resp, err := hc.Get(url)
				var n int64
				status := 0
				if err == nil {
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				d := time.Since(start)
				mu.Lock()
				res.Requests++
				if status == 0 {
					res.Statuses["error"]++
				} else {
					res.Statuses[strconv.Itoa(status)]++
				}
				if res.Status == 0 {
					res.Status = status
				}
				if err != nil || status != http.StatusOK {
					res.Errors++
				} else {
					lat = append(lat, d)
					res.Bytes = n
				}
				mu.Unlock()
				if err != nil || status == http.StatusServiceUnavailable {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50ms = ms(lat[len(lat)*50/100])
		res.P99ms = ms(lat[min(len(lat)-1, len(lat)*99/100)])
		res.MaxMs = ms(lat[len(lat)-1])
	}
	return res
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func init() {
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: apiload [-c clients] [-d duration] url...")
		flag.PrintDefaults()
	}
}
