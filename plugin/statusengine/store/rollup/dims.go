package rollup

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// Dimension is a field summaries break reports and installations down by.
type Dimension byte

// Dimensions. All but country are fields of the build (the beacon head),
// so every installation has exactly one value of each.
const (
	DimModsec   Dimension = 'm'
	DimPlatform Dimension = 'p' // server product without version: Apache, nginx, IIS
	DimServer   Dimension = 's' // product/version, without the comment: Apache/2.4.71
	DimAPR      Dimension = 'a' // loaded version, else compiled
	DimPCRE     Dimension = 'c' // loaded version, else compiled (PCRE2 builds send no loaded)
	DimLua      Dimension = 'l'
	DimLibxml   Dimension = 'x'
	DimCountry  Dimension = 'C' // ISO code, "" when unknown
	// DimCombo counts the installations of each version combination,
	// keyed by ComboKey: for readers that need the combinations step by
	// step (exposure's trend). No public parameter names it.
	DimCombo Dimension = 'k'
)

// BuildDims are the dimensions that are fields of the build.
var BuildDims = []Dimension{DimModsec, DimPlatform, DimServer, DimAPR, DimPCRE, DimLua, DimLibxml}

// Combo is one combination of versions seen together: the build's
// dimensions but the platform.
type Combo struct {
	Modsec, Server, APR, PCRE, Lua, Libxml string
}

// Point is a map point: a location's coordinates rounded to 0.1°.
type Point struct {
	Lat, Lon float64
}

// Platform is the server product without its version: "Apache/2.4.71
// (Debian)" gives "Apache", "Microsoft-IIS/10.0" and "IIS" give "IIS".
func Platform(server string) string {
	p := server
	if i := strings.IndexAny(p, "/ "); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimPrefix(p, "Microsoft-")
	if p == "" {
		return server
	}
	return p
}

// ServerVersion is the server signature without its trailing comment:
// "Apache/2.4.71 (Debian)" gives "Apache/2.4.71".
func ServerVersion(server string) string {
	if i := strings.IndexByte(server, ' '); i > 0 {
		return server[:i]
	}
	return server
}

func loadedElseCompiled(loaded, compiled string) string {
	if loaded != "" {
		return loaded
	}
	return compiled
}

// BuildValues are the values of BuildDims for one report's fields.
type BuildValues [7]string

// ValuesOf is rep's values of BuildDims.
func ValuesOf(rep *codec.Report) BuildValues {
	apr, pcre := loadedElseCompiled(rep.APRLoaded, rep.APRCompiled), loadedElseCompiled(rep.PCRELoaded, rep.PCRECompiled)
	return BuildValues{rep.Modsec, Platform(rep.Server), ServerVersion(rep.Server), apr, pcre, rep.Lua, rep.Libxml}
}

// Combo is the version combination of a build's values.
func (v *BuildValues) Combo() Combo {
	return Combo{Modsec: v[0], Server: v[2], APR: v[3], PCRE: v[4], Lua: v[5], Libxml: v[6]}
}

// ComboOf is the version combination of rec.
func ComboOf(rec *record.Record) Combo {
	v := ValuesOf(&rec.Report)
	return v.Combo()
}

// Of is v's value of dimension d: ComboKey of its combination for
// DimCombo, "" for a dimension not in BuildDims.
func (v *BuildValues) Of(d Dimension) string {
	if d == DimCombo {
		return ComboKey(v.Combo())
	}
	for i, bd := range BuildDims {
		if bd == d {
			return v[i]
		}
	}
	return ""
}

// DimValue is the value of dimension d for rec, as summaries count it.
func DimValue(rec *record.Record, d Dimension) string {
	if d == DimCountry {
		return rec.Geo.Country
	}
	v := ValuesOf(&rec.Report)
	return v.Of(d)
}

// PointOf is the map point of a location; false without one.
func PointOf(g *geo.Location) (Point, bool) {
	if !g.HasPoint {
		return Point{}, false
	}
	return Point{round1(g.Lat), round1(g.Lon)}, true
}

// PointKey is the rollups' key of a location's map point, "" without one.
func PointKey(g *geo.Location) string {
	p, ok := PointOf(g)
	if !ok {
		return ""
	}
	return strconv.FormatFloat(p.Lat, 'f', 1, 64) + "," + strconv.FormatFloat(p.Lon, 'f', 1, 64)
}

// ParsePoint reads a key of PointKey.
func ParsePoint(s string) (Point, bool) {
	lat, lon, ok := strings.Cut(s, ",")
	la, err1 := strconv.ParseFloat(lat, 64)
	lo, err2 := strconv.ParseFloat(lon, 64)
	return Point{la, lo}, ok && err1 == nil && err2 == nil
}

func round1(f float64) float64 {
	r := math.Round(f*10) / 10
	if r == 0 {
		return 0 // no "-0.0"
	}
	return r
}

// comboSep joins a Combo's fields in ComboKey: beacons are printable
// ASCII, so no field holds it.
const comboSep = "\x1f"

// ComboKey is c as one string, the value of DimCombo.
func ComboKey(c Combo) string {
	return strings.Join([]string{c.Modsec, c.Server, c.APR, c.PCRE, c.Lua, c.Libxml}, comboSep)
}

// ParseComboKey reads a ComboKey back.
func ParseComboKey(k string) (Combo, bool) {
	f := strings.Split(k, comboSep)
	if len(f) != 6 {
		return Combo{}, false
	}
	return Combo{Modsec: f[0], Server: f[1], APR: f[2], PCRE: f[3], Lua: f[4], Libxml: f[5]}, true
}

// A report of a zone of a custom schema counts in a period's Countries and
// Points under its zone: a NUL, the zone's number in the zones dictionary
// (uvarint), then the country or point. ModSecurity's keys are printable,
// so its entries, and every file before schemas, are as they were, and a
// summary of either kind counts its own reports and installations per
// country and point exactly.

// ZoneGeoKey is the key of value v (a country or a point key) for zone
// number zone of a custom schema; "" when it would not fit a period's
// value bound (a zone number past 2^21).
func ZoneGeoKey(zone uint32, v string) string {
	var b [maxValue]byte
	b[0] = 0
	n := 1 + binary.PutUvarint(b[1:6], uint64(zone))
	if n+len(v) > maxValue || zone == 0 {
		return ""
	}
	return string(b[:n]) + v
}

// SplitGeoKey cuts a Countries or Points key into its zone number (0 for
// ModSecurity's zones) and value; ok is false for a key that is neither.
func SplitGeoKey(k string) (zone uint32, v string, ok bool) {
	if k == "" || k[0] != 0 {
		return 0, k, true
	}
	z, n := binary.Uvarint([]byte(k[1:]))
	if n <= 0 || z == 0 || z > 1<<32-1 {
		return 0, "", false
	}
	return uint32(z), k[1+n:], true
}
