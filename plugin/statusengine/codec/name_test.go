package codec

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, name := range []string{v.name, v.name + ".", strings.ToLower(v.name) + "."} {
			t.Run(name[:16], func(t *testing.T) {
				r, err := Decode(name, statusZone)
				if !v.isBeacon() {
					if !errors.Is(err, ErrFieldCount) || Outcome(err) != "malformed" {
						t.Fatalf("Decode(%s) = %v, want %v (malformed)", name, err, ErrFieldCount)
					}
					return
				}
				if err != nil {
					t.Fatalf("Decode(%s): %v", name, err)
				}
				if r.Beacon != v.beacon {
					t.Errorf("Beacon = %q, want %q", r.Beacon, v.beacon)
				}
				if r.HasEpoch != (v.epoch >= 0) || (r.HasEpoch && r.Epoch != v.epoch) || (!r.HasEpoch && r.Epoch != 0) {
					t.Errorf("Epoch, HasEpoch = %d, %t, want %d", r.Epoch, r.HasEpoch, v.epoch)
				}
				want, err := ParseBeacon(v.beacon)
				if err != nil {
					t.Fatal(err)
				}
				want.Epoch, want.HasEpoch = r.Epoch, r.HasEpoch
				if r != want {
					t.Errorf("Decode fields\n got %+v\nwant %+v", r, want)
				}
			})
		}
	}
}

func TestDecodeRealDebian(t *testing.T) {
	const name = "GIXDSLRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV.1795549302.status.modsecurity.org."
	r, err := Decode(name, statusZone)
	if err != nil {
		t.Fatal(err)
	}
	want := Report{Beacon: realDebian, Format: FormatCurrent, Modsec: "2.9.7", Server: "Apache/2.4.71 (Debian)",
		APRCompiled: "1.7.2", APRLoaded: "1.7.2", PCRECompiled: "10.42", PCRELoaded: "",
		Lua: "Lua 5.1", Libxml: "2.9.14", ID: "75", Epoch: 1795549302, HasEpoch: true}
	if r != want {
		t.Errorf("Decode\n got %+v\nwant %+v", r, want)
	}
}

func TestDecode2014(t *testing.T) {
	const name = "GIXDOLRXFRAXAYLDNBSS6MROGQXDIIBI.KVXGS6BJFQYS4NBOGYXTCLRUFY3CYIBY.FYZTEIBPHAXDGMRAGIYDCMRNGEYS2MZQ.FRGHKYJAGUXDCLZINZ2WY3BJFQZC4NZO.HAXSQ3TVNRWCSLBZGZRWKOLCMEZWGMTG.MI3TCZRXME4GEYRZGJQTQODEGU3DAZBU.GRSGEZJUGU4WEOA.status.modsecurity.org."
	r, err := Decode(name, statusZone)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != Format2014 || r.HasEpoch || r.Epoch != 0 {
		t.Errorf("Format, HasEpoch, Epoch = %d, %t, %d, want 2014 without epoch", r.Format, r.HasEpoch, r.Epoch)
	}
	if r.Lua != "Lua 5.1" || r.LuaLoaded != "(null)" || r.Libxml != "2.7.8" || r.LibxmlLoaded != "(null)" {
		t.Errorf("lua %q/%q libxml %q/%q", r.Lua, r.LuaLoaded, r.Libxml, r.LibxmlLoaded)
	}
	if r.PCRECompiled != "8.32" || r.PCRELoaded != "8.32 2012-11-30" {
		t.Errorf("pcre %q/%q", r.PCRECompiled, r.PCRELoaded)
	}
}

func TestDecodeCaptured0x20(t *testing.T) {
	for _, tc := range captured0x20 {
		r, err := Decode(tc.name, statusZone)
		if err != nil {
			t.Errorf("Decode(%s): %v", tc.name, err)
			continue
		}
		if want := realDebian[:len(realDebian)-2] + tc.id; r.Beacon != want {
			t.Errorf("Decode(%s).Beacon = %q, want %q", tc.name, r.Beacon, want)
		}
		if r.Epoch != tc.epoch || !r.HasEpoch || r.ID != tc.id || r.Modsec != "2.9.7" {
			t.Errorf("Decode(%s) = %+v", tc.name, r)
		}
	}
}

func TestDecodeCapturedPartial(t *testing.T) {
	for _, name := range capturedPartial {
		if _, err := Decode(name, statusZone); !errors.Is(err, ErrPartial) || Outcome(err) != "partial" {
			t.Errorf("Decode(%s) = %v, want %v", name, err, ErrPartial)
		}
	}
}

// TestDecodeTails feeds every name QNAME minimisation would derive from
// each vector: the apex, the epoch alone, then one more label at a time.
func TestDecodeTails(t *testing.T) {
	for _, v := range loadVectors(t) {
		if !v.isBeacon() || v.epoch < 0 {
			continue
		}
		labels := strings.Split(v.name, ".")
		data := len(labels) - 4 // epoch + status.modsecurity.org
		for k := data; k > 0; k-- {
			name := strings.Join(labels[k:], ".") + "."
			if _, err := Decode(name, statusZone); !errors.Is(err, ErrPartial) {
				t.Errorf("Decode(%s) = %v, want %v", name, err, ErrPartial)
			}
		}
		if _, err := Decode(statusZone, statusZone); !errors.Is(err, ErrPartial) {
			t.Errorf("Decode(apex) = %v, want %v", err, ErrPartial)
		}
	}
}

func TestDecodeOtherZone(t *testing.T) {
	for _, zone := range []string{"rpc.atomicorp.com.", "rpc.atomicorp.com", "RPC.AtomiCorp.com.", "."} {
		name := Encode(realDebian, 1700000000, "rpc.atomicorp.com")
		if zone == "." {
			name = Encode(realDebian, 1700000000, zone)
		}
		r, err := Decode(name, zone)
		if err != nil || r.Beacon != realDebian || r.Epoch != 1700000000 {
			t.Errorf("Decode(%s, %s) = %+v, %v", name, zone, r, err)
		}
	}
	if _, err := Decode(Encode(realDebian, 1, statusZone), "rpc.atomicorp.com."); !errors.Is(err, ErrNotInZone) {
		t.Errorf("status zone name under rpc.atomicorp.com: %v, want %v", err, ErrNotInZone)
	}
}

func TestDecodeErrors(t *testing.T) {
	const (
		good  = "GIXDSLRXFRAXAYLDNBSS6MROGQXDOMJA.FBCGKYTJMFXCSLBRFY3S4MRPGEXDOLRS.FQYTALRUGIXSYTDVMEQDKLRRFQZC4OJO.GE2CYNZV"
		epoch = ".1795549302."
		z     = statusZone
	)
	tests := []struct {
		name  string
		qname string
		want  error
	}{
		{"other domain", "example.org.", ErrNotInZone},
		{"parent of zone", "modsecurity.org.", ErrNotInZone},
		{"string suffix only", "xstatus.modsecurity.org.", ErrNotInZone},
		{"report under string suffix", good + ".1795549302.xstatus.modsecurity.org.", ErrNotInZone},
		{"zone inside name", good + epoch + z + "example.org.", ErrNotInZone},
		{"root", ".", ErrNotInZone},
		{"apex", z, ErrPartial},
		{"apex 0x20 no dot", "StAtUs.MODSECURITY.org", ErrPartial},
		{"epoch only", "1700000000." + z, ErrPartial},
		{"non-base32 digit", "GIXD1SLR" + epoch + z, ErrNotBase32},
		{"non-base32 digit, no epoch", "GIXD1SLR." + z, ErrNotBase32},
		{"padding", "MFRGG===" + epoch + z, ErrNotBase32},
		{"padding on a real tail", "GE2CYNZV.JSHAYTQ=" + epoch + z, ErrNotBase32},
		{"binary bytes", "\x00\xff\x80A" + epoch + z, ErrNotBase32},
		{"escaped byte", `\000AAAAA` + epoch + z, ErrNotBase32},
		{"hyphen", "GIXD-SLR" + epoch + z, ErrNotBase32},
		{"empty label", "GIXDSLRX..GE2CYNZV" + epoch + z, ErrNotBase32},
		{"leading empty label", "." + good + epoch + z, ErrNotBase32},
		{"empty label above zone", good + ".." + z, ErrNotBase32},
		{"empty label below zone", "." + z, ErrNotBase32},
		{"impossible length, no epoch", "GIXDSLRXF." + z, ErrNotBase32},
		{"impossible length with epoch", "GIXDSLRXF" + epoch + z, ErrPartial},
		{"255-byte name", strings.Repeat(strings.Repeat("A", 63)+".", 3) + strings.Repeat("A", 38) + epoch + z, ErrTooLong},
		{"13-digit epoch", good + ".1795549302000." + z, ErrEpoch},
		{"overflowing epoch", good + ".99999999999999999999999." + z, ErrEpoch},
		{"not a beacon", "G5STIMBRGU2TKZJUHFTDOYTCMNSTOZRT.GJQTOZDDGNQTMNRTMQYWIZDDMJRGMMDF" + epoch + z, ErrFieldCount},
		{"six fields", Encode("2.9.7,Apache,1.7.2/1.7.2,10.42/,Lua 5.1,75", 1700000000, z), ErrFieldCount},
		{"bad id", Encode("2.9.7,Apache,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,7g", 1700000000, z), ErrFieldGrammar},
		{"bad id length", Encode("2.9.7,Apache,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75a", 1700000000, z), ErrFieldGrammar},
		{"bad modsec char", Encode("2.9.7!,Apache,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75", 1700000000, z), ErrFieldGrammar},
		{"binary beacon", Encode("2.9.7,Apa\x00he,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75", 1700000000, z), ErrFieldGrammar},
		{"bad pcre, no epoch", Encode("2.9.7,Apache,1.7.2/1.7.2,10.42,Lua 5.1,2.9.14,75", -1, z), ErrFieldGrammar},
		{"modsec not a version", Encode("v2.9.7,Apache,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75", 1700000000, z), ErrFieldGrammar},
		{"random base32", "AAAAAAAA" + epoch + z, ErrFieldGrammar},
		{"hex, no comma, 40 chars", Encode(strings.Repeat("a", 40), 1700000000, z), ErrFieldCount},
		{"tail inside a version", Encode("7.2,8.45/8.45 2021-06-15,(null),2.9.14,no unique id", 1700000000, z), ErrPartial},
		{"tail inside the id", Encode("o unique id", 1700000000, z), ErrPartial},
		{"tail inside a hex id", Encode("dbe459b8", -1, z), ErrPartial},
		{"tail with a bad id", Encode("14,7", 1700000000, z), ErrFieldCount},
		{"tail with a bad libxml", Encode("1,Lua 5.1,Lua 5.1,75", 1700000000, z), ErrFieldCount},
		{"2014 tail", Encode("Lua 5.1/(null),2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8", 1700000000, z), ErrPartial},
		{"2014 tail, lua without pair", Encode("x,Lua 5.1,2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8", 1700000000, z), ErrFieldCount},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Decode(tc.qname, z)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%q) = %v, want %v", tc.qname, err, tc.want)
			}
			if r != (Report{}) {
				t.Errorf("Decode(%q) returned a report with its error: %+v", tc.qname, r)
			}
			want := "malformed"
			if tc.want == ErrPartial {
				want = "partial"
			}
			if got := Outcome(err); got != want {
				t.Errorf("Outcome(%v) = %q, want %q", err, got, want)
			}
		})
	}
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrPartial, "partial"},
		{ErrNotInZone, "malformed"},
		{ErrNotBase32, "malformed"},
		{ErrFieldCount, "malformed"},
		{ErrEpoch, "malformed"},
		{ErrTooLong, "malformed"},
		{errID, "malformed"},
	}
	for _, tc := range tests {
		if got := Outcome(tc.err); got != tc.want {
			t.Errorf("Outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	benches := []struct{ name, qname string }{
		{"report", captured0x20[0].name},
		{"partial", capturedPartial[3]},
		{"garbage", "GIXD1SLR.1795549302.status.modsecurity.org."},
	}
	for _, bc := range benches {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Decode(bc.qname, statusZone)
			}
		})
	}
}
