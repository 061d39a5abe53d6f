// Package bench holds Go benchmarks of the ingest path; bench/run holds the
// end-to-end comparison with dnsperf. Profile with e.g.
//
//	go test ./bench -run - -bench Submit -cpuprofile cpu.prof
package bench

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const zone = "status.modsecurity.org."

// newRecord is report i with a 2-hex id, as Debian's ModSecurity sends.
func newRecord(b *testing.B, i uint64, received time.Time) *record.Record {
	beacon := fmt.Sprintf("2.9.7,Apache/2.4.62 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", i%256)
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		b.Fatal(err)
	}
	rep.Epoch, rep.HasEpoch = 1700000000+int64(i), true
	return &record.Record{
		Received: received,
		Zone:     zone,
		Resolver: netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)}),
		Report:   rep,
		Geo:      geo.Location{Country: "DE", CountryName: "Germany", Source: "resolver"},
	}
}

// BenchmarkSubmit stores new reports from 500 concurrent submitters, as 500
// outstanding DNS queries would: the cost per report of a group commit.
func BenchmarkSubmit(b *testing.B) { submitBench(b, false) }

// BenchmarkSubmitOutbox is BenchmarkSubmit with the jetstream outbox on:
// what listing each record for the stream costs the commit.
func BenchmarkSubmitOutbox(b *testing.B) { submitBench(b, true) }

func submitBench(b *testing.B, outbox bool) {
	s, err := store.Open(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if outbox {
		if err := s.EnableOutbox(); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Uint64
	start := time.Now()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range 500 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > uint64(b.N) {
					return
				}
				if out, err := s.Submit(newRecord(b, i, start.Add(time.Duration(i)*time.Millisecond))); out != store.Stored {
					b.Errorf("report %d: outcome %d: %v", i, out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkDecode decodes a real report name.
func BenchmarkDecode(b *testing.B) {
	name := codec.Encode("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75", 1795549302, zone)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.Decode(name, zone); err != nil {
			b.Fatal(err)
		}
	}
}
