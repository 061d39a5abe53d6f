package codec

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// appSpec is the schema of docs/schemas.md's example.
var appSpec = SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"}

func mustSchema(t testing.TB, spec SchemaSpec) *Schema {
	t.Helper()
	s, err := NewSchema(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSchema(t *testing.T) {
	many := make([]string, 1000)
	for i := range many {
		many[i] = fmt.Sprintf("f%d", i)
	}
	tests := []struct {
		name    string
		spec    SchemaSpec
		wantErr string // substring; "" means success
	}{
		{"example", appSpec, ""},
		{"id only", SchemaSpec{Fields: []string{"id"}, ID: "id"}, ""},
		{"16 fields", SchemaSpec{Fields: many[:16], ID: "f15"}, ""},
		{"min_fields", SchemaSpec{Fields: []string{"v", "id", "extra"}, MinFields: 2, Version: "v", ID: "id"}, ""},
		{"1000 fields", SchemaSpec{Fields: many, ID: "f0"}, "1000 fields, at most 16"},
		{"17 fields", SchemaSpec{Fields: many[:17], ID: "f0"}, "17 fields, at most 16"},
		{"no fields", SchemaSpec{ID: "id"}, "none given"},
		{"no id", SchemaSpec{Fields: []string{"v", "os"}, Version: "v"}, "no id field"},
		{"unknown role field", SchemaSpec{Fields: []string{"v", "id"}, Version: "ver", ID: "id"}, `version: "ver" is not one of the fields`},
		{"unknown id", SchemaSpec{Fields: []string{"v"}, ID: "uid"}, `id: "uid" is not one of the fields`},
		{"two roles one field", SchemaSpec{Fields: []string{"v", "id"}, Version: "v", Platform: "v", ID: "id"}, `platform: field "v" is already the version`},
		{"duplicate", SchemaSpec{Fields: []string{"a", "b", "a"}, ID: "b"}, `"a" given twice`},
		{"dot", SchemaSpec{Fields: []string{"app.version", "id"}, ID: "id"}, `holds "."`},
		{"comma", SchemaSpec{Fields: []string{"a,b", "id"}, ID: "id"}, `holds ","`},
		{"upper case", SchemaSpec{Fields: []string{"Version", "id"}, ID: "id"}, "does not start with a lower-case letter"},
		{"digit first", SchemaSpec{Fields: []string{"1st", "id"}, ID: "id"}, "does not start with a lower-case letter"},
		{"empty name", SchemaSpec{Fields: []string{"", "id"}, ID: "id"}, "does not start"},
		{"hyphen", SchemaSpec{Fields: []string{"os-name", "id"}, ID: "id"}, `holds "-"`},
		{"non-ascii", SchemaSpec{Fields: []string{"versión", "id"}, ID: "id"}, "only a-z"},
		{"too long", SchemaSpec{Fields: []string{strings.Repeat("a", 33), "id"}, ID: "id"}, "longer than 32 bytes"},
		{"32 long", SchemaSpec{Fields: []string{strings.Repeat("a", 32), "id"}, ID: "id"}, ""},
		{"reserved", SchemaSpec{Fields: []string{"country", "id"}, ID: "id"}, `"country" is reserved`},
		{"min_fields too big", SchemaSpec{Fields: []string{"id"}, MinFields: 2, ID: "id"}, "min_fields 2 is not between 1 and 1"},
		{"min_fields negative", SchemaSpec{Fields: []string{"id"}, MinFields: -1, ID: "id"}, "min_fields -1"},
		{"id after min_fields", SchemaSpec{Fields: []string{"v", "id"}, MinFields: 1, ID: "id"}, `id: field "id" comes after min_fields 1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSchema(tc.spec)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewSchema: %v", err)
				}
				if s.IsModSecurity() || s.Name() != "custom" || !slices.Equal(s.Fields(), tc.spec.Fields) || s.ID() != tc.spec.ID {
					t.Errorf("NewSchema(%+v) = %s", tc.spec, s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewSchema(%+v) = %v, want an error with %q", tc.spec, err, tc.wantErr)
			}
			if !errors.Is(err, ErrSchemaFields) && !errors.Is(err, ErrSchemaRole) {
				t.Errorf("error %v matches neither ErrSchemaFields nor ErrSchemaRole", err)
			}
		})
	}
}

func TestSchemaString(t *testing.T) {
	if got := ModSecurity.String(); got != "modsecurity" {
		t.Errorf("ModSecurity.String() = %q", got)
	}
	s := mustSchema(t, SchemaSpec{Fields: []string{"v", "id", "x"}, MinFields: 2, Version: "v", ID: "id"})
	if got, want := s.String(), "fields v id x; min_fields 2; version v; id id"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseSchema(t *testing.T) {
	app := mustSchema(t, appSpec)
	opt := mustSchema(t, SchemaSpec{Fields: []string{"v", "id", "extra"}, MinFields: 2, Version: "v", ID: "id"})
	tests := []struct {
		name   string
		s      *Schema
		beacon string
		want   []string
		err    error
		field  string // in the error's message
	}{
		{"example", app, "myapp,1.2.3,Linux,x86_64,0123456789abcdef", []string{"myapp", "1.2.3", "Linux", "x86_64", "0123456789abcdef"}, nil, ""},
		{"null and empty", app, "myapp,(null),,x86_64,", []string{"myapp", "(null)", "", "x86_64", ""}, nil, ""},
		{"spaces trimmed", app, " myapp , 1.2 ,Linux 6.1 ,x, ab ", []string{"myapp", "1.2", "Linux 6.1", "x", "ab"}, nil, ""},
		{"all empty", app, ",,,,", []string{"", "", "", "", ""}, nil, ""},
		{"64-byte field", app, "a," + strings.Repeat("9", 64) + ",l,x,i", []string{"a", strings.Repeat("9", 64), "l", "x", "i"}, nil, ""},
		{"19-byte first field", app, strings.Repeat("p", 19) + ",1,l,x,i", []string{strings.Repeat("p", 19), "1", "l", "x", "i"}, nil, ""},
		{"min_fields: fewer", opt, "1.0,ab", []string{"1.0", "ab"}, nil, ""},
		{"min_fields: all", opt, "1.0,ab,more", []string{"1.0", "ab", "more"}, nil, ""},
		{"four fields", app, "myapp,1.2.3,Linux,0123", nil, ErrFieldCount, "want 5"},
		{"six fields", app, "myapp,1.2.3,Linux,x86_64,0123,more", nil, ErrFieldCount, "want 5"},
		{"empty beacon", app, "", nil, ErrFieldCount, "want 5"},
		{"min_fields: too few", opt, "1.0", nil, ErrFieldCount, "want 2 to 3"},
		{"min_fields: too many", opt, "1,2,3,4", nil, ErrFieldCount, "want 2 to 3"},
		// With one optional field, a beacon of all three keeps its first
		// two within 19 bytes, so that no tail keeps two fields.
		{"min_fields: head of 19", opt, "1.0," + strings.Repeat("a", 15) + ",x", []string{"1.0", strings.Repeat("a", 15), "x"}, nil, ""},
		{"min_fields: head of 20", opt, "1.0," + strings.Repeat("a", 16) + ",x", nil, ErrFieldGrammar, "v,id (the first 2 fields of a beacon of 3: over 19 bytes together)"},
		{"min_fields: fewer, long id", opt, "1.0," + strings.Repeat("a", 40), []string{"1.0", strings.Repeat("a", 40)}, nil, ""},
		{"65-byte field", app, "a," + strings.Repeat("9", 65) + ",l,x,i", nil, ErrFieldGrammar, "version"},
		{"20-byte first field", app, strings.Repeat("p", 20) + ",1,l,x,i", nil, ErrFieldGrammar, "product"},
		{"control byte", app, "a,1\x00,l,x,i", nil, ErrFieldGrammar, "printable"},
		{"non-ascii", app, "a,1,Linüx,x,i", nil, ErrFieldGrammar, "printable"},
		{"too long", app, strings.Repeat("a,", 300), nil, ErrFieldGrammar, "400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseSchema(tc.s, tc.beacon)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.field) || Outcome(err) != "malformed" {
					t.Fatalf("ParseSchema(%q) = %v, want %v naming %q", tc.beacon, err, tc.err, tc.field)
				}
				if r.Beacon != "" || r.Values != nil {
					t.Errorf("a report with the error: %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSchema(%q): %v", tc.beacon, err)
			}
			if r.Beacon != tc.beacon || !slices.Equal(r.Values, tc.want) {
				t.Errorf("ParseSchema(%q) = %q %q, want %q", tc.beacon, r.Beacon, r.Values, tc.want)
			}
		})
	}
}

func TestSchemaReportValues(t *testing.T) {
	app := mustSchema(t, appSpec)
	r, err := ParseSchema(app, "myapp,1.2.3,Linux,x86_64,ab")
	if err != nil {
		t.Fatal(err)
	}
	if r.Version() != "1.2.3" || r.Platform() != "Linux" || r.ID() != "ab" {
		t.Errorf("roles = %q %q %q", r.Version(), r.Platform(), r.ID())
	}
	if v, ok := r.Value("arch"); !ok || v != "x86_64" {
		t.Errorf(`Value("arch") = %q, %t`, v, ok)
	}
	if _, ok := r.Value("nope"); ok {
		t.Error(`Value("nope") found`)
	}
	opt := mustSchema(t, SchemaSpec{Fields: []string{"v", "id", "extra"}, MinFields: 2, ID: "id"})
	r, err = ParseSchema(opt, "1.0,ab")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Value("extra"); ok {
		t.Error("a field the beacon left out is present")
	}
	if r.Version() != "" {
		t.Errorf("no version role, Version() = %q", r.Version())
	}
}

// The built-in schema is ModSecurity's decoder unchanged: the same reports,
// the same errors, and the values of its seven fields by name.
func TestModSecuritySchema(t *testing.T) {
	for _, v := range loadVectors(t) {
		name := v.name + "."
		r, err := Decode(name, statusZone)
		sr, serr := DecodeSchema(ModSecurity, name, statusZone)
		if !errors.Is(serr, err) && serr != err {
			t.Fatalf("DecodeSchema(%s) = %v, Decode = %v", name, serr, err)
		}
		if err != nil {
			continue
		}
		if sr.Beacon != r.Beacon || sr.Epoch != r.Epoch || sr.HasEpoch != r.HasEpoch || sr.ID() != r.ID || sr.Version() != r.Modsec || sr.Platform() != r.Server {
			t.Errorf("DecodeSchema(%s) = %+v, Decode = %+v", name, sr, r)
		}
	}
	sr, err := ParseSchema(ModSecurity, realDebian)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"2.9.7", "Apache/2.4.71 (Debian)", "1.7.2/1.7.2", "10.42/", "Lua 5.1", "2.9.14", "75"}
	if !slices.Equal(sr.Values, want) {
		t.Errorf("values = %q, want %q", sr.Values, want)
	}
	if v, _ := sr.Value("pcre"); v != "10.42/" {
		t.Errorf(`Value("pcre") = %q`, v)
	}
	const beta = "2.7.7,Apache/2.4.4 (Unix),1.4.6/1.4.6, 8.32 /8.32 2012-11-30,Lua 5.1/(null),2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8"
	sr, err = ParseSchema(ModSecurity, beta)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := sr.Value("lua"); v != "Lua 5.1/(null)" {
		t.Errorf(`2014 Value("lua") = %q`, v)
	}
	// A generic beacon is malformed under ModSecurity's grammars, as before.
	if _, err := ParseSchema(ModSecurity, "myapp/1.2,Linux,x,y,z,w,abcd"); !errors.Is(err, ErrFieldGrammar) {
		t.Errorf("ParseSchema(ModSecurity, generic) = %v, want a grammar error", err)
	}
	if ModSecurity.Version() != "modsec" || ModSecurity.Platform() != "server" || ModSecurity.ID() != "id" || !ModSecurity.IsModSecurity() {
		t.Errorf("ModSecurity roles: %q %q %q", ModSecurity.Version(), ModSecurity.Platform(), ModSecurity.ID())
	}
}

func TestDecodeSchema(t *testing.T) {
	app := mustSchema(t, appSpec)
	const beacon = "myapp,1.2.3,Linux,x86_64,0123456789abcdef0123456789abcdef01234567"
	name := Encode(beacon, 1796000000, "status.example.org")
	tests := []struct {
		name, qname string
		err         error
	}{
		{"as encoded", name, nil},
		{"lower case", strings.ToLower(name), nil},
		{"0x20 zone", strings.Replace(name, "status.example.org", "StAtUs.ExAmPlE.oRg", 1), nil},
		{"no epoch", Encode(beacon, -1, "status.example.org"), nil},
		{"30-character labels", EncodeLabels(beacon, 1796000000, "status.example.org", 30), nil},
		{"apex", "status.example.org.", ErrPartial},
		{"epoch only", "1796000000.status.example.org.", ErrPartial},
		{"other zone", Encode(beacon, 1, "status.modsecurity.org"), ErrNotInZone},
		{"not base32", "GIXD!SLRX.1796000000.status.example.org.", ErrNotBase32},
		{"epoch too long", "GIXDSLRX.1796000000000.status.example.org.", ErrEpoch},
		{"too few fields, no epoch", Encode("myapp,1.2.3,Linux", -1, "status.example.org"), ErrFieldCount},
		{"too many fields", Encode(beacon+",x", 1, "status.example.org"), ErrFieldCount},
		{"field too long", Encode("a,"+strings.Repeat("1", 65)+",l,x,i", 1, "status.example.org"), ErrFieldGrammar},
		{"binary", Encode("a,1,l\x01,x,i", 1, "status.example.org"), ErrFieldGrammar},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := DecodeSchema(app, tc.qname, "status.example.org.")
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("DecodeSchema(%s) = %v, want %v", tc.qname, err, tc.err)
				}
				if r.Values != nil || r.Beacon != "" {
					t.Errorf("a report with the error: %+v", r)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeSchema(%s): %v", tc.qname, err)
			}
			if r.Beacon != beacon || r.ID() != "0123456789abcdef0123456789abcdef01234567" || r.Version() != "1.2.3" {
				t.Errorf("DecodeSchema = %+v", r)
			}
			if strings.Contains(tc.name, "no epoch") == r.HasEpoch || (r.HasEpoch && r.Epoch != 1796000000) {
				t.Errorf("epoch = %d, %t", r.Epoch, r.HasEpoch)
			}
		})
	}
}

// Every tail a QNAME-minimising resolver sends before a custom report's
// full name is partial, never a report, whatever the first field holds
// (up to its 19 bytes) and with 32- and 30-character labels; with optional
// fields (min_fields), whatever the head holds up to its 19 bytes, and
// whether the beacon carries the optional fields or not.
func TestDecodeSchemaTails(t *testing.T) {
	app := mustSchema(t, appSpec)
	opt := mustSchema(t, SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id", "locale", "tz"}, MinFields: 5, Version: "version", ID: "id"})
	ids := []string{"ab", "0123456789abcdef0123456789abcdef01234567"}
	var beacons []string
	for _, first := range []string{"a", "myapp", "Apache Traffic Srv", strings.Repeat("x", 19)} {
		for _, id := range ids {
			beacons = append(beacons, first+",1.2.3-rc1,Linux 6.1.0-13-amd64,x86_64,"+id)
		}
	}
	var optBeacons []string
	for _, head := range []string{"a,1,l", "my,1.2.3,Linux", "a,1.2.3-rc1234567,l", "p,1.2,Linux 6.1.0-1"} {
		for _, id := range ids {
			optBeacons = append(optBeacons, head+",x86_64,"+id, head+",x86_64,"+id+",fr_FR.UTF-8", head+",x86_64,"+id+",fr_FR.UTF-8,Europe/Paris")
		}
	}
	for _, c := range []struct {
		s       *Schema
		beacons []string
	}{{app, beacons}, {opt, optBeacons}} {
		app := c.s
		for _, beacon := range c.beacons {
			if _, err := ParseSchema(app, beacon); err != nil {
				t.Fatalf("%q does not fit %s: %v", beacon, app, err)
			}
			for _, labelLen := range []int{32, 30} {
				name := EncodeLabels(beacon, 1796000000, "status.example.org", labelLen)
				labels := strings.Split(strings.TrimSuffix(name, "."), ".")
				data := len(labels) - 4 // epoch, status, example, org
				for k := 1; k < data; k++ {
					tail := strings.Join(labels[k:], ".") + "."
					r, err := DecodeSchema(app, tail, "status.example.org")
					if err == nil {
						t.Errorf("tail %s of %q (labels of %d) decoded as a report: %q", tail, beacon, labelLen, r.Values)
					} else if Outcome(err) != "partial" {
						t.Errorf("tail %s of %q (labels of %d) = %v, want partial", tail, beacon, labelLen, err)
					}
				}
				if _, err := DecodeSchema(app, name, "status.example.org"); err != nil {
					t.Errorf("full name of %q: %v", beacon, err)
				}
			}
		}
	}
}

func TestSchemaExtends(t *testing.T) {
	base := mustSchema(t, appSpec)
	tests := []struct {
		name    string
		spec    SchemaSpec
		wantErr string
	}{
		{"same", appSpec, ""},
		{"added at the end", SchemaSpec{Fields: append(slices.Clone(appSpec.Fields), "locale", "arch2"), Version: "version", Platform: "os", ID: "id"}, ""},
		{"added in the middle", SchemaSpec{Fields: []string{"product", "version", "locale", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"}, "only be added at the end"},
		{"removed", SchemaSpec{Fields: []string{"product", "version", "os", "id"}, Version: "version", Platform: "os", ID: "id"}, "only be added at the end"},
		{"renamed", SchemaSpec{Fields: []string{"name", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"}, "only be added at the end"},
		{"role moved", SchemaSpec{Fields: appSpec.Fields, Version: "version", Platform: "arch", ID: "id"}, "roles change"},
	}
	for _, tc := range tests {
		s := mustSchema(t, tc.spec)
		err := s.Extends(base)
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: Extends = %v, want %q", tc.name, err, tc.wantErr)
		}
	}
	if err := base.Extends(ModSecurity); err == nil || !strings.Contains(err.Error(), "from modsecurity to custom") {
		t.Errorf("custom.Extends(ModSecurity) = %v", err)
	}
	if err := ModSecurity.Extends(ModSecurity); err != nil {
		t.Errorf("ModSecurity.Extends(ModSecurity) = %v", err)
	}
}

func TestSchemaSplitID(t *testing.T) {
	tests := []struct {
		fields []string
		id     string
		beacon string
		head   string
	}{
		{[]string{"p", "v", "id"}, "id", "app,1.2,ab", "app,1.2"},
		{[]string{"p", "v", "id"}, "id", "app,1.2,", "app,1.2"},
		{[]string{"id", "p", "v"}, "id", "ab,app,1.2", ",app,1.2"},
		{[]string{"id"}, "id", "ab", ""},
		{[]string{"id"}, "id", "", ""},
		{[]string{"p", "id", "v"}, "id", "app,ab,1.2", "app,1.2"},
		{[]string{"p", "id", "v"}, "id", "app,,", "app,"},
		{[]string{"p", "id", "v"}, "id", ",ab,", ","},
	}
	for _, tc := range tests {
		s := mustSchema(t, SchemaSpec{Fields: tc.fields, ID: tc.id})
		head, id := s.SplitID(tc.beacon)
		r, err := ParseSchema(s, tc.beacon)
		if err != nil {
			t.Fatal(err)
		}
		if head != tc.head || strings.TrimSpace(id) != r.ID() {
			t.Errorf("%s SplitID(%q) = %q, %q, want %q, %q", s, tc.beacon, head, id, tc.head, r.ID())
		}
		if got := s.JoinID(head, id); got != tc.beacon {
			t.Errorf("%s JoinID(%q, %q) = %q, want %q", s, head, id, got, tc.beacon)
		}
		hr, err := s.ParseHead(head)
		if err != nil || hr.Beacon != "" || hr.ID() != "" || len(hr.Values) != len(r.Values) {
			t.Errorf("%s ParseHead(%q) = %+v, %v", s, head, hr, err)
		}
		for i, v := range hr.Values {
			if f := s.Fields()[i]; f != s.ID() && v != r.Values[i] {
				t.Errorf("%s ParseHead(%q): %s = %q, want %q", s, head, f, v, r.Values[i])
			}
		}
	}
	head, id := ModSecurity.SplitID(realDebian)
	if h, i := SplitID(realDebian); head != h || id != i || ModSecurity.JoinID(head, id) != realDebian {
		t.Errorf("ModSecurity.SplitID(%q) = %q, %q", realDebian, head, id)
	}
	hr, err := ModSecurity.ParseHead(head)
	if want := []string{"2.9.7", "Apache/2.4.71 (Debian)", "1.7.2/1.7.2", "10.42/", "Lua 5.1", "2.9.14", ""}; err != nil || !slices.Equal(hr.Values, want) || hr.Beacon != "" {
		t.Errorf("ModSecurity.ParseHead(%q) = %q, %v", head, hr.Values, err)
	}
}

// 100,000 distinct values in one field go through the decoder with memory
// bounded: the decoder keeps nothing between reports (the live heap does
// not grow with the number of values) and allocates a fixed number of
// objects per report (the beacon and its values). What is kept per value
// is the store's and the API's bounded lists, tested there.
func TestDecodeSchemaDistinctValues(t *testing.T) {
	app := mustSchema(t, appSpec)
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		name := Encode(fmt.Sprintf("myapp,%d.%d.%d,Linux,x86_64,%040x", i/10000, i/100%100, i%100, i), 1796000000, "status.example.org")
		r, err := DecodeSchema(app, name, "status.example.org.")
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
		if want := fmt.Sprintf("%d.%d.%d", i/10000, i/100%100, i%100); r.Version() != want {
			t.Fatalf("report %d: version %q, want %q", i, r.Version(), want)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 1<<20 {
		t.Errorf("the live heap grew by %d bytes over %d distinct values", grew, n)
	}
	t.Logf("%d distinct versions decoded; live heap %d -> %d bytes", n, before.HeapAlloc, after.HeapAlloc)

	name := Encode("myapp,9.9.9,Linux,x86_64,ab", 1796000000, "status.example.org")
	if allocs := testing.AllocsPerRun(1000, func() { DecodeSchema(app, name, "status.example.org.") }); allocs > 2 {
		t.Errorf("DecodeSchema allocates %.0f objects per report, want at most 2 (beacon, values)", allocs)
	}
	garbage := Encode(strings.Repeat("x,", 30), 1796000000, "status.example.org")
	if allocs := testing.AllocsPerRun(1000, func() { DecodeSchema(app, garbage, "status.example.org.") }); allocs > 1 {
		t.Errorf("DecodeSchema of a malformed beacon allocates %.0f objects, want at most 1", allocs)
	}
}
