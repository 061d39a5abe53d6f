package reliability

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusengine/statusengine/api/apitypes"
)

// TestExpensiveRequestsLimited (issue 10, point 1): expensive requests run
// under a small concurrency limit. 40 concurrent public requests for the
// whole range of a 30,000-report database: at most max_expensive (1 by
// default) run at once; the others wait up to queue_wait (1 s), then get 503
// with Retry-After and a JSON error; every other answer is complete. Cheap
// requests are served meanwhile.
func TestExpensiveRequestsLimited(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	fill(t, s, apiToken, 0, 30000)
	to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix()

	type answer struct {
		code       int
		retryAfter string
		errMsg     string
		amount     int
		took       time.Duration
	}
	answers := make([]answer, 40)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			t0 := time.Now()
			resp, err := (&http.Client{Timeout: 2 * time.Minute}).Get(fmt.Sprintf("http://%s/api/0/%d", s.cfg.API, to))
			if err != nil {
				answers[i] = answer{code: -1, errMsg: err.Error()}
				return
			}
			defer resp.Body.Close()
			var body struct {
				Amount int    `json:"amount"`
				Error  string `json:"error"`
			}
			b, _ := io.ReadAll(resp.Body)
			json.Unmarshal(b, &body)
			answers[i] = answer{resp.StatusCode, resp.Header.Get("Retry-After"), body.Error, body.Amount, time.Since(t0)}
		}()
	}
	close(start)
	// Cheap requests go on while the expensive ones run or wait.
	var cheap []time.Duration
	for range 10 {
		t0 := time.Now()
		if code, _, _ := apiGet(t, s, "/api/v1/summary?from=0", ""); code != 200 {
			t.Errorf("summary during the expensive requests: %d", code)
		}
		cheap = append(cheap, time.Since(t0))
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()

	served, busy := 0, 0
	var servedTook []time.Duration
	for i, a := range answers {
		switch {
		case a.code == 200 && a.amount == 30000:
			served++
			servedTook = append(servedTook, a.took)
		case a.code == 503 && a.retryAfter != "" && a.errMsg != "":
			busy++
		default:
			t.Errorf("request %d: %d (Retry-After %q, error %q, amount %d)", i, a.code, a.retryAfter, a.errMsg, a.amount)
		}
	}
	rejected := sumMetric(s.metricsText(), "coredns_statusengine_api_rejected_total", "limit")["expensive"]
	sort.Slice(servedTook, func(i, j int) bool { return servedTook[i] < servedTook[j] })
	sort.Slice(cheap, func(i, j int) bool { return cheap[i] < cheap[j] })
	t.Logf("40 concurrent full-range requests: %d served (%v .. %v), %d got 503 with Retry-After (api_rejected_total{limit=expensive} %v); summary meanwhile p50 %v, max %v",
		served, first(servedTook), last(servedTook), busy, rejected, cheap[len(cheap)/2].Round(time.Millisecond), cheap[len(cheap)-1].Round(time.Millisecond))
	if busy == 0 || served == 0 || float64(busy) != rejected {
		t.Errorf("%d served, %d busy, %v counted: want some of each, every 503 counted", served, busy, rejected)
	}
}

func first(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[0].Round(time.Millisecond)
}

func last(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1].Round(time.Millisecond)
}

// TestStrictParameters (issue 10, point 4): cursors and numbers out of range
// get 400. These cursors wrapped around and answered 200 from the first
// record.
func TestStrictParameters(t *testing.T) {
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	fill(t, s, apiToken, 0, 10)
	for _, p := range []string{
		"/api/v1/reports?from=0&cursor=ffffffffffffffff",
		"/api/v1/reports?from=0&cursor=8000000000000000",
		"/api/v1/reports?from=0&cursor=7fffffffffffffff",
		"/api/v1/reports?cursor=0",
		"/api/v1/reports?cursor=10000000000000000",
		"/api/v1/reports?limit=%2B5",
		"/api/v1/reports?limit=5&limit=2000",
		"/api/v1/summary?from=8589934592",
		"/api/v1/timeseries?to=%2B1",
		"/api/0/8589934592",
	} {
		code, _, body := apiGet(t, s, p, apiToken)
		if code != http.StatusBadRequest || !isJSONError(body) {
			t.Errorf("GET %s: %d %.200s, want 400 with a JSON error", p, code, body)
		}
	}
	// A real cursor still pages.
	code, _, body := apiGet(t, s, "/api/v1/reports?limit=5&from=0", apiToken)
	var page apitypes.ReportsPage
	if json.Unmarshal([]byte(body), &page); code != 200 || page.NextCursor == nil {
		t.Fatalf("first page: %d %.200s", code, body)
	}
	if code, _, body := apiGet(t, s, "/api/v1/reports?limit=5&from=0&cursor="+*page.NextCursor, apiToken); code != 200 || json.Unmarshal([]byte(body), &page) != nil || len(page.Reports) != 5 {
		t.Errorf("second page: %d %.200s", code, body)
	}
}

// TestFullRangeCrowd (issue 10, point 1): 40 public clients asking for the
// whole range of a 100,000-report database, again and again, at full speed,
// ignoring Retry-After. Answers are written row by row and only max_expensive
// run at once, so the process's anonymous memory stays bounded and the host's
// DNS answers go on. Before: 7.3 GiB of anonymous memory, DNS p50 196 ms.
// Then the same crowd asks for a range past MaxRows, which is refused (400)
// after counting the keys: a cheap answer, but one a crowd can ask for in a
// loop. Then token holders: filtered reports that match nothing, each page
// reading its scan budget (before: 10 such scans put the DNS p50 at 88 ms),
// and 100 exports of everything at once (before: 100 slow exports held 559
// MB).
func TestFullRangeCrowd(t *testing.T) {
	const reports = 100000
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	fill(t, s, apiToken, 0, reports)

	// The DNS answers alone first.
	quiet := startLoad(s.dnsAddr(), 2, 10_000_000)
	time.Sleep(3 * time.Second)
	quiet.finish()
	t.Logf("DNS alone: p50 %v, p99 %v", quiet.percentile(0.5), quiet.percentile(0.99))

	// The fill is all before 2026; the DNS load stores reports of today,
	// so the whole range holds more than MaxRows.
	for i, tc := range []struct {
		path    string
		token   string
		clients int
		code    int
	}{
		{"/api/0/1767225600", "", 40, 200},
		{"/api/0/2000000000", "", 40, 400},
		{"/api/v1/reports?from=0&modsec=9.9.9&limit=1000", apiToken, 10, 200},
		{"/api/v1/export?from=0", apiToken, 100, 200},
	} {
		c := crowd(t, s, tc.path, tc.token, tc.clients, 10*time.Second, 20_000_000*(i+2), tc.code)
		t.Logf("%s: %d clients for 10 s: %d answered %d, %d busy (503 with Retry-After), %d other; peak anonymous memory %d MiB; DNS p50 %v, p99 %v, %d timeouts, %d answered",
			tc.path, tc.clients, c.ok, tc.code, c.busy, c.other, c.peak>>20, c.p50, c.p99, c.timeouts, c.answered)
		if c.peak > 300<<20 {
			t.Errorf("%s: peak anonymous memory %d MiB, want at most 300", tc.path, c.peak>>20)
		}
		if c.p50 > 20*time.Millisecond || c.timeouts != 0 {
			t.Errorf("%s: DNS p50 %v with %d timeouts, want at most 20 ms and none", tc.path, c.p50, c.timeouts)
		}
		if c.ok == 0 || c.other != 0 {
			t.Errorf("%s: %d answered %d, %d other: want some, and every other one a 503", tc.path, c.ok, tc.code, c.other)
		}
	}
}

// crowdResult is what a crowd saw, and what the server's DNS answers did
// meanwhile.
type crowdResult struct {
	ok, busy, other    int64
	peak               int64 // the server's anonymous memory
	p50, p99           time.Duration
	timeouts, answered int64
}

// crowd runs n clients getting path (with token when not "") in a loop for
// d (a 503 makes a client wait 100 ms, not Retry-After) while two DNS
// workers send new reports from base on; ok counts the complete answers of
// status code.
func crowd(t *testing.T, s *server, path, token string, n int, d time.Duration, base, code int) crowdResult {
	var ok, busy, other atomic.Int64
	load := startLoad(s.dnsAddr(), 2, int64(base))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 2 * time.Minute}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+s.cfg.API+path, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				resp, err := c.Do(req)
				if err != nil {
					other.Add(1)
					time.Sleep(100 * time.Millisecond)
					continue
				}
				// Read to the end: a cut answer is an error here.
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err == nil && resp.StatusCode == code:
					ok.Add(1)
				case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "":
					busy.Add(1)
					time.Sleep(100 * time.Millisecond)
				default:
					other.Add(1)
				}
			}
		}()
	}
	var peak int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		peak = max(peak, processAnon(t, s.proc.Cmd.Process.Pid))
	}
	close(stop)
	wg.Wait()
	load.finish()
	return crowdResult{ok: ok.Load(), busy: busy.Load(), other: other.Load(), peak: peak,
		p50: load.percentile(0.5), p99: load.percentile(0.99), timeouts: load.timeouts.Load(), answered: int64(load.count())}
}

// processAnon reads RssAnon of pid: the memory the process itself holds
// (the database's pages are file-backed and shared with the page cache).
func processAnon(t *testing.T, pid int) int64 { return processStatus(t, pid, "RssAnon") }

// TestSummaryUnderDistinctValues (issue 10, point 2): 100,000 distinct
// server strings, as a flood from one source sends them (stored here
// through the import, received over the last 36 days), then a page's
// stream of summaries over 36 distinct ranges. Each answer stays far under
// 256 KiB (lists hold their top values, the rest is "other" with the count
// of values beside it), the steady stream answers at p50 under 100 ms, and
// the process's anonymous memory stays bounded (the answer cache is bounded
// in bytes). Before: a 10 MiB summary, over a second of CPU each, and 36
// distinct ranges held 939 MB of heap.
func TestSummaryUnderDistinctValues(t *testing.T) {
	const n = 100000
	s := newServer(t, config{Options: limitOff(t), APIBody: "token " + apiToken})
	s.start()
	now := time.Now().UTC()
	var body bytes.Buffer
	for i := range n {
		received := now.Add(-time.Duration(i) * 36 * 24 * time.Hour / n)
		b, _ := json.Marshal(map[string]any{
			"received": received.Format(time.RFC3339Nano),
			"zone":     zone,
			"resolver": "192.0.2.53",
			"beacon":   fmt.Sprintf("2.9.7,Apache/2.4.%d (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i, i),
			"epoch":    received.Unix(),
		})
		body.Write(append(b, '\n'))
	}
	req, _ := http.NewRequest("POST", "http://"+s.cfg.API+"/api/v1/import", &body)
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("import: %s %.300s", resp.Status, b)
	}
	pid := s.proc.Cmd.Process.Pid
	for _, token := range []string{"", apiToken} {
		var lat []time.Duration
		var largest int
		var peak int64
		for k := range 72 {
			// 36 distinct ranges, each asked twice, a page's pace.
			path := fmt.Sprintf("/api/v1/summary?from=%d", now.Add(-time.Duration(k%36+1)*24*time.Hour).Unix())
			t0 := time.Now()
			code, _, body := apiGet(t, s, path, token)
			lat = append(lat, time.Since(t0))
			if code != 200 {
				t.Fatalf("GET %s: %d %.200s", path, code, body)
			}
			largest = max(largest, len(body))
			peak = max(peak, processAnon(t, pid))
			time.Sleep(50 * time.Millisecond)
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t.Logf("token %q: 72 summaries over 36 ranges of up to %d distinct servers: largest answer %d bytes, p50 %v, p90 %v, max %v; peak anonymous memory %d MiB",
			token, n, largest, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*9/10].Round(time.Millisecond), last(lat), peak>>20)
		if largest > 256<<10 || lat[len(lat)/2] > 100*time.Millisecond || peak > 300<<20 {
			t.Errorf("token %q: largest answer %d bytes, p50 %v, peak anonymous memory %d MiB: want at most 256 KiB, 100 ms, 300 MiB",
				token, largest, lat[len(lat)/2], peak>>20)
		}
	}
}
