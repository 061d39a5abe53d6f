// Package geotest writes small MaxMind-format databases for tests.
package geotest

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Place is one network of a test database.
type Place struct {
	Network  string // CIDR
	Country  string // ISO code
	Name     string // English country name, "" to leave it out
	City     string
	Lat, Lon float64
}

// WriteCity writes a GeoIP2-City-layout database holding places to a file in
// a temporary directory and returns its path.
func WriteCity(t testing.TB, places []Place) string {
	t.Helper()
	return write(t, "GeoLite2-City", places, func(p Place) mmdbtype.Map {
		country := mmdbtype.Map{"iso_code": mmdbtype.String(p.Country)}
		if p.Name != "" {
			country["names"] = mmdbtype.Map{"en": mmdbtype.String(p.Name)}
		}
		return mmdbtype.Map{
			"country":  country,
			"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(p.City)}},
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(p.Lat), "longitude": mmdbtype.Float64(p.Lon)},
		}
	})
}

// WriteCountry writes an ip-location-db-layout country database (a flat
// country_code field, as the embedded one has).
func WriteCountry(t testing.TB, places []Place) string {
	t.Helper()
	return write(t, "geo-whois-asn-country", places, func(p Place) mmdbtype.Map {
		return mmdbtype.Map{"country_code": mmdbtype.String(p.Country)}
	})
}

func write(t testing.TB, dbType string, places []Place, value func(Place) mmdbtype.Map) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: dbType, IncludeReservedNetworks: true, RecordSize: 28})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range places {
		_, network, err := net.ParseCIDR(p.Network)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, value(p)); err != nil {
			t.Fatalf("insert %s: %v", p.Network, err)
		}
	}
	path := filepath.Join(t.TempDir(), dbType+".mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	return path
}
