package codec

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.name+".", statusZone)
		f.Add(strings.ToLower(v.name), "STATUS.modsecurity.org")
	}
	for _, tc := range captured0x20 {
		f.Add(tc.name, statusZone)
	}
	for _, name := range capturedPartial {
		f.Add(name, statusZone)
	}
	f.Add(Encode(realDebian, 1700000000, "rpc.atomicorp.com"), "rpc.atomicorp.com.")
	f.Add(Encode(realDebian, -1, "."), ".")
	f.Add("MFRGG===.1.status.modsecurity.org.", statusZone)
	// Malformed names a hostile sender tries: escapes of binary bytes and
	// NUL as the server presents them, the longest label and name, labels
	// of impossible base32 lengths, epochs too long, empty labels.
	for _, n := range []string{
		`GIXD\000SLRX.1795549302.status.modsecurity.org.`,
		`\255\001\127\010\027[0m.1795549302.status.modsecurity.org.`,
		`GIXD\.SLRX.1795549302.status.modsecurity.org.`,
		strings.Repeat("A", 63) + ".1795549302.status.modsecurity.org.",
		strings.Repeat("B", 63) + "." + strings.Repeat("B", 63) + "." + strings.Repeat("B", 63) + "." + strings.Repeat("B", 36) + ".status.modsecurity.org.",
		"A.1795549302.status.modsecurity.org.",
		"GIXDSLRX.1795549302000.status.modsecurity.org.",
		"..1795549302.status.modsecurity.org.",
		"GIXDSLRX..status.modsecurity.org.",
		"1795549302.1795549302.status.modsecurity.org.",
	} {
		f.Add(n, statusZone)
	}

	f.Fuzz(func(t *testing.T, qname, zone string) {
		r, err := Decode(qname, zone)
		if err != nil {
			if Outcome(err) == "" {
				t.Fatalf("Outcome(%v) is empty", err)
			}
			if r != (Report{}) {
				t.Fatalf("Decode(%q, %q) returned a report with its error %v", qname, zone, err)
			}
			return
		}
		for i := 0; i < len(r.Beacon); i++ {
			if c := r.Beacon[i]; c < 0x20 || c > 0x7e {
				t.Fatalf("Decode(%q, %q).Beacon = %q is not printable ascii", qname, zone, r.Beacon)
			}
		}
		epoch := int64(-1)
		if r.HasEpoch {
			epoch = r.Epoch
		}
		name := Encode(r.Beacon, epoch, zone)
		if len(strings.TrimSuffix(name, ".")) > maxName {
			// The input used fewer, longer labels than the client does; the
			// client's resolver refuses the name it would make.
			return
		}
		r2, err := Decode(name, zone)
		if err != nil {
			t.Fatalf("Decode(%q, %q) = %+v; the round trip via %q fails: %v", qname, zone, r, name, err)
		}
		if r2 != r {
			t.Fatalf("round trip of %q via %q in zone %q\n got %+v\nwant %+v", qname, name, zone, r2, r)
		}
	})
}

// fuzzSchemas are the schemas FuzzSchemaDecode picks from: the example,
// one with optional trailing fields, one with the id first, the smallest,
// the largest, and the built-in one.
var fuzzSchemas = func() []*Schema {
	many := make([]string, MaxFields)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	var out []*Schema
	for _, spec := range []SchemaSpec{
		appSpec,
		{Fields: []string{"v", "id", "extra", "more"}, MinFields: 2, Version: "v", ID: "id"},
		{Fields: []string{"id", "v", "os"}, Version: "v", Platform: "os", ID: "id"},
		{Fields: []string{"id"}, ID: "id"},
		{Fields: many, Version: "f1", ID: "f15"},
	} {
		s, err := NewSchema(spec)
		if err != nil {
			panic(err)
		}
		out = append(out, s)
	}
	return append(out, ModSecurity)
}()

func FuzzSchemaDecode(f *testing.F) {
	const z = "status.example.org."
	for i := range fuzzSchemas {
		k := byte(i)
		for _, b := range []string{
			"myapp,1.2.3,Linux,x86_64,0123456789abcdef0123456789abcdef01234567",
			"myapp,(null),,x86_64,", ",,,,", "1.0,ab", "1.0,ab,x,y", "ab,1.2,Linux", "ab", "",
			strings.Repeat("a,", 15) + "z", realDebian, strings.Repeat("p", 19) + ",1,l,x,i",
			strings.Repeat("p", 20) + ",1,l,x,i", "a,1\x00,l,x,i", "a,1,Linüx,x,i",
		} {
			f.Add(Encode(b, 1796000000, z), z, k)
			f.Add(strings.ToLower(Encode(b, -1, z)), "STATUS.example.ORG", k)
			f.Add(EncodeLabels(b, 1796000000, z, 30), z, k)
		}
		f.Add("1796000000."+z, z, k)
		f.Add(z, z, k)
		f.Add(`GIXD\000SLRX.1796000000.`+z, z, k)
		f.Add(strings.Repeat("A", 63)+".1796000000."+z, z, k)
		f.Add("GIXDSLRX.1796000000000."+z, z, k)
		f.Add("..1796000000."+z, z, k)
	}
	for _, v := range loadVectors(f) {
		f.Add(v.name+".", statusZone, byte(len(fuzzSchemas)-1))
	}

	f.Fuzz(func(t *testing.T, qname, zone string, pick byte) {
		s := fuzzSchemas[int(pick)%len(fuzzSchemas)]
		r, err := DecodeSchema(s, qname, zone)
		if err != nil {
			if Outcome(err) == "" {
				t.Fatalf("Outcome(%v) is empty", err)
			}
			if r.Beacon != "" || r.Values != nil || r.Schema != nil {
				t.Fatalf("DecodeSchema(%s, %q, %q) returned a report with its error %v", s, qname, zone, err)
			}
			if s.IsModSecurity() {
				if _, merr := Decode(qname, zone); merr == nil || Outcome(merr) != Outcome(err) {
					t.Fatalf("DecodeSchema(modsecurity, %q) = %v, Decode = %v", qname, err, merr)
				}
			}
			return
		}
		if r.Schema != s || len(r.Values) < s.MinFields() || len(r.Values) > len(s.Fields()) {
			t.Fatalf("DecodeSchema(%s, %q) = %d values", s, qname, len(r.Values))
		}
		for i, v := range r.Values {
			if !s.IsModSecurity() && (len(v) > MaxFieldLen || (i == 0 && len(v) > MaxFirstFieldLen)) {
				t.Fatalf("value %d %q is longer than its bound", i, v)
			}
			for j := 0; j < len(v); j++ {
				if c := v[j]; c < 0x20 || c > 0x7e || (c == Separator && !s.IsModSecurity()) {
					t.Fatalf("value %d %q holds %q", i, v, c)
				}
			}
		}
		if h := len(r.Values) - s.MinFields() + 1; !s.IsModSecurity() && h > 1 {
			if _, end := fieldBounds(r.Beacon, h-1); end > MaxFirstFieldLen {
				t.Fatalf("%q: the head of %d fields is longer than %d bytes", r.Beacon, h, MaxFirstFieldLen)
			}
		}
		head, id := s.SplitID(r.Beacon)
		if s.JoinID(head, id) != r.Beacon || strings.TrimSpace(id) != r.ID() {
			t.Fatalf("SplitID(%q) = %q, %q; id %q", r.Beacon, head, id, r.ID())
		}
		epoch := int64(-1)
		if r.HasEpoch {
			epoch = r.Epoch
		}
		name := Encode(r.Beacon, epoch, zone)
		if len(strings.TrimSuffix(name, ".")) > maxName {
			return // fewer, longer labels than a client sends
		}
		r2, err := DecodeSchema(s, name, zone)
		if err != nil {
			t.Fatalf("DecodeSchema(%s, %q) = %+v; the round trip via %q fails: %v", s, qname, r, name, err)
		}
		if r2.Beacon != r.Beacon || !slices.Equal(r2.Values, r.Values) || r2.Epoch != r.Epoch || r2.HasEpoch != r.HasEpoch {
			t.Fatalf("round trip of %q via %q\n got %+v\nwant %+v", qname, name, r2, r)
		}
		if _, err := ParseSchema(s, r.Beacon); err != nil {
			t.Fatalf("ParseSchema(%q) of a decoded beacon: %v", r.Beacon, err)
		}
	})
}
