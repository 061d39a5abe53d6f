package advisory

import (
	"strings"
)

// Field is a version field of the built-in ModSecurity beacon: the
// dimensions summaries break installations down by (store/rollup/dims.go).
type Field string

// Fields of the built-in schema an advisory can affect.
const (
	FieldModsec Field = "modsec" // rollup.DimModsec: "2.9.7"
	FieldServer Field = "server" // rollup.DimServer: "Apache/2.4.62" (the comment, "(Debian)", is not kept)
	FieldPCRE   Field = "pcre"   // rollup.DimPCRE: "8.45 2021-06-15", "10.42"
	FieldLibxml Field = "libxml" // rollup.DimLibxml: "2.9.14"
	FieldLua    Field = "lua"    // rollup.DimLua: "Lua 5.1"
	FieldAPR    Field = "apr"    // rollup.DimAPR: "1.7.0"
)

// Mapping maps an OSV affected package to a field, and tells how to read the
// field's value as a version of that package.
type Mapping struct {
	// Names are the package names (OSV affected[].package.name, compared
	// without case; the ecosystem is not looked at) that mean this package.
	Names []string
	Field Field
	// Product, for the server field, is the product the signature must
	// name before its "/": "Apache" for Apache httpd. A server of another
	// product is not this package.
	Product string
	// Prefix is a word the value starts with, dropped: "Lua" of "Lua 5.1".
	Prefix string
	// MinMajor and MaxMajor, when not zero, bound the version's first
	// number: pcre (8.x) and pcre2 (10.x) share the pcre field.
	MinMajor, MaxMajor uint32
}

// Packages is the mapping table: every package an advisory may name, and
// the field it maps to. docs/exposure.md shows it; a later step maps a
// zone's own schema fields the same way.
var Packages = []Mapping{
	{Names: []string{"modsecurity", "mod_security", "mod_security2", "modsecurity-apache", "libapache2-mod-security2"}, Field: FieldModsec},
	{Names: []string{"apache http server", "apache httpd", "httpd", "apache2"}, Field: FieldServer, Product: "Apache"},
	{Names: []string{"pcre", "pcre3"}, Field: FieldPCRE, MaxMajor: 9},
	{Names: []string{"pcre2"}, Field: FieldPCRE, MinMajor: 10},
	{Names: []string{"libxml2"}, Field: FieldLibxml},
	{Names: []string{"lua", "lua5.1", "lua5.2", "lua5.3", "lua5.4"}, Field: FieldLua, Prefix: "Lua"},
	{Names: []string{"apr", "libapr1"}, Field: FieldAPR},
}

// mappingOf is the mapping of an OSV package name; nil when the table does
// not name it.
func mappingOf(name string) *Mapping {
	name = strings.ToLower(strings.TrimSpace(name))
	for i := range Packages {
		for _, n := range Packages[i].Names {
			if n == name {
				return &Packages[i]
			}
		}
	}
	return nil
}

// Extract reads the version of m's package in a field's value, as the
// summaries hold it; false when the value names another product or holds no
// numeric dotted version (unknown: never affected).
func (m *Mapping) Extract(value string) (Version, bool) {
	s := strings.TrimSpace(value)
	if m.Product != "" {
		product, rest, ok := strings.Cut(s, "/")
		if !ok || !strings.EqualFold(product, m.Product) {
			return Version{}, false
		}
		s = rest
	}
	if m.Prefix != "" {
		if len(s) < len(m.Prefix) || !strings.EqualFold(s[:len(m.Prefix)], m.Prefix) {
			return Version{}, false
		}
		s = strings.TrimSpace(s[len(m.Prefix):])
	}
	if i := strings.IndexAny(s, " \t("); i >= 0 {
		s = s[:i] // "8.45 2021-06-15", "2.4.62 (Debian)"
	}
	v, ok := ParseVersion(s)
	if !ok || (m.MinMajor != 0 && v.Major() < m.MinMajor) || (m.MaxMajor != 0 && v.Major() > m.MaxMajor) {
		return Version{}, false
	}
	return v, true
}

// Holds tells whether value is a value of m's package at all, whatever its
// version: for the server field, a signature of m's product ("Apache",
// "Apache/2.4.x-dev"); for Lua, "Lua …"; for the others, any value. A value
// of the package that holds no version (Extract fails) is unknown.
func (m *Mapping) Holds(value string) bool {
	s := strings.TrimSpace(value)
	switch {
	case m.Product != "":
		product := s
		if i := strings.IndexAny(s, "/ "); i >= 0 {
			product = s[:i]
		}
		return strings.EqualFold(product, m.Product)
	case m.Prefix != "":
		return len(s) >= len(m.Prefix) && strings.EqualFold(s[:len(m.Prefix)], m.Prefix)
	}
	return s != ""
}
