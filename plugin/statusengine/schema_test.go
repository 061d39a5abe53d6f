package statusengine

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// exampleSchema is the schema block of docs/schemas.md.
const exampleSchema = `schema {
    fields product version os arch id
    version version
    platform os
    id id
}`

func TestParseSchema(t *testing.T) {
	thousand := make([]string, 1000)
	for i := range thousand {
		thousand[i] = fmt.Sprintf("f%d", i)
	}
	tests := []struct {
		input   string
		wantErr string // substring, with the line; "" means success
		schema  string // the schema's String() on success
	}{
		{"statusengine", "", "modsecurity"},
		{"statusengine {\nschema modsecurity\n}", "", "modsecurity"},
		{"statusengine {\n" + exampleSchema + "\ntitle \"Example status\"\n}", "", "fields product version os arch id; version version; platform os; id id"},
		{"statusengine {\nschema {\nfields v id extra\nmin_fields 2\nid id\n}\nttl 30\n}", "", "fields v id extra; min_fields 2; id id"},
		{"statusengine {\nschema {\n  fields id\n  id id\n}\n}", "", "fields id; id id"},
		{"statusengine {\nschema\n}", "Testfile:2 - Error during parsing: schema: want modsecurity, or a block", ""},
		{"statusengine {\nschema myapp\n}", "Testfile:2 - Error during parsing: schema: want modsecurity", ""},
		{"statusengine {\nschema modsecurity {\n}\n}", "Testfile:2 - Error during parsing: schema: a block takes no argument", ""},
		{"statusengine {\nschema x {\nfields id\nid id\n}\n}", "Testfile:2 - Error during parsing: schema: a block takes no argument", ""},
		{"statusengine {\nschema modsecurity\nschema modsecurity\n}", "Testfile:3 - Error during parsing: schema specified more than once", ""},
		{"statusengine {\nschema {\n}\n}", "Testfile:2 - Error during parsing: schema: no fields", ""},
		{"statusengine {\nschema {\nfields " + strings.Join(thousand, " ") + "\nid f0\n}\n}", "Testfile:3 - Error during parsing: schema: fields: 1000 fields, at most 16", ""},
		{"statusengine {\nschema {\nfields\n}\n}", "Testfile:3 - Error during parsing: schema: fields: none given", ""},
		{"statusengine {\nschema {\nfields a b a\n}\n}", `Testfile:3 - Error during parsing: schema: fields: "a" given twice`, ""},
		{"statusengine {\nschema {\nfields app.version id\n}\n}", `Testfile:3 - Error during parsing: schema: fields: name "app.version" holds "."`, ""},
		{"statusengine {\nschema {\nfields a,b id\n}\n}", `Testfile:3 - Error during parsing: schema: fields: name "a,b" holds ","`, ""},
		{"statusengine {\nschema {\nfields Version id\n}\n}", "Testfile:3 - Error during parsing: schema: fields: name \"Version\" does not start", ""},
		{"statusengine {\nschema {\nfields " + strings.Repeat("x", 33) + " id\n}\n}", "Testfile:3 - Error during parsing: schema: fields: name", ""},
		{"statusengine {\nschema {\nfields country id\n}\n}", `Testfile:3 - Error during parsing: schema: fields: name "country" is reserved`, ""},
		{"statusengine {\nschema {\nfields v id\nfields v id\n}\n}", "Testfile:4 - Error during parsing: schema: fields specified more than once", ""},
		{"statusengine {\nschema {\nid id\nfields v id\n}\n}", "Testfile:3 - Error during parsing: schema: id: fields must come first", ""},
		{"statusengine {\nschema {\nfields v os\nversion v\nplatform os\n}\n}", "Testfile:2 - Error during parsing: schema: no id field", ""},
		{"statusengine {\nschema {\nfields v id\nversion ver\nid id\n}\n}", `Testfile:4 - Error during parsing: schema: version: "ver" is not one of the fields (v id)`, ""},
		{"statusengine {\nschema {\nfields v id\nid\n}\n}", "Testfile:4 - Error during parsing: schema: id needs one field name", ""},
		{"statusengine {\nschema {\nfields v id\nversion v\nplatform v\nid id\n}\n}", `Testfile:2 - Error during parsing: schema: platform: field "v" is already the version`, ""},
		{"statusengine {\nschema {\nfields v id\nmin_fields 0\n}\n}", `Testfile:4 - Error during parsing: schema: min_fields "0" is not a number from 1 to 16`, ""},
		{"statusengine {\nschema {\nfields v id\nmin_fields 3\nid id\n}\n}", "Testfile:2 - Error during parsing: schema: min_fields 3 is not between 1 and 2", ""},
		{"statusengine {\nschema {\nfields v id\nmin_fields 1\nid id\n}\n}", `Testfile:2 - Error during parsing: schema: id: field "id" comes after min_fields 1`, ""},
		{"statusengine {\nschema {\nfields v id\nseparator .\n}\n}", "Testfile:4 - Error during parsing: schema: separator: the fields of a beacon are always separated by a comma", ""},
		{"statusengine {\nschema {\nfields v id\nbogus 1\n}\n}", `Testfile:4 - Error during parsing: schema: unknown property "bogus"`, ""},
		{"statusengine {\nschema {\nfields v id\nid id\n", "schema: block is not closed", ""},
		{"statusengine {\ntitle\n}", "Testfile:2 - Error during parsing: title needs one text", ""},
		{"statusengine {\ntitle a b\n}", "Testfile:2 - Error during parsing: title needs one text", ""},
		{"statusengine {\ntitle \"" + strings.Repeat("t", 101) + "\"\n}", "Testfile:2 - Error during parsing: title: longer than 100 bytes", ""},
		{"statusengine {\ntitle \"a\tb\"\n}", "Testfile:2 - Error during parsing: title: \"a\\tb\" holds a control character", ""},
		{"statusengine {\ntitle \"Statut de l'été\"\n}", "", "modsecurity"},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		c.ServerBlockKeys = []string{"status.example.org.:1053"}
		se, err := parse(c)
		if !checkParseErr(t, i, err, tc.wantErr) || tc.wantErr != "" {
			continue
		}
		if got := se.schema.String(); got != tc.schema {
			t.Errorf("test %d: schema %q, want %q", i, got, tc.schema)
		}
	}
}

func TestParseTitle(t *testing.T) {
	c := caddy.NewTestController("dns", "statusengine {\ntitle \"Example status\"\n}")
	c.ServerBlockKeys = []string{"status.example.org.:1053"}
	se, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if se.title != "Example status" {
		t.Errorf("title = %q", se.title)
	}
}

// A zone with a custom schema answers every name as a ModSecurity zone
// does and stores its reports through the same path (stored, then the same
// report again a duplicate), tails partial, misfits malformed: one record
// in the store, read back with the zone's schema.
func TestServeDNSCustomSchema(t *testing.T) {
	const z = "status.example.org."
	se := newTestEngine(t)
	se.Zones = []string{z}
	se.answers.build(se.Zones)
	s, err := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	se.schema = s
	if err := se.store.SetSchema(se.Zones, s); err != nil {
		t.Fatal(err)
	}

	report := codec.Encode("myapp,1.2.3,Linux,x86_64,0123456789abcdef0123456789abcdef01234567", 1796000000, z)
	labels := strings.SplitN(report, ".", 2)
	tail := labels[1] // what a minimising resolver sends before the full name
	tests := []struct {
		qname   string
		outcome string
	}{
		{report, outcomeStored},
		{strings.ToUpper(report), outcomeDuplicate},
		{tail, outcomePartial},
		{"1796000000." + z, outcomePartial},
		// Too few fields under an epoch label cannot be told from a tail.
		{codec.Encode("myapp,1.2.3,Linux", 1796000000, z), outcomePartial},
		{codec.Encode("myapp,1.2.3,Linux", -1, z), outcomeMalformed},
		{codec.Encode("myapp,1.2.3,Linux,x86_64,ab,more", 1796000000, z), outcomeMalformed},
		{codec.Encode(strings.Repeat("p", 20)+",1.2.3,Linux,x86_64,ab", 1796000000, z), outcomeMalformed},
		{codec.Encode("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75", 1796000000, z), outcomeMalformed},
		{"not-base32!." + z, outcomeMalformed},
	}
	for _, tc := range tests {
		before := countedIn(z, tc.outcome)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		m := new(dns.Msg)
		m.SetQuestion(tc.qname, dns.TypeA)
		if _, err := se.ServeDNS(context.Background(), rec, m); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeSuccess || len(rec.Msg.Answer) != 1 || !rec.Msg.Authoritative {
			t.Fatalf("%s: answer %v", tc.qname, rec.Msg)
		}
		if got := rec.Msg.Answer[0].Header().Name; got != tc.qname {
			t.Errorf("answer name %q, want the question's %q", got, tc.qname)
		}
		if got := countedIn(z, tc.outcome) - before; got != 1 {
			t.Errorf("%s: outcome %s counted %v times, want 1", tc.qname, tc.outcome, got)
		}
	}
	if n := se.store.Count(); n != 1 {
		t.Errorf("the store holds %d reports of a custom schema, want 1", n)
	}
	var got []string
	se.store.Each(time.Unix(0, 0), time.Now().Add(time.Hour), 0, func(r *record.Record) error {
		got = append(got, r.Zone+" "+r.Report.Beacon+" "+r.Report.ID)
		return nil
	})
	if want := z + " myapp,1.2.3,Linux,x86_64,0123456789abcdef0123456789abcdef01234567 0123456789abcdef0123456789abcdef01234567"; len(got) != 1 || got[0] != want {
		t.Errorf("stored %q, want %q", got, want)
	}
}

// countedIn is counted for another zone.
func countedIn(z, outcome string) float64 {
	var m dto.Metric
	reportsTotal.WithLabelValues("", z, outcome).Write(&m)
	return m.GetCounter().GetValue()
}
