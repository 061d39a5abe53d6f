package record

import (
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// testRecord is a live report of a real beacon received at now.
func testRecord(t *testing.T, now time.Time) *Record {
	t.Helper()
	rep, err := codec.ParseBeacon("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75")
	if err != nil {
		t.Fatal(err)
	}
	rep.Epoch, rep.HasEpoch = now.Unix(), true
	return &Record{Received: now, Zone: "status.modsecurity.org.", Resolver: netip.MustParseAddr("192.0.2.53"), Report: rep}
}

func TestValidate(t *testing.T) {
	now := time.Now()
	ok := func() *Record { return testRecord(t, now) }
	tests := []struct {
		name string
		edit func(r *Record)
		ok   bool
	}{
		{"live report", func(r *Record) {}, true},
		{"no epoch", func(r *Record) { r.Report.HasEpoch, r.Report.Epoch = false, 0 }, true},
		{"old import", func(r *Record) { r.Received = time.Unix(1400000000, 0) }, true},
		{"before 2000", func(r *Record) { r.Received = time.Unix(MinReceived-1, 0) }, false},
		{"two days ahead", func(r *Record) { r.Received = now.Add(48 * time.Hour) }, false},
		{"epoch of 13 digits", func(r *Record) { r.Report.Epoch = MaxEpoch + 1 }, false},
		{"negative epoch", func(r *Record) { r.Report.Epoch = -1 }, false},
		{"not decoded", func(r *Record) { r.Report.Format = 0 }, false},
		{"zone without dot", func(r *Record) { r.Zone = "status.modsecurity.org" }, false},
		{"zone upper case", func(r *Record) { r.Zone = "Status.modsecurity.org." }, false},
		{"zone too long", func(r *Record) { r.Zone = strings.Repeat("a.", 130) }, false},
		{"zone with space", func(r *Record) { r.Zone = "a b." }, false},
		{"mapped resolver", func(r *Record) { r.Resolver = netip.MustParseAddr("::ffff:192.0.2.1") }, false},
		{"resolver with zone", func(r *Record) { r.Resolver = netip.MustParseAddr("fe80::1%eth0") }, false},
		{"ecs unmasked", func(r *Record) { r.ECS = netip.MustParsePrefix("198.51.100.7/24") }, false},
		{"ecs", func(r *Record) { r.ECS = netip.MustParsePrefix("198.51.100.0/24") }, true},
		{"country lower", func(r *Record) { r.Geo.Country = "de" }, false},
		{"country 40 KB", func(r *Record) { r.Geo.Country = strings.Repeat("D", 40000) }, false},
		{"city too long", func(r *Record) { r.Geo.City = strings.Repeat("x", geo.MaxName+1) }, false},
		{"city not UTF-8", func(r *Record) { r.Geo.City = "\xff" }, false},
		{"city with newline", func(r *Record) { r.Geo.City = "a\nb" }, false},
		{"city in UTF-8", func(r *Record) { r.Geo.City = "São Paulo" }, true},
		{"lat 91", func(r *Record) { r.Geo.HasPoint, r.Geo.Lat = true, 91 }, false},
		{"lat NaN", func(r *Record) { r.Geo.HasPoint, r.Geo.Lat = true, math.NaN() }, false},
		{"coordinates without point", func(r *Record) { r.Geo.Lat = 1 }, false},
		{"source other", func(r *Record) { r.Geo.Source = "gps" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			tc.edit(r)
			if err := r.Validate(now, nil); (err == nil) != tc.ok {
				t.Errorf("Validate = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// Every location geo.Locate can give passes Validate: CleanName cuts names
// to what a record may hold.
func TestLocationsFromGeoAreValid(t *testing.T) {
	long := strings.Repeat("é", geo.MaxName) // two bytes each
	g := geo.Location{Country: "BR", CountryName: geo.CleanName(long), City: geo.CleanName("a\x00b\n" + long), Source: geo.SourceECS}
	if err := validLocation(&g); err != nil {
		t.Fatal(err)
	}
}
