package tinydns

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

func TestParseLine(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		line string
		want Entry
		err  error
	}{
		{
			line: "@400000006b069f361852d844 7f000001:d75d:78f3 + 0001 1795549302.status.modsecurity.org",
			want: Entry{Time: time.Unix(0x6b069f36-10, 0x1852d844).UTC(), HasTime: true, Client: netip.MustParseAddr("127.0.0.1"),
				Port: 0xd75d, ID: 0x78f3, Result: '+', QType: 1, Name: "1795549302.status.modsecurity.org"},
		},
		{
			line: "c0000235:0035:abcd - 001c www.example.org",
			want: Entry{Client: netip.MustParseAddr("192.0.2.53"), Port: 53, ID: 0xabcd, Result: '-', QType: 28, Name: "www.example.org"},
		},
		{ // tai64nlocal output
			line: "2026-11-25 08:40:54.408215620 7f000001:d75d:78f3 + 0001 x.status.modsecurity.org",
			want: Entry{Time: time.Date(2026, 11, 25, 8, 40, 54, 408215620, utc), HasTime: true, Client: netip.MustParseAddr("127.0.0.1"),
				Port: 0xd75d, ID: 0x78f3, Result: '+', QType: 1, Name: "x.status.modsecurity.org"},
		},
		{ // IPv6 patch: 32 hex digits
			line: "20010db8000000000000000000000053:0035:0001 + 0001 a.b",
			want: Entry{Client: netip.MustParseAddr("2001:db8::53"), Port: 53, ID: 1, Result: '+', QType: 1, Name: "a.b"},
		},
		{ // octal escapes and the root
			line: "7f000001:0035:0001 + 0001 a\\041b.c",
			want: Entry{Client: netip.MustParseAddr("127.0.0.1"), Port: 53, ID: 1, Result: '+', QType: 1, Name: "a!b.c"},
		},
		{line: "7f000001:0035:0001 I 0001 .", want: Entry{Client: netip.MustParseAddr("127.0.0.1"), Port: 53, ID: 1, Result: 'I', QType: 1, Name: "."}},
		{line: "@400000006b069f36165650ac starting tinydns", err: ErrNotQuery},
		{line: "starting tinydns", err: ErrNotQuery},
		{line: "@40000000zzzz9f36165650ac 7f000001:d75d:78f3 + 0001 a", err: ErrMalformed},
		{line: "7f0001:d75d:78f3 + 0001 a", err: ErrMalformed},
		{line: "7f000001:d75d:78f3 + 01 a", err: ErrMalformed},
		{line: "7f000001:d75d:78f3 ++ 0001 a", err: ErrMalformed},
		{line: "7f000001:d75d:78f3 + 0001", err: ErrMalformed},
		{line: "7f000001:0035:0001 + 0001 a\\04", err: ErrMalformed},
		{line: "7f000001:0035:0001 + 0001 a\\999", err: ErrMalformed},
	}
	for _, tc := range tests {
		got, err := ParseLine(tc.line, time.UTC)
		if !errors.Is(err, tc.err) {
			t.Errorf("%q: error %v, want %v", tc.line, err, tc.err)
			continue
		}
		if err == nil && got != tc.want {
			t.Errorf("%q:\n got %+v\nwant %+v", tc.line, got, tc.want)
		}
	}
}

// testdata/current was written by Debian's tinydns through daemontools'
// tai64n (TestRealTinydns with SE_TINYDNS_FIXTURE set).
func TestImportFixture(t *testing.T) {
	st := openStore(t)
	f, err := os.Open("testdata/current")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rejected []int
	stats, err := Import(st, f, Options{Reject: func(line int, text string, err error) { rejected = append(rejected, line) }})
	if err != nil {
		t.Fatal(err)
	}
	if stats != wantStats() {
		t.Errorf("stats = %+v, want %+v", stats, wantStats())
	}
	if len(rejected) != 1 || rejected[0] != 10 {
		t.Errorf("rejected lines %v, want [10]", rejected)
	}
	recs := records(t, st)
	logStart := time.Date(2026, 11, 25, 8, 40, 0, 0, time.UTC)
	beacons := map[string]bool{}
	for _, r := range recs {
		beacons[r.Report.Beacon] = true
		if r.Resolver != netip.MustParseAddr("127.0.0.1") || r.Received.Before(logStart) || r.Received.After(logStart.Add(time.Hour)) {
			t.Errorf("%q: resolver %v received %v; want 127.0.0.1 and the tai64n time", r.Report.Beacon, r.Resolver, r.Received)
		}
		if r.Zone != zone {
			t.Errorf("zone %q", r.Zone)
		}
	}
	for _, b := range []string{realBeacon, nginx40, beta2014, windows} {
		if !beacons[b] {
			t.Errorf("beacon %q not imported", b)
		}
	}

	// Again: nothing new.
	f.Seek(0, 0)
	again, err := Import(st, f, Options{})
	if err != nil || again.Imported != 0 || again.Duplicate != stats.Imported+stats.Duplicate {
		t.Errorf("second import = %+v, %v; want everything duplicate", again, err)
	}
}

// Without timestamps (tinydns's bare output) the time is the client epoch
// label, else the fallback.
func TestImportNoTimestamps(t *testing.T) {
	b, err := os.ReadFile("testdata/current")
	if err != nil {
		t.Fatal(err)
	}
	var bare strings.Builder
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if len(l) > 26 {
			bare.WriteString(l[26:])
		}
	}
	st := openStore(t)
	fallback := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var progress int64
	stats, err := Import(st, strings.NewReader(bare.String()), Options{Fallback: fallback, Progress: func(n int64) { progress = n }})
	if err != nil || stats != wantStats() {
		t.Fatalf("stats = %+v, %v; want %+v", stats, err, wantStats())
	}
	if progress != int64(bare.Len()) {
		t.Errorf("progress ended at %d, want %d", progress, bare.Len())
	}
	for _, r := range records(t, st) {
		want := time.Unix(r.Report.Epoch, 0)
		if !r.Report.HasEpoch {
			want = fallback
		}
		if !r.Received.Equal(want) {
			t.Errorf("%q: received %v, want %v", r.Report.Beacon, r.Received, want)
		}
	}
}

func TestImportZones(t *testing.T) {
	log := "7f000001:0035:0001 + 0001 gixdslrxfraxayldnbss6mrogqxdomja.fbcgkytjmfxcslbrfy3s4mrpgexdolrs.fqytalrugixsytdvmeqdklrrfqzc4ojo.ge2cynzv.1795549302.rpc.atomicorp.com\n"
	tests := []struct {
		zones []string
		want  store.ImportStats
	}{
		{nil, store.ImportStats{Rejected: 1}},
		{[]string{"status.modsecurity.org", "RPC.atomicorp.com"}, store.ImportStats{Imported: 1}},
	}
	for _, tc := range tests {
		st := openStore(t)
		stats, err := Import(st, strings.NewReader(log), Options{Zones: tc.zones})
		if err != nil || stats.ImportStats != tc.want {
			t.Errorf("zones %v: %+v, %v; want %+v", tc.zones, stats, err, tc.want)
		}
	}
}

// Reports are located from the logged resolver address, as at ingest.
func TestImportGeo(t *testing.T) {
	db := geotest.WriteCity(t, []geotest.Place{{Network: "81.2.69.0/24", Country: "GB", Name: "United Kingdom", City: "London", Lat: 51.5, Lon: -0.1}})
	l, err := geo.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	log := "510245a0:0035:0001 + 0001 gixdslrxfraxayldnbss6mrogqxdomja.fbcgkytjmfxcslbrfy3s4mrpgexdolrs.fqytalrugixsytdvmeqdklrrfqzc4ojo.ge2cynzv.1795549302.status.modsecurity.org\n"
	st := openStore(t)
	if _, err := Import(st, strings.NewReader(log), Options{Locate: l.Locate}); err != nil {
		t.Fatal(err)
	}
	recs := records(t, st)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	if g := recs[0].Geo; g.Country != "GB" || g.City != "London" || !g.HasPoint || g.Source != "resolver" || recs[0].Resolver.String() != "81.2.69.160" {
		t.Errorf("geo %+v resolver %v", g, recs[0].Resolver)
	}
}
