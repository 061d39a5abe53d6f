// Package codec encodes and decodes the DNS names that ModSecurity's
// SecStatusEngine resolves to report its versions: the beacon
// "modsec,server,apr_c/apr_l,pcre_c/pcre_l,lua,libxml,id" in unpadded
// base32, split into labels, followed by an optional client epoch label and
// the status zone.
//
// Other software reports the same way with a beacon of its own: a Schema
// names its comma-separated fields and their roles (version, platform,
// installation id). ModSecurity's beacon is the built-in schema, decoded
// with its field grammars by Decode into a Report exactly as before
// schemas; a custom schema's beacons are decoded by DecodeSchema into a
// SchemaReport, the field values by name, every field printable ASCII
// without a comma, at most MaxFieldLen (64) bytes, at most MaxFields (16)
// fields, the first (with min_fields, the head) at most MaxFirstFieldLen
// (19) bytes so that no tail of a name that a QNAME-minimising resolver
// sends decodes as a report. The comment at the top of schema.go has the
// whole rule set and the reasons.
package codec

import "strings"

// Format tells which beacon layout a report used.
type Format uint8

const (
	// FormatCurrent has 7 fields: modsec,server,apr_c/apr_l,pcre_c/pcre_l,lua,libxml,id.
	FormatCurrent Format = 1
	// Format2014 is the 2014 beta: lua and libxml are "compiled/loaded" pairs too.
	Format2014 Format = 2
	// FormatSchema is a report of a custom schema (SchemaReport.AsReport):
	// only Beacon, ID and the epoch are set; the zone's Schema reads the
	// other fields from Beacon.
	FormatSchema Format = 3
)

// maxBeacon bounds the plaintext; real beacons are under 200 bytes, and a
// DNS name cannot carry more than about 158.
const maxBeacon = 400

// Report is one decoded status report. Field values are substrings of
// Beacon trimmed of surrounding spaces; a value the client could not
// determine is the literal "(null)" it sent.
type Report struct {
	Beacon                   string // the plaintext exactly as sent
	Format                   Format
	Modsec                   string
	Server                   string
	APRCompiled, APRLoaded   string
	PCRECompiled, PCRELoaded string
	Lua, LuaLoaded           string // LuaLoaded only set by Format2014
	Libxml, LibxmlLoaded     string // LibxmlLoaded only set by Format2014
	ID                       string
	Epoch                    int64 // client epoch label; 0 when the name has none
	HasEpoch                 bool
}

// ParseBeacon splits a beacon plaintext into its fields and checks each
// against its grammar. Epoch and HasEpoch are left unset.
func ParseBeacon(beacon string) (Report, error) {
	var r Report
	if err := parseBeacon(&r, beacon); err != nil {
		return Report{}, err
	}
	return r, nil
}

// parseBeacon is ParseBeacon into *r (see DecodeTo); on an error *r holds
// part of the fields.
func parseBeacon(r *Report, beacon string) error {
	if len(beacon) > maxBeacon {
		return errBeaconLong
	}
	for i := 0; i < len(beacon); i++ {
		if c := beacon[i]; c < 0x20 || c > 0x7e {
			return errBeaconBytes
		}
	}

	// ModSecurity 2.8.0 printed the server signature uncut, and signatures
	// may hold commas, so take modsec from the left, the five fixed fields
	// from the right, and leave whatever is in between to the server.
	first := strings.IndexByte(beacon, ',')
	if first < 0 {
		return ErrFieldCount
	}
	var comma [5]int // comma[0] precedes id, comma[4] precedes apr
	end := len(beacon)
	for k := range comma {
		i := strings.LastIndexByte(beacon[:end], ',')
		if i <= first {
			return ErrFieldCount
		}
		comma[k], end = i, i
	}

	*r = Report{Beacon: beacon, Format: FormatCurrent}
	r.Modsec = strings.TrimSpace(beacon[:first])
	if !validModsec(r.Modsec) {
		return errModsec
	}
	r.Server = strings.TrimSpace(beacon[first+1 : comma[4]])
	if r.Server == "" {
		return errServer
	}
	var ok bool
	if r.APRCompiled, r.APRLoaded, ok = versionPair(beacon[comma[4]+1:comma[3]], false); !ok {
		return errAPR
	}
	// PCRE2 builds leave the loaded version empty ("10.42/").
	if r.PCRECompiled, r.PCRELoaded, ok = versionPair(beacon[comma[3]+1:comma[2]], true); !ok {
		return errPCRE
	}

	lua := beacon[comma[2]+1 : comma[1]]
	libxml := beacon[comma[1]+1 : comma[0]]
	if c, l, found := strings.Cut(libxml, "/"); found {
		r.Format = Format2014
		r.Libxml, r.LibxmlLoaded = strings.TrimSpace(c), strings.TrimSpace(l)
		if !validVersion(r.Libxml) || !validVersion(r.LibxmlLoaded) {
			return errLibxml
		}
		c, l, found = strings.Cut(lua, "/")
		r.Lua, r.LuaLoaded = strings.TrimSpace(c), strings.TrimSpace(l)
		if !found || !validLua(r.Lua) || !validLua(r.LuaLoaded) {
			return errLua
		}
	} else {
		r.Libxml = strings.TrimSpace(libxml)
		if !validVersion(r.Libxml) {
			return errLibxml
		}
		r.Lua = strings.TrimSpace(lua)
		if !validLua(r.Lua) {
			return errLua
		}
	}

	r.ID = strings.TrimSpace(beacon[comma[0]+1:])
	if !validID(r.ID) {
		return errID
	}
	return nil
}

// versionPair splits "compiled/loaded" at its only slash. PCRE1 pads the
// compiled half (" 8.32 /8.32 2012-11-30"), hence the trimming.
func versionPair(s string, emptyLoaded bool) (compiled, loaded string, ok bool) {
	i := strings.IndexByte(s, '/')
	if i < 0 || strings.IndexByte(s[i+1:], '/') >= 0 {
		return "", "", false
	}
	compiled, loaded = strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
	if !validVersion(compiled) {
		return "", "", false
	}
	if !validVersion(loaded) && !(emptyLoaded && loaded == "") {
		return "", "", false
	}
	return compiled, loaded, true
}

const null = "(null)"

func validVersion(s string) bool {
	return s == null || (s != "" && isDigit(s[0]))
}

func validLua(s string) bool {
	return s == null || strings.HasPrefix(s, "Lua ")
}

func validModsec(s string) bool {
	if s == "" || len(s) > 25 || !isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) && !isAlpha(c) && c != '.' && c != '+' && c != '_' && c != '~' && c != '-' {
			return false
		}
	}
	return true
}

// validID accepts the full SHA-1, the single byte that an overlapping
// sprintf leaves on some C libraries, and the client's failure text.
func validID(s string) bool {
	if s == noID {
		return true
	}
	return (len(s) == 2 || len(s) == 40) && isLowerHex(s)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// SplitID cuts a beacon into its head (every field but the id, without the
// comma before the id) and its id field as sent. Installations of one build
// share the head; Join puts the beacon back together byte for byte.
func SplitID(beacon string) (head, id string) {
	i := strings.LastIndexByte(beacon, ',')
	if i < 0 {
		return "", beacon
	}
	return beacon[:i], beacon[i+1:]
}

// Join is the inverse of SplitID.
func Join(head, id string) string { return head + "," + id }

// ParseHead parses a beacon head (see SplitID): the fields of a report but
// its id, which is left empty, as are Beacon and the epoch.
func ParseHead(head string) (Report, error) {
	r, err := ParseBeacon(Join(head, noID))
	r.ID, r.Beacon = "", ""
	return r, err
}
