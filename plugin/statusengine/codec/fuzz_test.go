package codec

import (
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
