package store

import (
	"math"
	"strconv"
	"strings"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// Dimension is a field summaries break reports and installations down by.
type Dimension byte

// Dimensions. All but country and point are fields of the build (the beacon
// head), so every installation has exactly one value of each.
const (
	DimModsec   Dimension = 'm'
	DimPlatform Dimension = 'p' // server product without version: Apache, nginx, IIS
	DimServer   Dimension = 's' // product/version, without the comment: Apache/2.4.71
	DimAPR      Dimension = 'a' // loaded version, else compiled
	DimPCRE     Dimension = 'c' // loaded version, else compiled (PCRE2 builds send no loaded)
	DimLua      Dimension = 'l'
	DimLibxml   Dimension = 'x'
	DimCombo    Dimension = 'k' // modsec, server, apr, pcre, lua, libxml joined by NUL
	DimCountry  Dimension = 'C' // ISO code, "" when unknown
	DimPoint    Dimension = 'P' // "lat,lon" rounded to one decimal, only with a City database
)

// BuildDims are the dimensions that are fields of the build.
var BuildDims = []Dimension{DimModsec, DimPlatform, DimServer, DimAPR, DimPCRE, DimLua, DimLibxml, DimCombo}

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

// buildValues are the values of BuildDims for one report's fields.
type buildValues [8]string

func valuesOf(rep *codec.Report) buildValues {
	apr, pcre := loadedElseCompiled(rep.APRLoaded, rep.APRCompiled), loadedElseCompiled(rep.PCRELoaded, rep.PCRECompiled)
	sv := ServerVersion(rep.Server)
	return buildValues{rep.Modsec, Platform(rep.Server), sv, apr, pcre, rep.Lua, rep.Libxml,
		strings.Join([]string{rep.Modsec, sv, apr, pcre, rep.Lua, rep.Libxml}, "\x00")}
}

func (v *buildValues) of(d Dimension) string {
	for i, bd := range BuildDims {
		if bd == d {
			return v[i]
		}
	}
	return ""
}

// DimValue is the value of dimension d for rec, as summaries count it.
func DimValue(rec *Record, d Dimension) string {
	switch d {
	case DimCountry:
		return rec.Geo.Country
	case DimPoint:
		return pointOf(&rec.Geo)
	}
	v := valuesOf(&rec.Report)
	return v.of(d)
}

// pointOf is a location's map point: "lat,lon" rounded to 0.1°.
func pointOf(g *geo.Location) string {
	if !g.HasPoint {
		return ""
	}
	return strconv.FormatFloat(round1(g.Lat), 'f', 1, 64) + "," + strconv.FormatFloat(round1(g.Lon), 'f', 1, 64)
}

func round1(f float64) float64 {
	r := math.Round(f*10) / 10
	if r == 0 {
		return 0 // no "-0.0"
	}
	return r
}
