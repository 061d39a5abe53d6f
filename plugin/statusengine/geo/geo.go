// Package geo geolocates report sources with MaxMind-format (.mmdb)
// databases: an embedded country-level database by default, or a City
// database (GeoLite2-City, DB-IP City Lite, ip-location-db city) for points.
package geo

import (
	_ "embed"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/oschwald/maxminddb-golang/v2"
	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
)

// defaultDB is ip-location-db's geo-whois-asn-country (IPv4 and IPv6),
// country codes only; data CC BY 4.0 by the NRO, see data/NRO_LICENSE.
//
//go:embed data/country.mmdb
var defaultDB []byte

// Attribution is the credit the embedded database's licence asks for.
const Attribution = "IP to country data: ip-location-db geo-whois-asn-country, CC BY 4.0 by the NRO (nro.net)"

// Location is where a report most likely came from, looked up once at
// ingest and stored with the record.
type Location struct {
	Country     string // ISO 3166-1 alpha-2, "" when unknown
	CountryName string
	City        string
	Lat, Lon    float64
	HasPoint    bool   // Lat and Lon are meaningful (a City database was loaded)
	Source      string // SourceECS, SourceResolver, or "" when nothing was looked up
}

// MaxName bounds a country or city name as a Location keeps it; longer
// names from a database are cut at a character boundary.
const MaxName = 96

// Sources of a location: which address was looked up.
const (
	SourceECS      = "ecs"
	SourceResolver = "resolver"
)

// Locator looks addresses up in one database. It is safe for concurrent use.
type Locator struct {
	db     *maxminddb.Reader
	path   string // "" for the embedded database
	points bool   // the database has coordinates
}

// Default returns a Locator over the embedded country database.
func Default() (*Locator, error) {
	db, err := maxminddb.OpenBytes(defaultDB)
	if err != nil {
		return nil, fmt.Errorf("embedded geo database: %w", err)
	}
	return &Locator{db: db}, nil
}

// Open returns a Locator over the database in file path. A database whose
// type names a city, or whose first records carry coordinates, gives points.
func Open(path string) (*Locator, error) {
	db, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("geo database %q: %w", path, err)
	}
	l := &Locator{db: db, path: path}
	l.points = strings.Contains(strings.ToLower(db.Metadata.DatabaseType), "city")
	return l, nil
}

// Close releases the database (unmaps the file).
func (l *Locator) Close() error { return l.db.Close() }

// HasPoints tells whether the database is a City database.
func (l *Locator) HasPoints() bool { return l.points }

// Path is the database file, "" for the embedded one.
func (l *Locator) Path() string { return l.path }

// record holds the fields of both layouts in use: MaxMind/DB-IP GeoIP2
// (nested country/city/location maps) and ip-location-db (flat fields).
type record struct {
	Country struct {
		ISOCode string            `maxminddb:"iso_code"`
		Names   map[string]string `maxminddb:"names"`
	} `maxminddb:"country"`
	// City is {"names": {...}} in GeoIP2 layouts, a plain string in ip-location-db's.
	City     any `maxminddb:"city"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`

	CountryCode string   `maxminddb:"country_code"`
	Latitude    *float64 `maxminddb:"latitude"`
	Longitude   *float64 `maxminddb:"longitude"`
}

// Locate implements statusengine.Locator: the ECS address when the resolver
// sent one, else the resolver's. Source says which address was used even when
// it is private or not in the database; it is "" only when there was none.
func (l *Locator) Locate(resolver netip.Addr, ecs netip.Prefix) Location {
	var g Location
	addr := resolver
	switch {
	case ecs.IsValid():
		addr, g.Source = ecs.Addr(), SourceECS
	case resolver.IsValid():
		g.Source = SourceResolver
	default:
		return g
	}
	addr = addr.Unmap()
	if !Public(addr) {
		return g
	}
	var rec record
	if err := l.db.Lookup(addr).Decode(&rec); err != nil {
		return g
	}
	g.Country = strings.ToUpper(rec.Country.ISOCode)
	if g.Country == "" {
		g.Country = strings.ToUpper(rec.CountryCode)
	}
	if len(g.Country) != 2 {
		g.Country = ""
		return g
	}
	if !upperASCII(g.Country) {
		g.Country = ""
		return g
	}
	g.CountryName = CleanName(rec.Country.Names["en"])
	if g.CountryName == "" {
		g.CountryName = CleanName(CountryName(g.Country))
	}
	switch c := rec.City.(type) {
	case string:
		g.City = c
	case map[string]any:
		if names, ok := c["names"].(map[string]any); ok {
			g.City, _ = names["en"].(string)
		}
	}
	g.City = CleanName(g.City)
	lat, lon := rec.Location.Latitude, rec.Location.Longitude
	if lat == nil || lon == nil {
		lat, lon = rec.Latitude, rec.Longitude
	}
	if lat != nil && lon != nil && *lat >= -90 && *lat <= 90 && *lon >= -180 && *lon <= 180 {
		g.Lat, g.Lon, g.HasPoint = *lat, *lon, true
	}
	return g
}

func upperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// CleanName keeps a database's name within what a stored record may hold:
// printable, valid UTF-8, at most MaxName bytes cut at a character boundary.
func CleanName(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > MaxName {
		s = s[:MaxName]
		for !utf8.ValidString(s) { // a character cut in two at the end
			s = s[:len(s)-1]
		}
	}
	return s
}

// Public tells whether a is worth looking up: not private, loopback,
// link-local, multicast, unspecified or otherwise special-use.
func Public(a netip.Addr) bool {
	if !a.IsValid() || a.IsPrivate() || a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range special {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// special are the non-private reserved ranges a resolver can still appear
// from in tests and labs (documentation nets stay public: tests use them).
var special = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("240.0.0.0/4"),
}

var regionNames = display.English.Regions()

// CountryName is the English name of an ISO 3166-1 alpha-2 code, or the code
// itself when it is not one.
func CountryName(code string) string {
	if code == "" {
		return ""
	}
	r, err := language.ParseRegion(code)
	if err != nil || !r.IsCountry() {
		return code
	}
	if n := regionNames.Name(r); n != "" {
		return n
	}
	return code
}
