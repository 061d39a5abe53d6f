// Command fleetlat measures a fleet of statusengines sharing reports over
// the jetstream property: it sends each server its own new reports at a
// steady rate (DNS, each answered before it counts as sent), samples every
// server's coredns_statusengine_records every 20 ms, and prints, as JSON,
// the time from a report's answer until every server holds it (p50, p99,
// max). That time is read from the cumulative curves: the k-th report
// answered is taken as held by all once every server holds k reports more
// than at the start (the stream delivers in order; a record that overtakes
// another shortens one time and lengthens the other by as much).
// With -outage it runs -stop at -outage-at and -start after -outage
// (stopping and starting NATS), and adds the time from -start's return
// until every server holds every report sent (the catch-up).
//
//	fleetlat -dns 127.0.0.1:15361,127.0.0.1:15362,127.0.0.1:15363 \
//	    -metrics 127.0.0.1:19161,127.0.0.1:19162,127.0.0.1:19163 -rate 1000 -dur 30s
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

const (
	zone    = "status.modsecurity.org."
	epoch   = 1795549302
	workers = 32 // concurrent queries per server: an answer waits for fdatasync
)

func beacon(i int) string {
	return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
}

// result is what fleetlat prints.
type result struct {
	Servers     int     `json:"servers"`
	RatePerSrv  int     `json:"rate_per_server"`
	Sent        int     `json:"sent"`
	Unanswered  int     `json:"unanswered"`
	HeldByAll   int     `json:"held_by_all"`
	P50ms       float64 `json:"all_held_p50_ms"`
	P99ms       float64 `json:"all_held_p99_ms"`
	MaxMs       float64 `json:"all_held_max_ms"`
	OutageS     float64 `json:"outage_s,omitempty"`
	CatchUpS    float64 `json:"catch_up_s,omitempty"`
	SampleEvery string  `json:"sample_every"`
}

func main() {
	dnsAddrs := flag.String("dns", "", "DNS addresses of the servers, comma-separated")
	metricsAddrs := flag.String("metrics", "", "prometheus addresses of the servers, same order")
	rate := flag.Int("rate", 1000, "new reports a second to each server")
	dur := flag.Duration("dur", 30*time.Second, "how long reports are sent")
	start := flag.Int("start", 0, "index of the first installation (disjoint ranges per run)")
	wait := flag.Duration("wait", 5*time.Minute, "how long to wait after the last report for every server to hold all")
	outageAt := flag.Duration("outage-at", 0, "when to run -stop (0: no outage)")
	outage := flag.Duration("outage", 0, "how long between -stop and -start-cmd")
	stopCmd := flag.String("stop", "", "shell command that stops NATS")
	startCmd := flag.String("start-cmd", "", "shell command that starts NATS again")
	flag.Parse()
	dnss, mets := strings.Split(*dnsAddrs, ","), strings.Split(*metricsAddrs, ",")
	if *dnsAddrs == "" || len(dnss) != len(mets) {
		fmt.Fprintln(os.Stderr, "fleetlat: -dns and -metrics need the same number of addresses")
		os.Exit(2)
	}
	n := len(dnss)
	perServer := int(dur.Seconds() * float64(*rate))
	total := n * perServer

	base := make([]float64, n)
	for s := range n {
		v, err := records(mets[s])
		if err != nil {
			fmt.Fprintln(os.Stderr, "fleetlat:", err)
			os.Exit(1)
		}
		base[s] = v
	}
	// The sampler: the least any server holds beyond its base, over time.
	type sample struct {
		at  time.Time
		min float64
	}
	var (
		mu       sync.Mutex
		samples  []sample
		answered []time.Time
	)
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			least := math.Inf(1)
			for s := range n {
				v, err := records(mets[s])
				if err != nil {
					least = math.Inf(-1)
					break
				}
				least = min(least, v-base[s])
			}
			if !math.IsInf(least, -1) {
				mu.Lock()
				samples = append(samples, sample{time.Now(), least})
				mu.Unlock()
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(sampleEvery):
			}
		}
	}()

	var restarted time.Time
	var outageDone sync.WaitGroup
	if *outageAt > 0 {
		outageDone.Add(1)
		go func() {
			defer outageDone.Done()
			time.Sleep(*outageAt)
			run(*stopCmd)
			time.Sleep(*outage)
			run(*startCmd)
			restarted = time.Now()
		}()
	}

	unanswered := 0
	var senders sync.WaitGroup
	for s := range n {
		jobs := make(chan int, workers)
		for range workers {
			senders.Add(1)
			go func() {
				defer senders.Done()
				c := &dns.Client{Timeout: 2 * time.Second}
				for k := range jobs {
					m := new(dns.Msg)
					m.SetQuestion(codec.Encode(beacon(*start+k), epoch, zone), dns.TypeA)
					r, _, err := c.Exchange(m, dnss[s])
					mu.Lock()
					if err == nil && len(r.Answer) == 1 {
						answered = append(answered, time.Now())
					} else {
						unanswered++
					}
					mu.Unlock()
				}
			}()
		}
		go func() {
			defer close(jobs)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			next, per := 0, float64(*rate)/100
			due := 0.0
			for next < perServer {
				<-tick.C
				due += per
				for next < perServer && float64(next) < due {
					jobs <- s*perServer + next
					next++
				}
			}
		}()
	}
	senders.Wait()
	outageDone.Wait()

	// Wait until every server holds every answered report.
	deadline := time.Now().Add(*wait)
	var complete time.Time
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(samples) > 0 && samples[len(samples)-1].min >= float64(len(answered))
		at := time.Time{}
		if done {
			at = samples[len(samples)-1].at
		}
		mu.Unlock()
		if done {
			complete = at
			break
		}
		time.Sleep(sampleEvery)
	}
	close(stopSampling)
	<-sampled

	slices.SortFunc(answered, func(a, b time.Time) int { return a.Compare(b) })
	res := result{Servers: n, RatePerSrv: *rate, Sent: total, Unanswered: unanswered, SampleEvery: sampleEvery.String()}
	var lat []float64
	j := 0
	for k, a := range answered {
		for j < len(samples) && samples[j].min < float64(k+1) {
			j++
		}
		if j == len(samples) {
			break
		}
		res.HeldByAll++
		lat = append(lat, max(0, samples[j].at.Sub(a).Seconds()*1000))
	}
	slices.Sort(lat)
	res.P50ms, res.P99ms = pct(lat, 0.50), pct(lat, 0.99)
	if len(lat) > 0 {
		res.MaxMs = lat[len(lat)-1]
	}
	if *outageAt > 0 {
		res.OutageS = outage.Seconds()
		res.CatchUpS = -1 // not within -wait
		if !complete.IsZero() {
			res.CatchUpS = complete.Sub(restarted).Seconds()
		}
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}

const sampleEvery = 20 * time.Millisecond

// records reads coredns_statusengine_records (summed over its db labels)
// from a server's prometheus listener.
func records(addr string) (float64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	sum, found := 0.0, false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "coredns_statusengine_records{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum, found = sum+v, true
		}
	}
	if !found {
		return 0, fmt.Errorf("%s: no coredns_statusengine_records", addr)
	}
	return sum, nil
}

func run(cmd string) {
	if cmd == "" {
		return
	}
	if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "fleetlat: %s: %v\n%s", cmd, err, out)
	}
}

// pct is the q quantile of sorted xs.
func pct(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	return xs[min(len(xs)-1, int(math.Ceil(q*float64(len(xs))))-1)]
}
