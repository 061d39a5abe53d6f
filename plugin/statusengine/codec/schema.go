package codec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Schemas: any software can report, not only ModSecurity.
//
// A Schema names the comma-separated fields of a zone's beacon, in order,
// and which of them play the three roles the analytics need: the version
// (compared as versions: latest, adoption, badges), the platform (the
// platform breakdown) and the anonymous installation id. The name side of
// the wire format is the same for every schema: base32 labels, an optional
// epoch label, the zone (Encode, splitName).
//
// ModSecurity is the built-in schema, the default of every zone: its
// fields are checked by ModSecurity's own grammars, both layouts (current
// and 2014 beta) decode, the server signature may hold commas (2.8.0), and
// Decode, DecodeTo and Report are exactly what they were before schemas.
//
// A custom schema (NewSchema) has no grammar per field, only bounds that
// hold for every field of every schema:
//   - printable ASCII (0x20-0x7e) without the separator, a comma;
//   - at most MaxFieldLen (64) bytes, and the first field at most
//     MaxFirstFieldLen (19), see below (with min_fields, the head of the
//     beacon); empty and "(null)" are values like any other (a client that
//     has nothing to say sends one of them);
//   - between MinFields and len(Fields) fields (MinFields defaults to
//     len(Fields)): fewer or more is ErrFieldCount, a field out of bounds
//     is ErrFieldGrammar naming the field; both count as malformed;
//   - at most MaxFields (16) fields, named by plain identifiers.
//
// Values are the fields trimmed of surrounding spaces, as ModSecurity's
// are; Beacon keeps the text exactly as sent, which is what is stored.
//
// Why the first field is short: resolvers that minimise QNAMEs (RFC 9156)
// send the tails of a report name first, and with 32-character labels each
// tail starts 20, 40, ... bytes into the beacon. A tail that still held
// every comma would decode as a report of its own, its first field cut.
// With a first field of at most 19 bytes no tail holds every comma, so no
// tail is ever taken for a report. (ModSecurity's schema gets the same
// guarantee from its field grammars.) With MinFields below len(Fields) a
// tail that lost k fields may still hold enough of them, so the bound is on
// the head: a beacon of n fields keeps its first n-MinFields+1 fields,
// with the commas between them, within MaxFirstFieldLen bytes; the 20
// bytes of a tail's cut then take at least n-MinFields+1 commas, leaving
// fewer than MinFields fields. Clients must therefore use labels of
// 32 characters, as the client package, the operator tool and the shell
// line of docs/schemas.md do (30, as ModSecurity's Windows builds, works
// too: its tails start off a byte boundary).
//
// A name with an epoch label whose beacon has too few fields cannot be told
// from such a tail: it counts as partial (ErrPartial), never stored.
//
// A decoded report of a custom schema is a SchemaReport: the beacon, the
// field values in order, and the epoch, the values readable by field name.
// ModSecurity's schema gives a SchemaReport too (ParseSchema, DecodeSchema),
// whose values are the seven fields as printed (pairs as "compiled/loaded")
// beside today's Report, which is what the store keeps. The store keeps a
// custom schema's report as a Report of FormatSchema (AsReport): the
// beacon, the id field and the epoch; the zone's schema reads the rest.

// Bounds of a custom schema and of its beacons' fields.
const (
	// MaxFields bounds the number of fields of a schema.
	MaxFields = 16
	// MaxFieldLen bounds each field of a beacon, in bytes (surrounding
	// spaces included).
	MaxFieldLen = 64
	// MaxFirstFieldLen bounds a custom schema's first field (with
	// min_fields, its head: see above), in bytes, so that no QNAME
	// minimisation tail decodes as a report.
	MaxFirstFieldLen = 19
	// MaxFieldName bounds the length of a field's name.
	MaxFieldName = 32
	// Separator separates the fields of a beacon.
	Separator = ','
)

// ModSecurityName is the name of the built-in schema, as the Corefile says it.
const ModSecurityName = "modsecurity"

// reservedNames are field names a custom schema may not take: the API
// groups reports by them beside the schema's fields, or names these
// properties of every record.
var reservedNames = []string{"beacon", "country", "ecs", "epoch", "network", "received", "resolver", "zone"}

// Schema describes the beacon of a zone. The zero value is not usable:
// take ModSecurity or NewSchema. A Schema is immutable once made and safe
// for concurrent use.
type Schema struct {
	name      string // ModSecurityName, or "custom"
	fields    []string
	min       int
	version   int // index in fields, -1: none
	platform  int
	id        int
	modsec    bool
	errCount  error   // preallocated: rejecting garbage does not allocate
	errFields []error // one per field
	errHead   []error // by the number of fields of the head, from 2
}

// SchemaSpec is what a Corefile's schema block says.
type SchemaSpec struct {
	Fields []string // names, in beacon order
	// MinFields is the fewest fields a beacon may carry (the missing ones
	// at the end read as absent): fields appended on a reload leave older
	// clients valid. 0 means len(Fields).
	MinFields int
	// Field names of the roles. Version and Platform may be empty; ID may
	// not.
	Version, Platform, ID string
}

// ModSecurity is the built-in schema: ModSecurity's beacon, both layouts,
// with its field grammars (ParseBeacon). Its field names are the ones its
// grammar errors use.
var ModSecurity = &Schema{
	name:     ModSecurityName,
	fields:   []string{"modsec", "server", "apr", "pcre", "lua", "libxml", "id"},
	min:      7,
	version:  0,
	platform: 1,
	id:       6,
	modsec:   true,
}

// Errors of NewSchema and CheckFieldNames: every error they return
// matches one of these with errors.Is, and its message says only what is
// wrong (the caller names the property).
var (
	ErrSchemaFields = errors.New("bad schema fields")
	ErrSchemaRole   = errors.New("bad schema role")
)

// schemaError is a NewSchema error: its message, matching its kind.
type schemaError struct {
	kind error
	msg  string
}

func (e *schemaError) Error() string { return e.msg }
func (e *schemaError) Unwrap() error { return e.kind }

func fieldsErr(format string, a ...any) error {
	return &schemaError{ErrSchemaFields, fmt.Sprintf(format, a...)}
}

func roleErr(format string, a ...any) error {
	return &schemaError{ErrSchemaRole, fmt.Sprintf(format, a...)}
}

// NewSchema checks spec and makes a custom schema of it.
func NewSchema(spec SchemaSpec) (*Schema, error) {
	if err := CheckFieldNames(spec.Fields); err != nil {
		return nil, err
	}
	s := &Schema{name: "custom", fields: slices.Clone(spec.Fields), min: spec.MinFields}
	if s.min == 0 {
		s.min = len(s.fields)
	}
	if s.min < 1 || s.min > len(s.fields) {
		return nil, fieldsErr("min_fields %d is not between 1 and %d, the number of fields", spec.MinFields, len(s.fields))
	}
	roles := []struct {
		role, field string
		idx         *int
	}{{"version", spec.Version, &s.version}, {"platform", spec.Platform, &s.platform}, {"id", spec.ID, &s.id}}
	taken := map[string]string{}
	for _, r := range roles {
		*r.idx = -1
		if r.field == "" {
			continue
		}
		i := slices.Index(s.fields, r.field)
		if i < 0 {
			return nil, roleErr("%s: %q is not one of the fields", r.role, r.field)
		}
		if other, ok := taken[r.field]; ok {
			return nil, roleErr("%s: field %q is already the %s", r.role, r.field, other)
		}
		if i >= s.min {
			return nil, roleErr("%s: field %q comes after min_fields %d: every beacon must carry it", r.role, r.field, s.min)
		}
		taken[r.field] = r.role
		*r.idx = i
	}
	if s.id < 0 {
		// Installations, churn and the map count ids: without one every
		// figure would count starts, and one busy host would look like many.
		return nil, roleErr("no id field: name the field of the anonymous installation id (id FIELD)")
	}
	if s.min == len(s.fields) {
		s.errCount = fmt.Errorf("%w: want %d", errFieldCountOf, len(s.fields))
	} else {
		s.errCount = fmt.Errorf("%w: want %d to %d", errFieldCountOf, s.min, len(s.fields))
	}
	s.errFields = make([]error, len(s.fields))
	for i, f := range s.fields {
		s.errFields[i] = newGrammarError(f)
	}
	s.errHead = make([]error, len(s.fields)+1)
	for k := 2; k <= len(s.fields); k++ {
		s.errHead[k] = newGrammarError(fmt.Sprintf("%s (the first %d fields of a beacon of %d: over %d bytes together)",
			strings.Join(s.fields[:k], ","), k, k+s.min-1, MaxFirstFieldLen))
	}
	return s, nil
}

// errFieldCountOf is ErrFieldCount for a schema's count, which its message
// gives: ErrFieldCount's own text names ModSecurity's 7.
var errFieldCountOf = &countError{}

type countError struct{}

func (*countError) Error() string { return "beacon has the wrong number of fields" }
func (*countError) Unwrap() error { return ErrFieldCount }

// CheckFieldNames checks the field names of a schema: 1 to MaxFields of
// them, each a plain identifier (a lower-case letter, then lower-case
// letters, digits and underscores, at most MaxFieldName bytes; so no dot,
// no comma, no space), none twice, none reserved.
func CheckFieldNames(names []string) error {
	if len(names) == 0 {
		return fieldsErr("none given")
	}
	if len(names) > MaxFields {
		return fieldsErr("%d fields, at most %d", len(names), MaxFields)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := CheckFieldName(n); err != nil {
			return err
		}
		if seen[n] {
			return fieldsErr("%q given twice", n)
		}
		seen[n] = true
	}
	return nil
}

// CheckFieldName checks one field name (see CheckFieldNames).
func CheckFieldName(n string) error {
	if len(n) > MaxFieldName {
		return fieldsErr("name %.40q... longer than %d bytes", n, MaxFieldName)
	}
	if n == "" || n[0] < 'a' || n[0] > 'z' {
		return fieldsErr("name %q does not start with a lower-case letter", n)
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; !(c >= 'a' && c <= 'z') && !isDigit(c) && c != '_' {
			return fieldsErr("name %q holds %q: only a-z, 0-9 and _ (a field name is a plain identifier; the separator is always a comma)", n, string(rune(c)))
		}
	}
	if slices.Contains(reservedNames, n) {
		return fieldsErr("name %q is reserved (reserved: %s)", n, strings.Join(reservedNames, ", "))
	}
	return nil
}

// Name is ModSecurityName for the built-in schema, "custom" otherwise.
func (s *Schema) Name() string { return s.name }

// IsModSecurity tells whether s is the built-in schema.
func (s *Schema) IsModSecurity() bool { return s.modsec }

// Fields returns the field names in beacon order (a copy).
func (s *Schema) Fields() []string { return slices.Clone(s.fields) }

// MinFields is the fewest fields a beacon may carry.
func (s *Schema) MinFields() int { return s.min }

// Version names the field of the version role; "" for none.
func (s *Schema) Version() string { return s.fieldName(s.version) }

// Platform names the field of the platform role; "" for none.
func (s *Schema) Platform() string { return s.fieldName(s.platform) }

// ID names the field of the installation id; every schema has one.
func (s *Schema) ID() string { return s.fieldName(s.id) }

func (s *Schema) fieldName(i int) string {
	if i < 0 {
		return ""
	}
	return s.fields[i]
}

// String is the schema as a Corefile block says it, on one line.
func (s *Schema) String() string {
	if s.modsec {
		return ModSecurityName
	}
	var b strings.Builder
	b.WriteString("fields " + strings.Join(s.fields, " "))
	if s.min != len(s.fields) {
		fmt.Fprintf(&b, "; min_fields %d", s.min)
	}
	for _, r := range [...][2]string{{"version", s.Version()}, {"platform", s.Platform()}, {"id", s.ID()}} {
		if r[1] != "" {
			b.WriteString("; " + r[0] + " " + r[1])
		}
	}
	return b.String()
}

// Extends returns nil when s may replace old on a reload without changing
// what stored reports mean: the same fields in the same order with fields
// added at the end only, and the same roles. Anything else is an error
// saying what changed. See docs/schemas.md, "Changing a schema".
func (s *Schema) Extends(old *Schema) error {
	if s.modsec != old.modsec {
		return fmt.Errorf("the schema changes from %s to %s: stored reports would be read with the other one's fields", old.name, s.name)
	}
	if len(s.fields) < len(old.fields) || !slices.Equal(s.fields[:len(old.fields)], old.fields) {
		return fmt.Errorf("fields change from %q to %q: fields may only be added at the end", strings.Join(old.fields, " "), strings.Join(s.fields, " "))
	}
	if s.Version() != old.Version() || s.Platform() != old.Platform() || s.ID() != old.ID() {
		return fmt.Errorf("roles change (%s to %s): a role's field may not change", old, s)
	}
	return nil
}

// SchemaReport is one report decoded with a schema: the beacon and its
// field values in order. Values holds as many values as the beacon had
// fields; fields a beacon of MinFields left out are absent (Value says so).
type SchemaReport struct {
	Schema   *Schema
	Beacon   string   // the plaintext exactly as sent
	Values   []string // substrings of Beacon, trimmed of surrounding spaces
	Epoch    int64    // client epoch label; 0 when the name has none
	HasEpoch bool
}

// Value is the value of field name, and false when the schema has no such
// field or the beacon left it out.
func (r *SchemaReport) Value(name string) (string, bool) {
	if r.Schema == nil {
		return "", false
	}
	i := slices.Index(r.Schema.fields, name)
	if i < 0 || i >= len(r.Values) {
		return "", false
	}
	return r.Values[i], true
}

// AsReport is r as the store keeps a report of a custom schema: Format
// FormatSchema, the beacon, the id field's value and the epoch. The zone's
// schema reads the rest from the beacon again (ParseSchema).
func (r *SchemaReport) AsReport() Report {
	return Report{Beacon: r.Beacon, Format: FormatSchema, ID: r.ID(), Epoch: r.Epoch, HasEpoch: r.HasEpoch}
}

// Spec is what a Corefile's schema block would say to make s again
// (NewSchema(s.Spec())); the zero SchemaSpec for ModSecurity's.
func (s *Schema) Spec() SchemaSpec {
	if s.modsec {
		return SchemaSpec{}
	}
	sp := SchemaSpec{Fields: slices.Clone(s.fields), Version: s.Version(), Platform: s.Platform(), ID: s.ID()}
	if s.min != len(s.fields) {
		sp.MinFields = s.min
	}
	return sp
}

// Version is the value of the version field; "" when the schema has none.
func (r *SchemaReport) Version() string { return r.role(r.Schema.version) }

// Platform is the value of the platform field; "" when the schema has none.
func (r *SchemaReport) Platform() string { return r.role(r.Schema.platform) }

// ID is the value of the installation id field.
func (r *SchemaReport) ID() string { return r.role(r.Schema.id) }

func (r *SchemaReport) role(i int) string {
	if i < 0 || i >= len(r.Values) {
		return ""
	}
	return r.Values[i]
}

// ParseSchema splits a beacon plaintext into the fields of s and checks
// them: ModSecurity's grammars for the built-in schema (ParseBeacon), the
// bounds of a custom schema otherwise. Epoch and HasEpoch are left unset.
func ParseSchema(s *Schema, beacon string) (SchemaReport, error) {
	if s.modsec {
		r, err := ParseBeacon(beacon)
		if err != nil {
			return SchemaReport{}, err
		}
		return modsecValues(&r), nil
	}
	values, err := s.split(beacon)
	if err != nil {
		return SchemaReport{}, err
	}
	return SchemaReport{Schema: s, Beacon: beacon, Values: values}, nil
}

// modsecValues is r's SchemaReport under the built-in schema: its seven
// fields as printed, pairs as "compiled/loaded".
func modsecValues(r *Report) SchemaReport {
	pair := func(c, l string) string { return c + "/" + l }
	lua, libxml := r.Lua, r.Libxml
	if r.Format == Format2014 {
		lua, libxml = pair(r.Lua, r.LuaLoaded), pair(r.Libxml, r.LibxmlLoaded)
	}
	return SchemaReport{
		Schema: ModSecurity,
		Beacon: r.Beacon,
		Values: []string{r.Modsec, r.Server, pair(r.APRCompiled, r.APRLoaded), pair(r.PCRECompiled, r.PCRELoaded), lua, libxml, r.ID},
		Epoch:  r.Epoch, HasEpoch: r.HasEpoch,
	}
}

// split checks beacon against the bounds of custom schema s and returns
// its values. The count is checked before anything is allocated.
func (s *Schema) split(beacon string) ([]string, error) {
	if len(beacon) > maxBeacon {
		return nil, errBeaconLong
	}
	n := 1
	for i := 0; i < len(beacon); i++ {
		c := beacon[i]
		if c < 0x20 || c > 0x7e {
			return nil, errBeaconBytes
		}
		if c == Separator {
			n++
		}
	}
	if n < s.min || n > len(s.fields) {
		return nil, s.errCount
	}
	// The head: the first n-min+1 fields, which no minimisation tail may
	// keep whole (see the top of this file).
	head := n - s.min + 1
	if head > 1 {
		if _, end := fieldBounds(beacon, head-1); end > MaxFirstFieldLen {
			return nil, s.errHead[head]
		}
	}
	values := make([]string, 0, n)
	rest := beacon
	for i := 0; i < n; i++ {
		f, after, _ := strings.Cut(rest, ",")
		if len(f) > MaxFieldLen || (i == 0 && len(f) > MaxFirstFieldLen) {
			return nil, s.errFields[i]
		}
		values = append(values, strings.Trim(f, " "))
		rest = after
	}
	return values, nil
}

// DecodeSchema decodes a status report name with schema s: the name as
// Decode reads it (zone, epoch label, base32), the beacon as ParseSchema
// reads it. For the built-in schema it is Decode, with the values of the
// fields.
func DecodeSchema(s *Schema, qname, zone string) (SchemaReport, error) {
	if s.modsec {
		var r Report
		if err := DecodeTo(&r, qname, zone); err != nil {
			return SchemaReport{}, err
		}
		return modsecValues(&r), nil
	}
	data, epoch, hasEpoch, err := splitName(qname, zone)
	if err != nil {
		return SchemaReport{}, err
	}
	var buf [maxName*5/8 + 1]byte
	n, err := decodeBase32(buf[:], data)
	if err != nil {
		if err == errBadLength && hasEpoch {
			return SchemaReport{}, ErrPartial
		}
		return SchemaReport{}, ErrNotBase32
	}
	beacon := string(buf[:n])
	values, err := s.split(beacon)
	if err != nil {
		if hasEpoch && s.couldBeTail(data) {
			return SchemaReport{}, ErrPartial
		}
		return SchemaReport{}, err
	}
	return SchemaReport{Schema: s, Beacon: beacon, Values: values, Epoch: epoch, HasEpoch: hasEpoch}, nil
}

// couldBeTail tells a QNAME minimisation tail from a malformed report of a
// custom schema, for names with an epoch label whose beacon did not fit:
// a tail decodes to printable text with fewer fields than the schema's
// fewest, each field after the first (the one the cut went through) within
// MaxFieldLen; or, decoded from bit 2, 4 or 6 (a tail of 30-character
// labels starts off a byte boundary), with at most all of them. Only the metric label depends on it: neither is stored.
//
//go:noinline
func (s *Schema) couldBeTail(data string) bool {
	var buf [maxName*5/8 + 1]byte
	for shift := 0; shift < 8; shift += 2 {
		n, ok := decodeShifted(buf[:], data, shift)
		// Decoded off its first bits, a tail has lost the start of the
		// beacon it was cut from, so it may hold every comma.
		most := s.min - 1
		if shift > 0 {
			most = len(s.fields)
		}
		if ok && plausibleSchemaTail(buf[:n], most) {
			return true
		}
	}
	return false
}

func plausibleSchemaTail(text []byte, most int) bool {
	fields, start := 1, 0
	for i, c := range text {
		if c < 0x20 || c > 0x7e {
			return false
		}
		if c == Separator {
			if fields > 1 && i-start > MaxFieldLen {
				return false
			}
			fields++
			start = i + 1
		}
	}
	if fields > 1 && len(text)-start > MaxFieldLen {
		return false
	}
	return fields <= most
}

// SplitID cuts a beacon of s into its head (every field but the id) and its
// id as sent; JoinID puts them back together byte for byte. Installations
// of one build share the head. For ModSecurity's schema, and any schema
// whose id is the last field, these are SplitID and Join. Otherwise the id
// leaves the head with the comma before it (the one after it when the id
// is the first field). beacon must have at least the id field (it has once
// ParseSchema accepted it).
func (s *Schema) SplitID(beacon string) (head, id string) {
	if s.modsec {
		return SplitID(beacon)
	}
	start, end := fieldBounds(beacon, s.id)
	if s.id == 0 {
		return beacon[end:], beacon[:end]
	}
	return beacon[:start-1] + beacon[end:], beacon[start:end]
}

// JoinID is the inverse of SplitID.
func (s *Schema) JoinID(head, id string) string {
	if s.modsec {
		return Join(head, id)
	}
	if s.id == 0 {
		return id + head
	}
	_, end := fieldBounds(head, s.id-1)
	return head[:end] + "," + id + head[end:]
}

// ParseHead parses a beacon head of s (see SplitID): the values of every
// field but the id, which is left empty, as are Beacon and the epoch. For
// ModSecurity's schema it is ParseHead's report with its values.
func (s *Schema) ParseHead(head string) (SchemaReport, error) {
	if s.modsec {
		r, err := ParseHead(head)
		if err != nil {
			return SchemaReport{}, err
		}
		sr := modsecValues(&r)
		sr.Values[s.id] = ""
		return sr, nil
	}
	r, err := ParseSchema(s, s.JoinID(head, ""))
	r.Beacon = ""
	return r, err
}

// fieldBounds returns where field i of beacon starts and ends; past the
// last field both are len(beacon).
func fieldBounds(beacon string, i int) (start, end int) {
	for ; i > 0; i-- {
		c := strings.IndexByte(beacon[start:], Separator)
		if c < 0 {
			return len(beacon), len(beacon)
		}
		start += c + 1
	}
	end = len(beacon)
	if c := strings.IndexByte(beacon[start:], Separator); c >= 0 {
		end = start + c
	}
	return start, end
}
