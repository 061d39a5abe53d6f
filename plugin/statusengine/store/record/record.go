package record

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// Record is one stored report.
type Record struct {
	// Key orders records by receive time: unix nanoseconds, unique. The
	// writer assigns it; live reports get increasing keys in commit order.
	Key      uint64
	Received time.Time
	Zone     string
	Resolver netip.Addr
	// ECS is the EDNS Client Subnet the resolver sent; invalid when absent.
	ECS netip.Prefix
	// Report comes from the codec (Decode or ParseBeacon): its fields obey
	// the beacon grammar. In a zone of a custom schema it is of
	// codec.FormatSchema: the beacon, its id field and the epoch.
	Report codec.Report
	Geo    geo.Location
	// LimitNet is the network the per-source limit charges: the resolver's
	// /24 or /48. Not stored (the addresses may be stored truncated or not at
	// all); imported records have none.
	LimitNet netip.Prefix
}

// Limits of what a record may hold: what live ingest can produce (the
// codec's grammar, the Corefile's zones, a geolocation database), so that a
// hostile import can store nothing live ingest could not.
const (
	// MinReceived is the earliest receive time: before the first
	// SecStatusEngine release, with room for imported tinydns logs.
	MinReceived = 946684800 // 2000-01-01
	// MaxFuture is how far past now a receive time may lie (clock skew
	// between servers that replicate).
	MaxFuture = 24 * time.Hour
	// MaxEpoch is the largest client epoch: the codec reads at most 12 digits.
	MaxEpoch = 999999999999
)

// Validation errors; each names the field.
var (
	errReceived = errors.New("received time out of range")
	errEpoch    = errors.New("client epoch out of range")
	errZone     = errors.New("zone is not a domain name")
	errReport   = errors.New("report was not decoded by the codec")
	errResolver = errors.New("resolver address invalid")
	errECS      = errors.New("ecs prefix invalid")
)

// Validate checks that rec holds only what live ingest can produce, its
// report what the zone's schema in sc decodes. Every record passes here
// once, in the writer, before anything of it is stored: live reports,
// imports and replicated records alike.
func (rec *Record) Validate(now time.Time, sc *Schemas) error {
	if s := rec.Received.Unix(); s < MinReceived || rec.Received.After(now.Add(MaxFuture)) {
		return errReceived
	}
	rep := &rec.Report
	if rep.HasEpoch && (rep.Epoch < 0 || rep.Epoch > MaxEpoch) {
		return errEpoch
	}
	if err := ValidZone(rec.Zone); err != nil {
		return err
	}
	if err := sc.validReport(rec.Zone, rep); err != nil {
		return err
	}
	if rec.Resolver.IsValid() && (rec.Resolver.Is4In6() || rec.Resolver.Zone() != "") {
		return errResolver
	}
	if rec.ECS.IsValid() && (rec.ECS.Addr().Is4In6() || rec.ECS.Addr().Zone() != "" || rec.ECS != rec.ECS.Masked()) {
		return errECS
	}
	return validLocation(&rec.Geo)
}

// maxZone is the longest domain name in presentation form with its dot.
const maxZone = 254

// zonesOK remembers zones found valid: every record carries one of a few.
var zonesOK sync.Map // string -> struct{}

// ValidZone says why z cannot be a record's zone: a lower-case domain
// name with its final dot, at most maxZone bytes.
func ValidZone(z string) error {
	if _, ok := zonesOK.Load(z); ok {
		return nil
	}
	if err := checkZone(z); err != nil {
		return err
	}
	var n int
	zonesOK.Range(func(any, any) bool { n++; return n < 64 })
	if n < 64 { // bounded: a flood of zones from imports is checked each time
		zonesOK.Store(z, struct{}{})
	}
	return nil
}

func checkZone(z string) error {
	if z == "" || len(z) > maxZone || !dns.IsFqdn(z) || strings.ToLower(z) != z {
		return errZone
	}
	if _, ok := dns.IsDomainName(z); !ok {
		return errZone
	}
	for i := 0; i < len(z); i++ {
		if c := z[i]; c <= ' ' || c > '~' || c == '\\' {
			return errZone
		}
	}
	return nil
}

// Lengths of a location's names: what geo.Locate keeps of a database's.
const (
	maxCountryName = geo.MaxName
	maxCity        = geo.MaxName
)

func validLocation(g *geo.Location) error {
	if c := g.Country; c != "" && (len(c) != 2 || !upper(c[0]) || !upper(c[1])) {
		return fmt.Errorf("geo country %.12q is not two capital letters", c)
	}
	if !validName(g.CountryName, maxCountryName) || !validName(g.City, maxCity) {
		return errors.New("geo name too long or not printable UTF-8")
	}
	if g.HasPoint {
		if !(g.Lat >= -90 && g.Lat <= 90 && g.Lon >= -180 && g.Lon <= 180) || math.IsNaN(g.Lat) || math.IsNaN(g.Lon) {
			return errors.New("geo point out of range")
		}
	} else if g.Lat != 0 || g.Lon != 0 {
		return errors.New("geo coordinates without a point")
	}
	switch g.Source {
	case "", geo.SourceECS, geo.SourceResolver:
		return nil
	}
	return errors.New("geo source is not ecs or resolver")
}

func upper(c byte) bool { return c >= 'A' && c <= 'Z' }

func validName(s string, max int) bool {
	if len(s) > max || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
