package advisory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Bounds of what a file may hold: beyond them it is an error, so a hostile
// or broken file costs at most about MaxFileBytes of reading and parsing.
const (
	MaxFileBytes   = 8 << 20 // bytes read of one file
	MaxTotalBytes  = 64 << 20
	MaxFiles       = 10000 // files read of a directory
	MaxRecords     = 10000 // records in a set, default and operator's together
	MaxDepth       = 32    // nesting of JSON arrays and objects
	MaxAffected    = 64    // affected[] of a record
	MaxRanges      = 64    // ranges[] of an affected package
	MaxEvents      = 64    // events[] of a range
	MaxVersions    = 1024  // versions[] of an affected package
	MaxIntervals   = 200000
	maxIDLen       = 128
	maxSummaryLen  = 300
	maxReferences  = 32
	maxNoteLen     = 1000
	maxAliases     = 32
	maxEventLength = 64
)

// Severity levels, from the record's database_specific.severity (the GitHub
// advisory database's field; Apache's "important" is high, "moderate" is
// medium) or else from a CVSS v3 vector in severity[].
const (
	SevCritical = "critical"
	SevHigh     = "high"
	SevMedium   = "medium"
	SevLow      = "low"
	SevUnknown  = "unknown"
)

// Severities lists the levels, worst first.
var Severities = []string{SevCritical, SevHigh, SevMedium, SevLow, SevUnknown}

// Advisory is one OSV record, as exposure uses it.
type Advisory struct {
	ID         string   `json:"id"`
	Aliases    []string `json:"aliases,omitempty"`
	Summary    string   `json:"summary,omitempty"`
	Severity   string   `json:"severity"`
	Score      float64  `json:"cvss,omitempty"` // CVSS v3 base score, when the record has a vector
	Note       string   `json:"note,omitempty"` // database_specific.backport_note
	References []string `json:"references,omitempty"`
	Fields     []Field  `json:"fields"`
	// Source is the file the record came from ("default" for the embedded set).
	Source string `json:"-"`

	intervals []interval
}

// interval is a run of versions of one package an advisory lists as
// affected: [lo, hi), or [lo, hi] when hiIncl; without lo from the first
// version, without hi to the last (a range that never closes).
type interval struct {
	m            *Mapping
	lo, hi       Version
	hasLo, hasHi bool
	hiIncl       bool
}

// contains tells whether v is in iv.
func (iv *interval) contains(v Version) bool {
	if iv.hasLo && v.Compare(iv.lo) < 0 {
		return false
	}
	if !iv.hasHi {
		return true
	}
	c := v.Compare(iv.hi)
	return c < 0 || (c == 0 && iv.hiIncl)
}

// Affects tells whether a's upstream ranges list value, a value of field f
// as summaries hold it, as affected. A value that holds no version is
// never affected.
func (a *Advisory) Affects(f Field, value string) bool {
	for i := range a.intervals {
		iv := &a.intervals[i]
		if iv.m.Field != f {
			continue
		}
		if v, ok := iv.m.Extract(value); ok && iv.contains(v) {
			return true
		}
	}
	return false
}

// osvRecord is the subset of the OSV schema read.
type osvRecord struct {
	ID        string   `json:"id"`
	Withdrawn string   `json:"withdrawn"`
	Aliases   []string `json:"aliases"`
	Summary   string   `json:"summary"`
	Severity  []struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	} `json:"severity"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
		} `json:"package"`
		Ranges []struct {
			Type   string     `json:"type"`
			Events []osvEvent `json:"events"`
		} `json:"ranges"`
		Versions []string `json:"versions"`
	} `json:"affected"`
	References []struct {
		Type string `json:"type"`
		URL  string `json:"url"`
	} `json:"references"`
	DatabaseSpecific map[string]json.RawMessage `json:"database_specific"`
}

type osvEvent struct {
	Introduced   *string `json:"introduced"`
	Fixed        *string `json:"fixed"`
	LastAffected *string `json:"last_affected"`
	Limit        *string `json:"limit"`
}

// RecordError is a record that cannot be used: the file, the record (its
// number in the file from 1, and its id when it has one) and why.
type RecordError struct {
	File   string
	Record int
	ID     string
	Err    error
}

func (e *RecordError) Error() string {
	who := fmt.Sprintf("record %d", e.Record)
	if e.ID != "" {
		who += fmt.Sprintf(" (%q)", e.ID)
	}
	if e.Record == 0 {
		who = "the file"
	}
	return fmt.Sprintf("%s: %s: %v", e.File, who, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }

// Parse reads the OSV records of one file: one record (an object) or an
// array of records. Withdrawn records are skipped; a malformed record is a
// *RecordError naming file and record. Records that name no package of
// Packages are kept, affecting nothing.
func Parse(file string, data []byte) ([]*Advisory, error) {
	if len(data) > MaxFileBytes {
		return nil, &RecordError{File: file, Err: fmt.Errorf("larger than %d bytes", MaxFileBytes)}
	}
	if err := checkDepth(data); err != nil {
		return nil, &RecordError{File: file, Err: err}
	}
	data = bytes.TrimSpace(data)
	var raws []json.RawMessage
	if len(data) > 0 && data[0] == '[' {
		if err := json.Unmarshal(data, &raws); err != nil {
			return nil, &RecordError{File: file, Err: fmt.Errorf("not a JSON array of OSV records: %v", err)}
		}
	} else {
		raws = []json.RawMessage{data}
	}
	if len(raws) > MaxRecords {
		return nil, &RecordError{File: file, Err: fmt.Errorf("more than %d records", MaxRecords)}
	}
	var out []*Advisory
	for i, raw := range raws {
		var r osvRecord
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, &RecordError{File: file, Record: i + 1, Err: fmt.Errorf("not an OSV record: %v", err)}
		}
		if r.Withdrawn != "" {
			continue
		}
		a, err := compile(&r)
		if err != nil {
			return nil, &RecordError{File: file, Record: i + 1, ID: clip(r.ID, maxIDLen), Err: err}
		}
		a.Source = file
		out = append(out, a)
	}
	return out, nil
}

// checkDepth refuses JSON nested deeper than MaxDepth, before it is decoded.
func checkDepth(data []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxDepth {
				return fmt.Errorf("JSON nested deeper than %d", MaxDepth)
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return nil
}

// compile checks r and turns its ranges into intervals.
func compile(r *osvRecord) (*Advisory, error) {
	switch {
	case r.ID == "":
		return nil, errors.New("no id")
	case len(r.ID) > maxIDLen || !printable(r.ID):
		return nil, errors.New("id is not a short printable string")
	case len(r.Affected) > MaxAffected:
		return nil, fmt.Errorf("more than %d affected packages", MaxAffected)
	}
	a := &Advisory{ID: r.ID, Summary: clip(r.Summary, maxSummaryLen), Severity: SevUnknown}
	for i, al := range r.Aliases {
		if i == maxAliases {
			break
		}
		a.Aliases = append(a.Aliases, clip(al, maxIDLen))
	}
	for _, ref := range r.References {
		if len(a.References) < maxReferences && (strings.HasPrefix(ref.URL, "https://") || strings.HasPrefix(ref.URL, "http://")) {
			a.References = append(a.References, clip(ref.URL, 500))
		}
	}
	severityOf(a, r)
	fields := map[Field]bool{}
	for i, af := range r.Affected {
		m := mappingOf(af.Package.Name)
		if m == nil {
			continue // a package exposure does not count
		}
		if len(af.Ranges) > MaxRanges || len(af.Versions) > MaxVersions {
			return nil, fmt.Errorf("affected[%d]: more than %d ranges or %d versions", i, MaxRanges, MaxVersions)
		}
		for j, rg := range af.Ranges {
			if rg.Type == "GIT" {
				continue // commit hashes, not versions a beacon reports
			}
			ivs, err := intervals(m, rg.Events)
			if err != nil {
				return nil, fmt.Errorf("affected[%d] (%s) ranges[%d]: %v", i, clip(af.Package.Name, 64), j, err)
			}
			a.intervals = append(a.intervals, ivs...)
			fields[m.Field] = fields[m.Field] || len(ivs) > 0
		}
		for j, s := range af.Versions {
			v, ok := ParseVersion(s)
			if !ok {
				return nil, fmt.Errorf("affected[%d] (%s) versions[%d]: %q is no numeric dotted version", i, clip(af.Package.Name, 64), j, clip(s, maxEventLength))
			}
			a.intervals = append(a.intervals, interval{m: m, lo: v, hi: v, hasLo: true, hasHi: true, hiIncl: true})
			fields[m.Field] = true
		}
	}
	for _, f := range []Field{FieldModsec, FieldServer, FieldPCRE, FieldLibxml, FieldLua, FieldAPR} {
		if fields[f] {
			a.Fields = append(a.Fields, f)
		}
	}
	return a, nil
}

// intervals reads the events of one range (OSV's evaluation: sorted by
// version, "introduced" opens, "fixed" and "limit" close before their
// version, "last_affected" closes after it). A range left open affects
// every later version.
func intervals(m *Mapping, events []osvEvent) ([]interval, error) {
	if len(events) > MaxEvents {
		return nil, fmt.Errorf("more than %d events", MaxEvents)
	}
	type ev struct {
		kind byte // 'i' introduced, 'f' fixed or limit, 'l' last_affected
		v    Version
		zero bool // introduced "0": from the first version
	}
	var evs []ev
	for k, e := range events {
		n := 0
		var kind byte
		var s string
		for _, c := range []struct {
			p *string
			k byte
		}{{e.Introduced, 'i'}, {e.Fixed, 'f'}, {e.LastAffected, 'l'}, {e.Limit, 'f'}} {
			if c.p != nil {
				n++
				kind, s = c.k, *c.p
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("events[%d] must hold one of introduced, fixed, last_affected, limit", k)
		}
		if kind == 'i' && s == "0" {
			evs = append(evs, ev{kind: 'i', zero: true})
			continue
		}
		v, ok := ParseVersion(s)
		if !ok {
			return nil, fmt.Errorf("events[%d]: %q is no numeric dotted version", k, clip(s, maxEventLength))
		}
		evs = append(evs, ev{kind: kind, v: v})
	}
	// Sort by version ("0" first); at one version an introduced goes
	// before a fixed (an empty run).
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0; j-- {
			a, b := evs[j-1], evs[j]
			c := a.v.Compare(b.v)
			if a.zero {
				c = -1
			} else if b.zero {
				c = 1
			}
			if c < 0 || (c == 0 && a.kind == 'i') {
				break
			}
			evs[j-1], evs[j] = b, a
		}
	}
	var out []interval
	var open *interval
	for _, e := range evs {
		switch e.kind {
		case 'i':
			if open == nil {
				open = &interval{m: m, lo: e.v, hasLo: !e.zero}
			}
		case 'f', 'l':
			if open != nil {
				open.hi, open.hasHi, open.hiIncl = e.v, true, e.kind == 'l'
				out = append(out, *open)
				open = nil
			}
		}
	}
	if open != nil {
		out = append(out, *open) // never closes
	}
	return out, nil
}

// severityOf sets a's level and score from the record.
func severityOf(a *Advisory, r *osvRecord) {
	for _, s := range r.Severity {
		if strings.HasPrefix(s.Type, "CVSS_V3") {
			if score, ok := CVSS3Score(s.Score); ok {
				a.Score = score
				a.Severity = levelOfScore(score)
			}
		}
	}
	var level, note string
	if raw, ok := r.DatabaseSpecific["severity"]; ok && json.Unmarshal(raw, &level) == nil {
		switch strings.ToLower(level) {
		case "critical":
			a.Severity = SevCritical
		case "high", "important":
			a.Severity = SevHigh
		case "moderate", "medium":
			a.Severity = SevMedium
		case "low":
			a.Severity = SevLow
		}
	}
	if raw, ok := r.DatabaseSpecific["backport_note"]; ok && json.Unmarshal(raw, &note) == nil {
		a.Note = clip(note, maxNoteLen)
	}
}

func levelOfScore(s float64) string {
	switch {
	case s >= 9:
		return SevCritical
	case s >= 7:
		return SevHigh
	case s >= 4:
		return SevMedium
	case s > 0:
		return SevLow
	}
	return SevUnknown
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
