// Command apiload requests URLs from concurrent clients for a while and
// prints the latency percentiles of each URL as JSON.
//
//	go run ./bench/apiload -c 20 -d 20s http://127.0.0.1:18053/api/v1/summary
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
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
}

func main() {
	clients := flag.Int("c", 20, "concurrent clients per URL")
	dur := flag.Duration("d", 20*time.Second, "how long to load each URL")
	flag.Parse()

	tr := &http.Transport{MaxIdleConnsPerHost: *clients, MaxConnsPerHost: *clients}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var out []Result
	for _, u := range flag.Args() {
		out = append(out, load(hc, u, *clients, *dur))
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

// load runs clients goroutines requesting url back to back until dur is over.
func load(hc *http.Client, url string, clients int, dur time.Duration) Result {
	res := Result{URL: url}
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
				if err != nil {
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
