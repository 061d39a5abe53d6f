package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// Schemas are the custom schemas of zones: zone (a record's Zone, lower
// case with its final dot) -> schema. A zone that is not in it is
// ModSecurity's. A Schemas is never changed once made (With makes another),
// so the store swaps the whole of it on a reload and readers need no lock;
// it is the one lookup every reader and writer of a beacon goes through
// (Validate, Wire.Record, the log's frames, the builds dictionary). The nil
// *Schemas holds no custom schema.
type Schemas struct {
	m map[string]*codec.Schema
}

// Of is zone's schema: its custom one, else codec.ModSecurity.
func (sc *Schemas) Of(zone string) *codec.Schema {
	if sc != nil {
		if s := sc.m[zone]; s != nil {
			return s
		}
	}
	return codec.ModSecurity
}

// Custom is zone's custom schema, or nil for a zone of ModSecurity's.
func (sc *Schemas) Custom(zone string) *codec.Schema {
	if sc == nil {
		return nil
	}
	return sc.m[zone]
}

// With is sc with zone's schema s (ModSecurity's: zone dropped).
func (sc *Schemas) With(zone string, s *codec.Schema) *Schemas {
	out := &Schemas{m: map[string]*codec.Schema{}}
	if sc != nil {
		for z, x := range sc.m {
			out.m[z] = x
		}
	}
	if s == nil || s.IsModSecurity() {
		delete(out.m, zone)
	} else {
		out.m[zone] = s
	}
	return out
}

// Zones lists the zones of a custom schema, sorted.
func (sc *Schemas) Zones() []string {
	if sc == nil {
		return nil
	}
	out := make([]string, 0, len(sc.m))
	for z := range sc.m {
		out = append(out, z)
	}
	slices.Sort(out)
	return out
}

// Parse reads beacon as zone's schema does, into the Report a record
// holds: ModSecurity's fields for its zones, a report of FormatSchema for
// a custom schema's.
func (sc *Schemas) Parse(zone, beacon string) (codec.Report, error) {
	s := sc.Of(zone)
	if s.IsModSecurity() {
		return codec.ParseBeacon(beacon)
	}
	r, err := codec.ParseSchema(s, beacon)
	if err != nil {
		return codec.Report{}, err
	}
	return r.AsReport(), nil
}

var (
	errSchemaZone  = errors.New("report of a custom schema in a zone of ModSecurity's schema")
	errModsecZone  = errors.New("report of ModSecurity's schema in a zone of a custom schema")
	errSchemaID    = errors.New("report's id is not its beacon's id field")
	errSpecTooLong = errors.New("schema spec longer than 4096 bytes")
)

// validReport checks that rep is what zone's schema decodes.
func (sc *Schemas) validReport(zone string, rep *codec.Report) error {
	s := sc.Of(zone)
	if rep.Format != codec.FormatSchema {
		if rep.Format == 0 || rep.Beacon == "" || rep.Modsec == "" {
			return errReport
		}
		if !s.IsModSecurity() {
			return errModsecZone
		}
		return nil
	}
	if s.IsModSecurity() {
		return errSchemaZone
	}
	r, err := codec.ParseSchema(s, rep.Beacon)
	if err != nil {
		return fmt.Errorf("beacon does not fit the zone's schema: %w", err)
	}
	if r.ID() != rep.ID {
		return errSchemaID
	}
	return nil
}

// specJSON is a custom schema as bucket schemas keeps it.
type specJSON struct {
	Fields    []string `json:"fields"`
	MinFields int      `json:"min_fields,omitempty"`
	Version   string   `json:"version,omitempty"`
	Platform  string   `json:"platform,omitempty"`
	ID        string   `json:"id"`
}

// AppendSchema is the value of bucket schemas for custom schema s: its
// spec as JSON, {"fields":[...],"min_fields":N,"version":F,"platform":F,"id":F}.
func AppendSchema(buf []byte, s *codec.Schema) []byte {
	sp := s.Spec()
	b, _ := json.Marshal(specJSON{sp.Fields, sp.MinFields, sp.Version, sp.Platform, sp.ID})
	return append(buf, b...)
}

// DecodeSchema reads a value of AppendSchema, checked as a Corefile's
// schema block is (codec.NewSchema).
func DecodeSchema(v []byte) (*codec.Schema, error) {
	if len(v) > 4096 {
		return nil, errSpecTooLong
	}
	var j specJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return nil, fmt.Errorf("schema spec: %w", err)
	}
	return codec.NewSchema(codec.SchemaSpec{Fields: j.Fields, MinFields: j.MinFields, Version: j.Version, Platform: j.Platform, ID: j.ID})
}
