package codec

import (
	"errors"
	"strings"
	"testing"
)

func TestParseBeacon(t *testing.T) {
	tests := []struct {
		name   string
		beacon string
		want   Report // Beacon is filled in from beacon
	}{
		{"real debian", realDebian, Report{Format: FormatCurrent, Modsec: "2.9.7", Server: "Apache/2.4.71 (Debian)",
			APRCompiled: "1.7.2", APRLoaded: "1.7.2", PCRECompiled: "10.42", Lua: "Lua 5.1", Libxml: "2.9.14", ID: "75"}},
		{"2014 beta",
			"2.7.7,Apache/2.4.4 (Unix),1.4.6/1.4.6, 8.32 /8.32 2012-11-30,Lua 5.1/(null),2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8",
			Report{Format: Format2014, Modsec: "2.7.7", Server: "Apache/2.4.4 (Unix)", APRCompiled: "1.4.6", APRLoaded: "1.4.6",
				PCRECompiled: "8.32", PCRELoaded: "8.32 2012-11-30", Lua: "Lua 5.1", LuaLoaded: "(null)",
				Libxml: "2.7.8", LibxmlLoaded: "(null)", ID: "96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8"}},
		{"no lua, id failure", "2.9.8,Apache/2.4.62 (Ubuntu) Op,1.7.2/1.7.2,8.45/8.45 2021-06-15,(null),2.9.14,no unique id",
			Report{Format: FormatCurrent, Modsec: "2.9.8", Server: "Apache/2.4.62 (Ubuntu) Op", APRCompiled: "1.7.2", APRLoaded: "1.7.2",
				PCRECompiled: "8.45", PCRELoaded: "8.45 2021-06-15", Lua: "(null)", Libxml: "2.9.14", ID: "no unique id"}},
		{"nginx full id", "2.9.6,nginx,1.7.0/1.7.0,10.40/,(null),2.9.10,0123456789abcdef0123456789abcdef01234567",
			Report{Format: FormatCurrent, Modsec: "2.9.6", Server: "nginx", APRCompiled: "1.7.0", APRLoaded: "1.7.0",
				PCRECompiled: "10.40", Lua: "(null)", Libxml: "2.9.10", ID: "0123456789abcdef0123456789abcdef01234567"}},
		{"2.8.0 uncut server with commas", "2.8.0,Apache/2.4.10 (Unix) OpenSSL/1.0.1e-fips, mod_fcgid/2.3.9,1.5.2/1.5.2,8.32/8.32 2012-11-30,(null),2.9.1,ab",
			Report{Format: FormatCurrent, Modsec: "2.8.0", Server: "Apache/2.4.10 (Unix) OpenSSL/1.0.1e-fips, mod_fcgid/2.3.9",
				APRCompiled: "1.5.2", APRLoaded: "1.5.2", PCRECompiled: "8.32", PCRELoaded: "8.32 2012-11-30", Lua: "(null)", Libxml: "2.9.1", ID: "ab"}},
		{"missing versions", "3.0.0-rc1,IIS,(null)/(null),(null)/(null),(null),(null),00",
			Report{Format: FormatCurrent, Modsec: "3.0.0-rc1", Server: "IIS", APRCompiled: "(null)", APRLoaded: "(null)",
				PCRECompiled: "(null)", PCRELoaded: "(null)", Lua: "(null)", Libxml: "(null)", ID: "00"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBeacon(tc.beacon)
			if err != nil {
				t.Fatalf("ParseBeacon(%q): %v", tc.beacon, err)
			}
			tc.want.Beacon = tc.beacon
			if got != tc.want {
				t.Errorf("ParseBeacon(%q)\n got %+v\nwant %+v", tc.beacon, got, tc.want)
			}
		})
	}
}

func TestParseBeaconErrors(t *testing.T) {
	const tail = ",Apache,1.7.2/1.7.2,10.42/,(null),2.9.14,75"
	tests := []struct {
		name   string
		beacon string
		want   error
		field  string // in the message of a grammar error
	}{
		{"empty", "", ErrFieldCount, ""},
		{"40 hex, no commas", "7e401555e49f7bbce7f32a7dc3a663d1ddcbbf0e", ErrFieldCount, ""},
		{"six fields", "2.9.7,Apache,1.7.2/1.7.2,10.42/,(null),75", ErrFieldCount, ""},
		{"no server", "2.9.7,,1.7.2/1.7.2,10.42/,(null),2.9.14,75", ErrFieldGrammar, "server"},
		{"blank server", "2.9.7, ,1.7.2/1.7.2,10.42/,(null),2.9.14,75", ErrFieldGrammar, "server"},
		{"modsec letter first", "v2.9.7" + tail, ErrFieldGrammar, "modsec"},
		{"modsec bad char", "2.9.7!" + tail, ErrFieldGrammar, "modsec"},
		{"modsec too long", strings.Repeat("2", 26) + tail, ErrFieldGrammar, "modsec"},
		{"modsec empty", tail, ErrFieldGrammar, "modsec"},
		{"apr no slash", "2.9.7,Apache,1.7.2,10.42/,(null),2.9.14,75", ErrFieldGrammar, "apr"},
		{"apr two slashes", "2.9.7,Apache,1.7.2/1.7.2/1,10.42/,(null),2.9.14,75", ErrFieldGrammar, "apr"},
		{"apr loaded empty", "2.9.7,Apache,1.7.2/,10.42/,(null),2.9.14,75", ErrFieldGrammar, "apr"},
		{"pcre compiled empty", "2.9.7,Apache,1.7.2/1.7.2,/10.42,(null),2.9.14,75", ErrFieldGrammar, "pcre"},
		{"pcre word", "2.9.7,Apache,1.7.2/1.7.2,pcre/,(null),2.9.14,75", ErrFieldGrammar, "pcre"},
		{"lua", "2.9.7,Apache,1.7.2/1.7.2,10.42/,LuaJIT,2.9.14,75", ErrFieldGrammar, "lua"},
		{"2014 lua without pair", "2.7.7,Apache,1.4.6/1.4.6,8.32/8.32,Lua 5.1,2.7.8/(null),75", ErrFieldGrammar, "lua"},
		{"libxml", "2.9.7,Apache,1.7.2/1.7.2,10.42/,(null),libxml,75", ErrFieldGrammar, "libxml"},
		{"id 3 chars", "2.9.7,Apache,1.7.2/1.7.2,10.42/,(null),2.9.14,757", ErrFieldGrammar, "id"},
		{"id upper hex", "2.9.7,Apache,1.7.2/1.7.2,10.42/,(null),2.9.14,7A", ErrFieldGrammar, "id"},
		{"id not hex", "2.9.7,Apache,1.7.2/1.7.2,10.42/,(null),2.9.14,7g", ErrFieldGrammar, "id"},
		{"id empty", "2.9.7,Apache,1.7.2/1.7.2,10.42/,(null),2.9.14,", ErrFieldGrammar, "id"},
		{"control byte", "2.9.7,Apa\x01che" + tail[7:], ErrFieldGrammar, "printable"},
		{"non-ascii", "2.9.7,Apaché" + tail[7:], ErrFieldGrammar, "printable"},
		{"too long", "2.9.7," + strings.Repeat("x", 400) + tail[7:], ErrFieldGrammar, "400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseBeacon(tc.beacon)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ParseBeacon(%q) = %v, want %v", tc.beacon, err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %q", err, tc.field)
			}
			if r != (Report{}) {
				t.Errorf("ParseBeacon(%q) returned a report with its error: %+v", tc.beacon, r)
			}
		})
	}
}
