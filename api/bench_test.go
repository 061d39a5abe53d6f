package api

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// benchReports is the size of the benchmark store: STATUSENGINE_BENCH_REPORTS
// or 100,000 reports spread over the last year.
func benchReports() int {
	if n, err := strconv.Atoi(os.Getenv("STATUSENGINE_BENCH_REPORTS")); err == nil && n > 0 {
		return n
	}
	return 100000
}

var benchCountries = []string{"DE", "US", "FR", "BR", "JP", "IN", "GB", "NL", "RU", "CN", "ZA", "AU", ""}

// benchRecord is report i of one of installs installations.
func benchRecord(b *testing.B, r *rand.Rand, installs int, received time.Time, epoch int64) *record.Record {
	in := r.IntN(installs)
	beacon := fmt.Sprintf("2.9.%d,Apache/2.4.%d (Debian),1.7.2/1.7.%d,10.42/,Lua 5.%d,2.9.14,%02x",
		in%11, in%70, in%3, 1+in%3, in%256)
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		b.Fatal(err)
	}
	rep.Epoch, rep.HasEpoch = epoch, true
	c := benchCountries[in%len(benchCountries)]
	return &record.Record{
		Received: received,
		Zone:     "status.modsecurity.org.",
		Resolver: netip.AddrFrom4([4]byte{100, byte(in >> 16), byte(in >> 8), byte(in)}),
		Report:   rep,
		Geo:      geo.Location{Country: c, CountryName: c, Source: "resolver"},
	}
}

// benchServer is a server over a store of benchReports() reports over the
// last year from 20,000 installations.
func benchServer(b *testing.B) (*httptest.Server, *store.Store) {
	st, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	r := rand.New(rand.NewPCG(1, 1))
	n := benchReports()
	end := time.Now()
	start := end.Add(-365 * 24 * time.Hour)
	im := store.NewImporter(st, nil)
	for i := range n {
		at := start.Add(time.Duration(i) * (365 * 24 * time.Hour / time.Duration(n)))
		if err := im.Add(benchRecord(b, r, 20000, at, int64(i+1)), i); err != nil {
			b.Fatal(err)
		}
	}
	if err := im.Flush(); err != nil {
		b.Fatal(err)
	}
	s := New()
	s.SetStore(st)
	hs := httptest.NewServer(s)
	b.Cleanup(hs.Close)
	return hs, st
}

// measure sends b.N requests for path from 20 concurrent clients while a
// background writer stores 500 reports a second, and reports p50 and p99.
func measure(b *testing.B, hs *httptest.Server, st *store.Store, path string) {
	stop := make(chan struct{})
	var ingested atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(2, 2))
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			recs := make([]*record.Record, 5)
			for j := range recs {
				recs[j] = benchRecord(b, r, 20000, time.Now(), 1e9+i*5+int64(j))
			}
			st.SubmitBatch(recs)
			ingested.Add(5)
		}
	}()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 20}}
	lat := make([]time.Duration, b.N)
	var next atomic.Int64
	b.ResetTimer()
	var cw sync.WaitGroup
	for range 20 {
		cw.Add(1)
		go func() {
			defer cw.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				t0 := time.Now()
				resp, err := client.Get(hs.URL + path)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	cw.Wait()
	b.StopTimer()
	close(stop)
	wg.Wait()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ingested.Load()), "ingested")
}

// BenchmarkSummaryYear: /api/v1/summary over the whole year, 20 clients,
// ingest running.
func BenchmarkSummaryYear(b *testing.B) {
	hs, st := benchServer(b)
	from := time.Now().Add(-366 * 24 * time.Hour).Unix()
	measure(b, hs, st, fmt.Sprintf("/api/v1/summary?from=%d", from))
}

// BenchmarkReportsPage: a page of 1000 from /api/v1/reports in the middle
// of the year, 20 clients, ingest running.
func BenchmarkReportsPage(b *testing.B) {
	hs, st := benchServer(b)
	from := time.Now().Add(-180 * 24 * time.Hour).Unix()
	measure(b, hs, st, fmt.Sprintf("/api/v1/reports?limit=1000&from=%d", from))
}

// BenchmarkExposureYearCold: one /api/v1/exposure over the whole year by
// week, cold: each iteration reopens the store and starts a new server, so
// no sum of past days, no step and no answer is cached.
func BenchmarkExposureYearCold(b *testing.B) {
	coldYear(b, "/api/v1/exposure?step=week&from=%d")
}

// BenchmarkSummaryYearCold: the same for /api/v1/summary, to compare with.
func BenchmarkSummaryYearCold(b *testing.B) {
	coldYear(b, "/api/v1/summary?from=%d")
}

// coldYear times one request for path (its %d the start of the year) per
// iteration, each on the store opened anew and a new server.
func coldYear(b *testing.B, path string) {
	hs, st := benchServer(b)
	hs.Close()
	file := st.Path()
	st.Close()
	from := time.Now().Add(-366 * 24 * time.Hour).Unix()
	for b.Loop() {
		b.StopTimer()
		st, err := store.Open(file, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		s := New()
		s.SetStore(st)
		req := httptest.NewRequest("GET", fmt.Sprintf(path, from), nil)
		w := httptest.NewRecorder()
		b.StartTimer()
		s.ServeHTTP(w, req)
		b.StopTimer()
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		st.Close()
		b.StartTimer()
	}
}
