package advisory

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"2.9.7", true}, {"2", true}, {"2.4.062", true}, {"1.2.3.4.5.6.7.8", true},
		{"", false}, {"2.9.7-dev", false}, {"2..7", false}, {".2", false}, {"2.9.", false}, {"v2.9", false},
		{"2.4.62-1~deb12u1", false}, {"1.2.3.4.5.6.7.8.9", false}, {"9999999999", false}, {"(null)", false},
	} {
		if _, ok := ParseVersion(tc.in); ok != tc.ok {
			t.Errorf("ParseVersion(%q) ok %v, want %v", tc.in, ok, tc.ok)
		}
	}
	for _, tc := range []struct {
		a, b string
		want int
	}{{"2.9.7", "2.9.10", -1}, {"2.4", "2.4.0", 0}, {"2.10", "2.9.99", 1}, {"10.42", "8.45", 1}} {
		a, _ := ParseVersion(tc.a)
		b, _ := ParseVersion(tc.b)
		if got := a.Compare(b); got != tc.want {
			t.Errorf("%s vs %s: %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestExtract(t *testing.T) {
	for _, tc := range []struct {
		pkg, value, want string // want "" means unknown
	}{
		{"modsecurity", "2.9.7", "2.9.7"},
		{"modsecurity", "2.9.7-dev", ""},
		{"httpd", "Apache/2.4.62", "2.4.62"},
		{"httpd", "Apache/2.4.62 (Debian)", "2.4.62"},
		{"httpd", "Apache", ""},
		{"httpd", "nginx/1.24.0", ""},
		{"httpd", "Microsoft-IIS/10.0", ""},
		{"pcre", "8.45 2021-06-15", "8.45"},
		{"pcre", "10.42", ""},
		{"pcre2", "10.42 2022-12-11", "10.42"},
		{"pcre2", "8.45", ""},
		{"lua", "Lua 5.1", "5.1"},
		{"lua", "(null)", ""},
		{"libxml2", "2.9.14", "2.9.14"},
		{"apr", "1.7.0", "1.7.0"},
	} {
		v, ok := mappingOf(tc.pkg).Extract(tc.value)
		got := ""
		if ok {
			got = v.String()
		}
		if got != tc.want {
			t.Errorf("%s %q: %q, want %q", tc.pkg, tc.value, got, tc.want)
		}
	}
	// The mappings of one field hold disjoint values (Index relies on it).
	for _, v := range []string{"8.45", "10.42", "9.1", "11.0"} {
		n := 0
		for _, name := range []string{"pcre", "pcre2"} {
			if _, ok := mappingOf(name).Extract(v); ok {
				n++
			}
		}
		if n != 1 {
			t.Errorf("pcre value %q maps to %d packages", v, n)
		}
	}
}

// record writes an OSV record of package pkg with the given ranges.
func record(id, pkg, ranges string) string {
	return fmt.Sprintf(`{"id":%q,"affected":[{"package":{"name":%q},"ranges":[%s]}]}`, id, pkg, ranges)
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct {
		name, ranges string
		in, out      []string
	}{
		{"introduced and fixed", `{"type":"ECOSYSTEM","events":[{"introduced":"2.8.0"},{"fixed":"2.9.5"}]}`,
			[]string{"2.8.0", "2.9.4", "2.9.4.1"}, []string{"2.7.7", "2.9.5", "2.9.10", "2.9.4-dev"}},
		{"introduced 0", `{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.9.6"}]}`,
			[]string{"0.1", "2.5.13", "2.9.5"}, []string{"2.9.6", "3.0.0"}},
		{"last_affected", `{"type":"ECOSYSTEM","events":[{"introduced":"2.4.0"},{"last_affected":"2.4.51"}]}`,
			[]string{"2.4.0", "2.4.51"}, []string{"2.2.34", "2.4.52"}},
		{"never closes", `{"type":"SEMVER","events":[{"introduced":"2.9.8"}]}`,
			[]string{"2.9.8", "99.0"}, []string{"2.9.7"}},
		{"events out of order", `{"type":"ECOSYSTEM","events":[{"fixed":"2.9.6"},{"introduced":"2.9.0"},{"fixed":"2.8.1"},{"introduced":"2.8.0"}]}`,
			[]string{"2.8.0", "2.9.0", "2.9.5"}, []string{"2.8.1", "2.8.9", "2.9.6"}},
		{"several ranges", `{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.9.6"}]},{"type":"ECOSYSTEM","events":[{"introduced":"3.0.0"},{"fixed":"3.0.8"}]}`,
			[]string{"2.9.5", "3.0.7"}, []string{"2.9.6", "3.0.8", "3.1"}},
		{"git range ignored", `{"type":"GIT","events":[{"introduced":"0"},{"fixed":"abc123"}]}`,
			nil, []string{"2.9.5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as, err := Parse("t.json", []byte(record("X-1", "ModSecurity", tc.ranges)))
			if err != nil || len(as) != 1 {
				t.Fatalf("%v %v", as, err)
			}
			for _, v := range tc.in {
				if !as[0].Affects(FieldModsec, v) {
					t.Errorf("%s not affected", v)
				}
			}
			for _, v := range tc.out {
				if as[0].Affects(FieldModsec, v) {
					t.Errorf("%s affected", v)
				}
			}
		})
	}
}

func TestParseRecords(t *testing.T) {
	withdrawn := `[{"id":"W-1","withdrawn":"2024-01-01T00:00:00Z","affected":[{"package":{"name":"ModSecurity"},"versions":["2.9.7"]}]},` +
		record("K-1", "ModSecurity", `{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.9.6"}]}`) + `,` +
		`{"id":"N-1","affected":[{"package":{"ecosystem":"npm","name":"left-pad"},"versions":["1.0.0"]}]}]`
	as, err := Parse("w.json", []byte(withdrawn))
	if err != nil || len(as) != 2 || as[0].ID != "K-1" || as[1].ID != "N-1" || len(as[1].Fields) != 0 {
		t.Fatalf("withdrawn or foreign records: %v %v", as, err)
	}
	for _, tc := range []struct{ name, data, want string }{
		{"no id", `{"affected":[]}`, "w.json: record 1: no id"},
		{"bad event", `[{"id":"A"},` + record("B-2", "ModSecurity", `{"type":"ECOSYSTEM","events":[{"introduced":"0","fixed":"2.9.6"}]}`) + `]`,
			`w.json: record 2 ("B-2"): affected[0] (ModSecurity) ranges[0]: events[0] must hold one of`},
		{"bad version", record("C-3", "httpd", `{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.4.62-1~deb12u1"}]}`),
			`w.json: record 1 ("C-3"): affected[0] (httpd) ranges[0]: events[1]: "2.4.62-1~deb12u1" is no numeric dotted version`},
		{"not json", `{"id":`, "w.json: record 1: not an OSV record"},
		{"wrong type", `{"id":"D","affected":"x"}`, "w.json: record 1: not an OSV record"},
	} {
		_, err := Parse("w.json", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSeverity(t *testing.T) {
	if s, ok := CVSS3Score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H"); !ok || s != 7.5 {
		t.Errorf("A:H vector: %v %v, want 7.5", s, ok)
	}
	if s, ok := CVSS3Score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"); !ok || s != 9.8 {
		t.Errorf("all high: %v, want 9.8", s)
	}
	if s, ok := CVSS3Score("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"); !ok || s != 6.1 {
		t.Errorf("scope changed: %v, want 6.1", s)
	}
	if _, ok := CVSS3Score("CVSS:3.1/AV:X"); ok {
		t.Error("a broken vector scored")
	}
}

// TestDefaultSet holds every embedded advisory to the versions its source
// names: a version inside the range, and the first fixed (or the next)
// version outside it.
func TestDefaultSet(t *testing.T) {
	s := Default()
	cases := []struct {
		id       string
		field    Field
		in, out  []string
		severity string
		source   string // what the range was read from
	}{
		{"CVE-2013-5705", FieldModsec, []string{"2.7.5", "2.6.8"}, []string{"2.7.6", "2.9.7"}, SevUnknown,
			"CVE record: ModSecurity before 2.7.6; CHANGES 2.7.6 (Security Issues)"},
		{"CVE-2021-42717", FieldModsec, []string{"2.8.0", "2.9.4"}, []string{"2.7.7", "2.9.5"}, SevHigh,
			"CVE record: 2.8.0 through 2.9.4; NVD CVSS 7.5; CHANGES 2.9.5"},
		{"CVE-2022-48279", FieldModsec, []string{"2.9.5", "2.7.7", "3.0.7"}, []string{"2.9.6", "3.0.8"}, SevUnknown,
			"CVE record: before 2.9.6 and 3.x before 3.0.8"},
		{"CVE-2023-24021", FieldModsec, []string{"2.9.6", "2.9.3"}, []string{"2.9.7"}, SevUnknown,
			"CVE record: before 2.9.7"},
		{"CVE-2025-48866", FieldModsec, []string{"2.9.9", "2.9.7"}, []string{"2.9.10"}, SevHigh,
			"CVE record (GitHub CNA): < 2.9.10, CVSS 7.5"},
		{"CVE-2013-1915", FieldModsec, []string{"2.7.2", "2.6.8"}, []string{"2.7.3", "2.9.7"}, SevUnknown,
			"CVE record: ModSecurity before 2.7.3; CHANGES 2.7.3 (SECURITY: SecXmlExternalEntity)"},
		{"CVE-2013-2765", FieldModsec, []string{"2.7.3", "2.5.13"}, []string{"2.7.4", "2.7.7"}, SevUnknown,
			"CVE record: ModSecurity before 2.7.4; CHANGES 2.7.4 (Security Issues)"},
		{"CVE-2025-52891", FieldModsec, []string{"2.9.8", "2.9.10"}, []string{"2.9.7", "2.9.11"}, SevMedium,
			"CVE record (GitHub CNA): >= 2.9.8, < 2.9.11, CVSS 6.5"},
		{"CVE-2025-54571", FieldModsec, []string{"2.9.11", "2.7.7"}, []string{"2.9.12"}, SevMedium,
			"CVE record (GitHub CNA): < 2.9.12, CVSS 4.0 6.9 MEDIUM"},
		{"CVE-2017-9798", FieldServer, []string{"Apache/2.2.34", "Apache/2.2.15", "Apache/2.4.27", "Apache/2.4.6"}, []string{"Apache/2.4.28", "Apache/2.4.62"}, SevUnknown,
			"CVE record (Apache): through 2.2.34 and 2.4.x through 2.4.27"},
		{"CVE-2021-41773", FieldServer, []string{"Apache/2.4.49"}, []string{"Apache/2.4.48", "Apache/2.4.50"}, SevCritical,
			"CVE record (Apache): 2.4.49 only, critical"},
		{"CVE-2021-42013", FieldServer, []string{"Apache/2.4.49", "Apache/2.4.50"}, []string{"Apache/2.4.48", "Apache/2.4.51"}, SevCritical,
			"CVE record (Apache): 2.4.49 and 2.4.50, critical"},
		{"CVE-2021-44790", FieldServer, []string{"Apache/2.4.51", "Apache/2.4.6"}, []string{"Apache/2.4.52", "Apache/2.2.34"}, SevHigh,
			"CVE record (Apache): 2.4 <= 2.4.51, high"},
		{"CVE-2023-25690", FieldServer, []string{"Apache/2.4.0", "Apache/2.4.55"}, []string{"Apache/2.4.56", "Apache/2.2.34"}, SevHigh,
			"CVE record (Apache): 2.4.0 through 2.4.55, important"},
		{"CVE-2024-38476", FieldServer, []string{"Apache/2.4.59", "Apache/2.4.10"}, []string{"Apache/2.4.60", "Apache/2.2.15"}, SevHigh,
			"CVE record (Apache): 2.4.0 <= 2.4.59, important; fixed in 2.4.60"},
	}
	if len(s.Advisories) != len(cases) {
		t.Errorf("the default set has %d advisories, the table %d: each needs its row", len(s.Advisories), len(cases))
	}
	for _, tc := range cases {
		var a *Advisory
		for _, x := range s.Advisories {
			if x.ID == tc.id {
				a = x
			}
		}
		if a == nil {
			t.Errorf("%s: not in the default set", tc.id)
			continue
		}
		for _, v := range tc.in {
			if !a.Affects(tc.field, v) {
				t.Errorf("%s: %s is not affected (source: %s)", tc.id, v, tc.source)
			}
		}
		for _, v := range tc.out {
			if a.Affects(tc.field, v) {
				t.Errorf("%s: %s is affected (source: %s)", tc.id, v, tc.source)
			}
		}
		if a.Severity != tc.severity {
			t.Errorf("%s: severity %s, want %s", tc.id, a.Severity, tc.severity)
		}
		if len(a.References) == 0 || !strings.Contains(strings.Join(a.References, " "), "cve.org/CVERecord?id="+tc.id) {
			t.Errorf("%s: references do not cite its CVE record: %v", tc.id, a.References)
		}
		if tc.field == FieldServer && !strings.Contains(a.Note, "backport") {
			t.Errorf("%s: no backport note", tc.id)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	own := record("LOCAL-1", "libxml2", `{"type":"ECOSYSTEM","events":[{"introduced":"2.9.0"},{"fixed":"2.9.14"}]}`)
	replaced := record("CVE-2023-24021", "ModSecurity", `{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.9.8"}]}`)
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(own), 0o644)
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(replaced), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not read"), 0o644)
	base := Default()
	s, err := Load(dir, base, false)
	if err != nil || len(s.Advisories) != 2 {
		t.Fatalf("replace: %v %v", s, err)
	}
	s, err = Load(dir, base, true)
	if err != nil || len(s.Advisories) != len(base.Advisories)+1 {
		t.Fatalf("extend: %d advisories, %v", len(s.Advisories), err)
	}
	for _, a := range s.Advisories {
		if a.ID == "CVE-2023-24021" && !a.Affects(FieldModsec, "2.9.7") {
			t.Error("extend: the directory's record does not replace the default one of the same id")
		}
	}
	if got := s.Fields(); len(got) != 3 {
		t.Errorf("fields %v, want modsec server libxml", got)
	}
	os.WriteFile(filepath.Join(dir, "c.json"), []byte(`[`+own+`,{"id":"BAD 1"}]`), 0o644)
	_, err = Load(dir, base, true)
	var re *RecordError
	if !errors.As(err, &re) || re.File != filepath.Join(dir, "c.json") || re.Record != 2 {
		t.Errorf("a malformed record: %v, want c.json record 2", err)
	}
}

// TestHostileFiles: files built to be expensive are refused or read in
// bounded time.
func TestHostileFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(data), 0o644)
		return p
	}
	// 10,000 records whose ranges never close: loads, and an index of
	// 10,000 values costs a binary search per range.
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < MaxRecords; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(record(fmt.Sprintf("H-%d", i), "ModSecurity", fmt.Sprintf(`{"type":"ECOSYSTEM","events":[{"introduced":"2.%d"}]}`, i)))
	}
	b.WriteString("]")
	start := time.Now()
	s, err := Load(write("many.json", b.String()), nil, false)
	if err != nil || len(s.Advisories) != MaxRecords {
		t.Fatalf("10,000 records: %v", err)
	}
	values := make([]string, 10000)
	for i := range values {
		values[i] = fmt.Sprintf("2.%d", i)
	}
	ix := s.Index(FieldModsec, values)
	if len(ix.Order) != len(values) || len(ix.Spans) != MaxRecords {
		t.Errorf("index: %d values, %d advisories with spans", len(ix.Order), len(ix.Spans))
	}
	if sp := ix.Spans[0]; len(sp) != 1 || sp[0] != [2]int{0, 10000} {
		t.Errorf("H-0 never closes: spans %v, want all values", sp)
	}
	t.Logf("10,000 records loaded and indexed in %v", time.Since(start))

	// One more record is refused.
	tooMany := strings.TrimSuffix(b.String(), "]") + "," + record("H-X", "ModSecurity", `{"type":"ECOSYSTEM","events":[{"introduced":"0"}]}`) + "]"
	if _, err := Load(write("toomany.json", tooMany), nil, false); err == nil || !strings.Contains(err.Error(), "more than 10000 records") {
		t.Errorf("10,001 records: %v", err)
	}
	// Deep JSON: refused before decoding.
	deep := `{"id":"D","database_specific":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`
	if _, err := Load(write("deep.json", deep), nil, false); err == nil || !strings.Contains(err.Error(), "nested deeper") {
		t.Errorf("deep JSON: %v", err)
	}
	// A huge file: at most MaxFileBytes+1 bytes are read.
	huge := write("huge.json", `{"id":"H","summary":"`+strings.Repeat("x", MaxFileBytes)+`"}`)
	if _, err := Load(huge, nil, false); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("huge file: %v", err)
	}
	// A range of too many events, an affected list too long.
	events := strings.Repeat(`{"introduced":"1.0"},`, MaxEvents) + `{"fixed":"2.0"}`
	if _, err := Load(write("events.json", record("E", "ModSecurity", `{"type":"ECOSYSTEM","events":[`+events+`]}`)), nil, false); err == nil || !strings.Contains(err.Error(), "events") {
		t.Errorf("too many events: %v", err)
	}
	// A directory of more than MaxFiles files is refused.
	many := t.TempDir()
	for i := 0; i <= MaxFiles; i++ {
		os.WriteFile(filepath.Join(many, fmt.Sprintf("%05d.json", i)), []byte(`[]`), 0o644)
	}
	if _, err := Load(many, nil, false); err == nil || !strings.Contains(err.Error(), "more than 10000 files") {
		t.Errorf("10,001 files: %v", err)
	}
	// A symbolic link in a directory is not followed.
	sub := t.TempDir()
	os.Symlink(huge, filepath.Join(sub, "link.json"))
	if s, err := Load(sub, nil, false); err != nil || len(s.Advisories) != 0 {
		t.Errorf("symbolic link: %v %v", s, err)
	}
	// A FIFO is refused without being opened (an open would wait for a
	// writer, and the Corefile with it).
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o600); err == nil {
		done := make(chan error, 1)
		go func() { _, err := Load(fifo, nil, false); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("FIFO: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("loading a FIFO waits")
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.json"), nil, false); err == nil {
		t.Error("a missing file loads")
	}
}

func TestIndex(t *testing.T) {
	s := Default()
	values := []string{"Apache/2.4.49", "Apache/2.4.62", "Apache", "nginx/1.24.0", "Apache/2.4.50", "Apache/2.4.6", "Apache/2.2.34"}
	ix := s.Index(FieldServer, values)
	got := map[string][]string{}
	for ai, spans := range ix.Spans {
		for _, sp := range spans {
			for k := sp[0]; k < sp[1]; k++ {
				got[s.Advisories[ai].ID] = append(got[s.Advisories[ai].ID], values[ix.Order[k]])
			}
		}
	}
	// Index agrees with Affects for every value and advisory.
	for ai, a := range s.Advisories {
		for _, v := range values {
			in := strings.Contains(" "+strings.Join(got[a.ID], " ")+" ", " "+v+" ")
			if in != a.Affects(FieldServer, v) {
				t.Errorf("%s %s: index %v, Affects %v", a.ID, v, in, a.Affects(FieldServer, v))
			}
		}
		_ = ai
	}
	if len(ix.Order) != 5 {
		t.Errorf("order holds %d values, want the 5 Apache versions", len(ix.Order))
	}
}

func TestUnknown(t *testing.T) {
	s := Default() // modsec and server (Apache) advisories
	for _, tc := range []struct {
		f       Field
		value   string
		unknown bool
	}{
		{FieldModsec, "2.9.7", false},
		{FieldModsec, "2.9.7-dev", true},
		{FieldModsec, "", false},
		{FieldServer, "Apache/2.4.62", false},
		{FieldServer, "Apache", true},
		{FieldServer, "Apache/2.4.x", true},
		{FieldServer, "nginx", false},
		{FieldServer, "IIS", false},
		{FieldPCRE, "garbage", false}, // no advisory of the default set names PCRE
	} {
		if got := s.Unknown(tc.f, tc.value); got != tc.unknown {
			t.Errorf("%s %q: unknown %v, want %v", tc.f, tc.value, got, tc.unknown)
		}
	}
}
