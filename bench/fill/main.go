// Command fill writes realistic reports straight into a store, spread evenly
// over a time span, so the storage and API benchmarks have a million-report
// database without a million DNS queries. With -n 0 it only opens the store
// and reports what it holds.
//
//	go run ./bench/fill -db out/1m.db -n 1000000 -span 8760h
package main

import (
	"crypto/sha1"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// Stats is what fill prints, one JSON object, for bench/run to read.
type Stats struct {
	Records       int64   `json:"records"`
	FileBytes     int64   `json:"file_bytes"`
	BytesPerRec   float64 `json:"bytes_per_record"`
	OpenSeconds   float64 `json:"open_seconds"`
	FillSeconds   float64 `json:"fill_seconds,omitempty"`
	FillPerSecond float64 `json:"fill_per_second,omitempty"`
}

func main() {
	path := flag.String("db", "bench.db", "database file")
	n := flag.Int("n", 1000000, "reports to add (0: only open and count)")
	span := flag.Duration("span", 365*24*time.Hour, "the reports are received evenly over this span, ending now")
	workers := flag.Int("workers", 8192, "concurrent submitters (the writer batches what they queue)")
	starts := flag.Int("starts", 20, "reports per installation: an installation restarts this often over the span")
	zone := flag.String("zone", "status.modsecurity.org.", "zone stored with each report")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the fill to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fail(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}

	var st Stats
	if *n > 0 {
		s, err := store.Open(*path, store.Options{QueueSize: *workers * 2, AnswerWait: time.Hour})
		if err != nil {
			fail(err)
		}
		start := time.Now()
		if err := fill(s, *n, max(1, *n / *starts), *span, *workers, *zone); err != nil {
			fail(err)
		}
		st.FillSeconds = time.Since(start).Seconds()
		st.FillPerSecond = float64(*n) / st.FillSeconds
		if err := s.Close(); err != nil {
			fail(err)
		}
	}

	start := time.Now()
	s, err := store.Open(*path, store.Options{})
	if err != nil {
		fail(err)
	}
	st.OpenSeconds = time.Since(start).Seconds()
	st.Records = s.Count()
	s.Close()
	fi, err := os.Stat(*path)
	if err != nil {
		fail(err)
	}
	st.FileBytes = fi.Size()
	if st.Records > 0 {
		st.BytesPerRec = float64(st.FileBytes) / float64(st.Records)
	}
	json.NewEncoder(os.Stdout).Encode(st)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fill:", err)
	os.Exit(1)
}

// fill submits n reports; worker w takes every workers-th one, so the receive
// times reaching the writer rise nearly in order, as live traffic does.
func fill(s *store.Store, n, installations int, span time.Duration, workers int, zone string) error {
	end := time.Now()
	begin := end.Add(-span)
	step := span / time.Duration(n)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				rec := newRecord(uint64(i), uint64(i%installations), begin.Add(time.Duration(i)*step), zone)
				if out, err := s.Submit(rec); out != store.Stored {
					mu.Lock()
					if first == nil {
						first = fmt.Errorf("report %d: outcome %d: %v", i, out, err)
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}

var (
	modsecs = []string{"2.9.7", "2.9.8", "2.9.6", "2.9.5", "2.9.3", "2.8.0"}
	servers = []string{"Apache/2.4.62 (Debian)", "Apache/2.4.58 (Ubuntu)", "Apache/2.4.37 (Red Hat Enterpr",
		"Apache/2.4.71 (Debian)", "Apache", "nginx", "IIS"}
	pcres     = []string{"10.42/", "8.45/8.45 2021-06-15", "10.40/"}
	countries = []struct{ code, name string }{{"US", "United States"}, {"DE", "Germany"}, {"FR", "France"},
		{"BR", "Brazil"}, {"JP", "Japan"}, {"IN", "India"}, {"GB", "United Kingdom"}, {"NL", "Netherlands"}}
)

// newRecord is report i, a start of installation inst: Debian-style 2-hex ids for
// most (as ModSecurity 2.9.x on glibc sends), full 40-hex ids for a quarter,
// one resolver network per installation, and the country-level location the
// embedded database gives.
func newRecord(i, inst uint64, received time.Time, zone string) *record.Record {
	h := sha1.Sum(binary.BigEndian.AppendUint64(nil, inst))
	id := fmt.Sprintf("%02x", h[0])
	if inst%4 == 0 {
		id = fmt.Sprintf("%x", h)
	}
	beacon := fmt.Sprintf("%s,%s,1.7.2/1.7.2,%s,Lua 5.1,2.9.14,%s",
		modsecs[inst%uint64(len(modsecs))], servers[(inst/3)%uint64(len(servers))], pcres[(inst/5)%uint64(len(pcres))], id)
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		panic(err)
	}
	// The client's clock at its start, a few seconds before the report
	// arrives, as ModSecurity sends it; an installation's starts are weeks
	// apart, so no report is a duplicate.
	rep.Epoch, rep.HasEpoch = received.Unix()-int64(i%5), true
	c := countries[int(h[2])%len(countries)]
	return &record.Record{
		Received: received,
		Zone:     zone,
		Resolver: netip.AddrFrom4([4]byte{h[3] | 1, h[4], h[5] % 16, 53}),
		Report:   rep,
		Geo:      geo.Location{Country: c.code, CountryName: c.name, Source: "resolver"},
	}
}
