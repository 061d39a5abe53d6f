package record

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// TestValidateSchemas: a record's report must be what its zone's schema
// decodes: a custom schema's report only in its zone, its id the beacon's
// id field, its beacon fitting the schema; ModSecurity's only in zones of
// ModSecurity's schema.
func TestValidateSchemas(t *testing.T) {
	s, err := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "id"}, Version: "version", ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	const custom, modsec = "status.example.org.", "status.modsecurity.org."
	sc := (*Schemas)(nil).With(custom, s)
	mod, err := codec.ParseBeacon("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	rep := func(beacon, id string) codec.Report {
		return codec.Report{Format: codec.FormatSchema, Beacon: beacon, ID: id}
	}
	for _, c := range []struct {
		name string
		zone string
		rep  codec.Report
		want string // "" valid
	}{
		{"custom in its zone", custom, rep("myapp,1.2, ab ", "ab"), ""},
		{"custom in ModSecurity's zone", modsec, rep("myapp,1.2,ab", "ab"), "custom schema in a zone of ModSecurity"},
		{"ModSecurity's in the custom zone", custom, mod, "ModSecurity's schema in a zone of a custom"},
		{"ModSecurity's in its zone", modsec, mod, ""},
		{"id not the beacon's", custom, rep("myapp,1.2,ab", "cd"), "id"},
		{"too many fields", custom, rep("myapp,1.2,ab,x", "x"), "does not fit"},
		{"a control byte", custom, rep("myapp,1.2\x00,ab", "ab"), "does not fit"},
		{"a first field over 19 bytes", custom, rep(strings.Repeat("p", 20)+",1.2,ab", "ab"), "does not fit"},
		{"no format", custom, codec.Report{Beacon: "x"}, "not decoded"},
	} {
		r := &Record{Received: now, Zone: c.zone, Resolver: netip.MustParseAddr("192.0.2.1"), Report: c.rep}
		err := r.Validate(now, sc)
		if (err == nil) != (c.want == "") || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	// A spec round-trips through the bucket's form, and a hostile one is
	// refused as a Corefile's would be.
	got, err := DecodeSchema(AppendSchema(nil, s))
	if err != nil || got.String() != s.String() {
		t.Errorf("round trip: %v %v", got, err)
	}
	for _, v := range []string{`{"fields":["a.b"],"id":"a.b"}`, `{"fields":["a"]}`, `not json`, `{"fields":[` + strings.Repeat(`"a",`, 2000) + `"a"],"id":"a"}`} {
		if _, err := DecodeSchema([]byte(v)); err == nil {
			t.Errorf("DecodeSchema(%.40q) accepted", v)
		}
	}
}
