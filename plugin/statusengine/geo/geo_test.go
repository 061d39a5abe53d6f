package geo

import (
	"math"
	"net/netip"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
)

var places = []geotest.Place{
	{Network: "198.51.100.0/24", Country: "DE", Name: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405},
	{Network: "203.0.113.0/24", Country: "BR", City: "São Paulo", Lat: -23.55, Lon: -46.63},
	{Network: "2001:db8:1::/48", Country: "JP", Name: "Japan", City: "Tokyo", Lat: 35.68, Lon: 139.69},
}

func TestLocateCity(t *testing.T) {
	l, err := Open(geotest.WriteCity(t, places))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.HasPoints() {
		t.Fatal("a City database must give points")
	}
	tests := []struct {
		name     string
		resolver string
		ecs      string
		want     Location
	}{
		{"resolver only", "198.51.100.7", "", Location{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405, HasPoint: true, Source: "resolver"}},
		{"ecs wins", "198.51.100.7", "203.0.113.0/24", Location{Country: "BR", CountryName: "Brazil", City: "São Paulo", Lat: -23.55, Lon: -46.63, HasPoint: true, Source: "ecs"}},
		{"ipv6 ecs", "192.0.2.1", "2001:db8:1::/56", Location{Country: "JP", CountryName: "Japan", City: "Tokyo", Lat: 35.68, Lon: 139.69, HasPoint: true, Source: "ecs"}},
		{"mapped v4", "::ffff:198.51.100.9", "", Location{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405, HasPoint: true, Source: "resolver"}},
		{"not in database", "192.0.2.1", "", Location{Source: "resolver"}},
		{"private resolver", "10.1.2.3", "", Location{Source: "resolver"}},
		{"loopback", "127.0.0.1", "", Location{Source: "resolver"}},
		{"ipv6 loopback", "::1", "", Location{Source: "resolver"}},
		{"unspecified", "0.0.0.0", "", Location{Source: "resolver"}},
		{"private ecs beats public resolver", "198.51.100.7", "192.168.1.0/24", Location{Source: "ecs"}},
		{"nothing", "", "", Location{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r netip.Addr
			var e netip.Prefix
			if tc.resolver != "" {
				r = netip.MustParseAddr(tc.resolver)
			}
			if tc.ecs != "" {
				e = netip.MustParsePrefix(tc.ecs)
			}
			got := l.Locate(r, e)
			if got.HasPoint {
				got.Lat, got.Lon = round(got.Lat), round(got.Lon)
			}
			if got != tc.want {
				t.Errorf("Locate(%s, %s) = %+v, want %+v", tc.resolver, tc.ecs, got, tc.want)
			}
		})
	}
}

func round(f float64) float64 { return math.Round(f*1000) / 1000 }

func TestLocateFlatCountry(t *testing.T) {
	l, err := Open(geotest.WriteCountry(t, places))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.HasPoints() {
		t.Error("a country database has no points")
	}
	got := l.Locate(netip.MustParseAddr("203.0.113.5"), netip.Prefix{})
	want := Location{Country: "BR", CountryName: "Brazil", Source: "resolver"}
	if got != want {
		t.Errorf("Locate = %+v, want %+v", got, want)
	}
}

func TestDefault(t *testing.T) {
	l, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if l.HasPoints() {
		t.Error("the embedded database is country-level")
	}
	// Long-held, well-known allocations; the embedded data would have to be
	// badly wrong for these to move.
	tests := map[string]string{
		"8.8.8.8":              "US",
		"2001:4860:4860::8888": "US",
		"193.0.6.139":          "NL", // RIPE NCC
		"202.12.29.205":        "AU", // APNIC
	}
	for ip, want := range tests {
		g := l.Locate(netip.MustParseAddr(ip), netip.Prefix{})
		if g.Country != want || g.CountryName == "" || g.Source != "resolver" {
			t.Errorf("Locate(%s) = %+v, want country %s with a name", ip, g, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open("/nonexistent/city.mmdb"); err == nil {
		t.Error("Open of a missing file succeeded")
	}
	if _, err := Open("geo.go"); err == nil {
		t.Error("Open of a file that is not a database succeeded")
	}
}

func TestCountryName(t *testing.T) {
	for code, want := range map[string]string{"DE": "Germany", "US": "United States", "JP": "Japan", "": "", "ZZ": "ZZ", "x1": "x1"} {
		if got := CountryName(code); got != want {
			t.Errorf("CountryName(%q) = %q, want %q", code, got, want)
		}
	}
}
