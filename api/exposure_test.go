package api

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/advisory"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// exposureStore stores a data set with known answers, against the default
// advisories, all reported yesterday and today:
//
//	6 installations  2.9.3  Apache/2.4.49           3 networks  CVE-2021-42717, -48279, CVE-2023-24021, CVE-2025-48866, -54571,
//	                                                            and every Apache 2.4 advisory but CVE-2017-9798
//	5 installations  2.9.8  Apache/2.4.62 (Debian)  2 networks  CVE-2025-48866, -52891, -54571
//	5 installations  2.9.12 nginx                   5 networks  none
//	2 installations  2.9.6  Apache/2.4.60           1 network   CVE-2023-24021, CVE-2025-48866, -54571: under the floor
//	1 installation   2.9.7-dev Apache               1 network   unknown versions: never exposed
//
// CVE-2013-1915, -2765, -5705 (2.7.x) and CVE-2017-9798 (2.2, 2.4 up to 2.4.27) affect none of them.
func exposureStore(t *testing.T) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	var recs []*record.Record
	epoch := int64(1600000000)
	id := 0
	group := func(n, nets int, modsec, server string) {
		for i := range n {
			id++
			res := netip.AddrFrom4([4]byte{198, 51, byte(id), 1})
			if nets < n {
				res = netip.AddrFrom4([4]byte{198, 18, byte(100 + i%nets), byte(id)})
			}
			for d := range 2 {
				epoch++
				at := now.Add(-time.Duration(d*20+1) * time.Hour)
				recs = append(recs, popRecord(t, fmt.Sprintf("%s,%s,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", modsec, server, id), res, crowdPlaces[0], at, epoch))
			}
		}
	}
	group(6, 3, "2.9.3", "Apache/2.4.49")
	group(5, 2, "2.9.8", "Apache/2.4.62 (Debian)")
	group(5, 5, "2.9.12", "nginx")
	group(2, 1, "2.9.6", "Apache/2.4.60")
	group(1, 1, "2.9.7-dev", "Apache")
	im := store.NewImporter(st, func(at int, err error) { t.Errorf("record %d rejected: %v", at, err) })
	for i, rec := range recs {
		if err := im.Add(rec, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Flush(); err != nil {
		t.Fatal(err)
	}
	return serve(t, st, Config{Token: testToken}, len(recs))
}

func serve(t *testing.T, st *store.Store, cfg Config, n int) *fixture {
	s := New()
	s.SetStore(st)
	s.SetConfig(cfg)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &fixture{srv: s, st: st, http: hs, n: n}
}

// TestExposureKnown holds /api/v1/exposure to the data set's known answers.
func TestExposureKnown(t *testing.T) {
	f := exposureStore(t)
	var e Exposure
	if code, _ := f.get(t, "/api/v1/exposure?from=0", "", &e); code != 200 {
		t.Fatalf("exposure: %d", code)
	}
	if e.Installations != 19 || e.Exposed.Installations != 13 {
		t.Errorf("installations %d exposed %d, want 19 and 13 (6+5+2: the 2.9.6 pair is counted, the unknown one is not)", e.Installations, e.Exposed.Installations)
	}
	if e.Unknown.Installations != 1 {
		t.Errorf("unknown %d, want 1 (2.9.7-dev on Apache without a version)", e.Unknown.Installations)
	}
	want := map[string]uint64{"CVE-2025-48866": 13, "CVE-2025-54571": 13, "CVE-2025-52891": 5, "CVE-2023-24021": 8, "CVE-2022-48279": 6, "CVE-2021-42717": 6,
		"CVE-2021-41773": 6, "CVE-2021-42013": 6, "CVE-2021-44790": 6, "CVE-2023-25690": 6, "CVE-2024-38476": 6}
	got := map[string]uint64{}
	for _, a := range e.Advisories {
		got[a.ID] = a.Installations
		for _, v := range a.Versions {
			if v.Value == "2.9.6" || v.Value == "Apache/2.4.60" {
				t.Errorf("%s names %s, a version of 2 installations behind one network", a.ID, v.Value)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("advisories %v\nwant %v", got, want)
	}
	if e.Other.Quiet != 4 || e.Other.Advisories != 0 {
		t.Errorf("other %+v, want the 2.7.x advisories and CVE-2017-9798 quiet", e.Other)
	}
	for _, a := range e.Advisories {
		if a.ID == "CVE-2023-24021" && (a.OtherVersions != 1 || len(a.Versions) != 1 || a.Versions[0].Value != "2.9.3") {
			t.Errorf("CVE-2023-24021 versions %+v other %d, want 2.9.3 and one version folded", a.Versions, a.OtherVersions)
		}
	}
	sev := map[string]uint64{}
	for _, g := range e.BySeverity {
		sev[g.Severity] = g.Installations
	}
	if fmt.Sprint(sev) != fmt.Sprint(map[string]uint64{"critical": 6, "high": 13, "medium": 13, "unknown": 8}) {
		t.Errorf("by severity %v", sev)
	}
	if !strings.Contains(e.Caveat, "runs a version that upstream lists as affected") {
		t.Errorf("caveat %q", e.Caveat)
	}
	// The trend: every installation reports in each day of data, so each
	// step counts the range's figures exactly, an installation exposed on
	// both fields once: 13 of 19, of which 13 on a listed modsec and 6 on a
	// listed Apache.
	steps := 0
	for _, s := range e.Trend {
		if s.Installations == 0 {
			continue
		}
		steps++
		if s.Installations != 19 || s.Exposed != 13 || s.Fields[advisory.FieldModsec] != 13 || s.Fields[advisory.FieldServer] != 6 {
			t.Errorf("step %d: %d exposed of %d, fields %v; want 13 of 19, modsec 13, server 6", s.T, s.Exposed, s.Installations, s.Fields)
		}
	}
	if steps == 0 {
		t.Errorf("trend %+v: no step with installations", e.Trend)
	}
	// The badge: the same share, under the public floor whoever asks.
	code, h, body := f.fetch(t, "/badge/exposed.svg?from=0", testToken)
	if code != 200 || h.Get("Content-Type") != "image/svg+xml; charset=utf-8" || !strings.Contains(string(body), "on a version with a known advisory: 68.4%") {
		t.Errorf("badge: %d %s %.300s", code, h.Get("Content-Type"), body)
	}
	// With the token every group is named.
	var all Exposure
	f.get(t, "/api/v1/exposure?from=0", testToken, &all)
	named := false
	for _, a := range all.Advisories {
		for _, v := range a.Versions {
			named = named || v.Value == "2.9.6"
		}
	}
	if !named {
		t.Error("the token does not see 2.9.6")
	}
}

// TestExposureBrute holds /api/v1/exposure to a count from the raw
// records of the population, with and without the floor.
func TestExposureBrute(t *testing.T) {
	p := newPopulation(t, Config{Token: testToken})
	set := advisory.Default()
	from, to := p.now.Add(-90*24*time.Hour), p.now
	d0, d1 := store.DaySpan(from, to)
	installs := map[string]bool{}
	exposed := map[string]bool{}
	unknown := map[string]bool{}
	per := map[string]map[string]bool{}
	err := p.st.Each(d0, d1, 0, func(rec *record.Record) error {
		k := record.InstallationKey(rec)
		installs[k] = true
		v := rollup.ValuesOf(&rec.Report)
		if set.Unknown(advisory.FieldModsec, v.Of(rollup.DimModsec)) || set.Unknown(advisory.FieldServer, v.Of(rollup.DimServer)) {
			unknown[k] = true
		}
		for _, a := range set.Advisories {
			if a.Affects(advisory.FieldModsec, v.Of(rollup.DimModsec)) || a.Affects(advisory.FieldServer, v.Of(rollup.DimServer)) {
				exposed[k] = true
				if per[a.ID] == nil {
					per[a.ID] = map[string]bool{}
				}
				per[a.ID][k] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range exposed {
		delete(unknown, k)
	}
	q := "/api/v1/exposure?from=" + unix(from) + "&to=" + unix(to)
	for _, token := range []string{testToken, ""} {
		var e Exposure
		if code, _ := p.get(t, q, token, &e); code != 200 {
			t.Fatalf("exposure: %d", code)
		}
		if e.Installations != uint64(len(installs)) || e.Exposed.Installations != uint64(len(exposed)) {
			t.Errorf("token %q: %d installations, %d exposed; the records: %d, %d", token, e.Installations, e.Exposed.Installations, len(installs), len(exposed))
		}
		if e.Unknown.Installations != uint64(len(unknown)) {
			t.Errorf("token %q: %d unknown, the records: %d", token, e.Unknown.Installations, len(unknown))
		}
		for _, a := range e.Advisories {
			if a.Installations != uint64(len(per[a.ID])) {
				t.Errorf("token %q: %s: %d installations, the records: %d", token, a.ID, a.Installations, len(per[a.ID]))
			}
		}
		if len(e.Advisories)+e.Other.Advisories != len(per) {
			t.Errorf("token %q: %d advisories listed and %d folded, the records touch %d", token, len(e.Advisories), e.Other.Advisories, len(per))
		}
		t.Logf("token %q: %d of %d installations exposed (%.1f%%), %d advisories", token, len(exposed), len(installs), 100*e.Exposed.Share, len(e.Advisories))
	}
}

func TestExposureErrors(t *testing.T) {
	f := exposureStore(t)
	for _, tc := range []struct{ q, want string }{
		{"step=hour", "step must be one of"},
		{"step=day&step=week", "given more than once"},
		{"from=x", "from must be"},
		{"from=10&to=5", "to is before from"},
		{"from=0&to=4000000000", "too many steps"},
		{"zone=a&zone=b", "zone is given more than once"},
	} {
		code, _, body := f.fetch(t, "/api/v1/exposure?"+tc.q, "")
		if code != 400 || !strings.Contains(string(body), tc.want) || !strings.HasPrefix(string(body), "{") {
			t.Errorf("%s: %d %s, want 400 %q", tc.q, code, body, tc.want)
		}
	}
	f.srv.SetConfig(Config{Zones: []string{"status.modsecurity.org."}})
	if code, _, _ := f.fetch(t, "/api/v1/exposure?zone=status.modsecurity.org", ""); code != 200 {
		t.Errorf("the served zone: %d", code)
	}
	if code, _, body := f.fetch(t, "/api/v1/exposure?zone=other.example", ""); code != 400 {
		t.Errorf("another zone: %d %s", code, body)
	}
	// The answer names the zone asked for, also when the one before asked
	// for none (the answers are cached).
	var e Exposure
	f.get(t, "/api/v1/exposure", "", &e)
	f.get(t, "/api/v1/exposure?zone=Status.ModSecurity.org.", "", &e)
	if e.Zone != "Status.ModSecurity.org." {
		t.Errorf("zone %q", e.Zone)
	}
}

// TestExposureConfigured: the configured set replaces the default one.
func TestExposureConfigured(t *testing.T) {
	f := exposureStore(t)
	path := filepath.Join(t.TempDir(), "own.json")
	os.WriteFile(path, []byte(`{"id":"LOCAL-1","affected":[{"package":{"name":"ModSecurity"},"ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"2.9.8"},{"fixed":"2.9.9"}]}]}]}`), 0o644)
	set, err := advisory.Load(path, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.SetConfig(Config{Advisories: set})
	var e Exposure
	f.get(t, "/api/v1/exposure?from=0", "", &e)
	if e.Exposed.Installations != 5 || len(e.Advisories) != 1 || e.Advisories[0].ID != "LOCAL-1" || e.Set.Default || e.Set.Records != 1 {
		t.Errorf("configured set: %+v", e)
	}
}

// TestExposureBoundedCardinality: 5,000 distinct server versions (one
// network): with the token each advisory names at most 10 of its versions
// and counts the rest; without it, none is named — each is one installation
// behind one network — yet the totals count them all.
func TestExposureBoundedCardinality(t *testing.T) {
	const n = 5000
	f := manyValues(t, n, func(i int) string { return fmt.Sprintf("Apache/2.4.%d (Debian)", i) })
	var all Exposure
	code, _, body := f.fetch(t, "/api/v1/exposure", testToken)
	if code != 200 || len(body) > maxSummary || json.Unmarshal(body, &all) != nil {
		t.Fatalf("with the token: %d, %d bytes", code, len(body))
	}
	if len(all.Advisories) > MaxExposureAdvisories || all.Exposed.Installations != n {
		t.Errorf("with the token: %d advisories, %d exposed (every one runs ModSecurity 2.9.7)", len(all.Advisories), all.Exposed.Installations)
	}
	for _, a := range all.Advisories {
		if len(a.Versions) > MaxExposureVersions {
			t.Errorf("%s names %d versions", a.ID, len(a.Versions))
		}
		// Apache 2.4.0 to 2.4.59: 60 versions, 10 named, 50 counted.
		if a.ID == "CVE-2024-38476" && (a.Installations != 60 || len(a.Versions) != 10 || a.OtherVersions != 50) {
			t.Errorf("CVE-2024-38476: %d installations, %d versions named, %d other", a.Installations, len(a.Versions), a.OtherVersions)
		}
	}
	code, _, body = f.fetch(t, "/api/v1/exposure", "")
	var pub Exposure
	if code != 200 || json.Unmarshal(body, &pub) != nil {
		t.Fatalf("public: %d", code)
	}
	if strings.Contains(string(body), `"value":"Apache/2.4.`) || pub.Exposed.Installations != n || pub.Installations != n {
		t.Errorf("public: %d of %d exposed; names a version: %v", pub.Exposed.Installations, pub.Installations, strings.Contains(string(body), `"value":"Apache/2.4.`))
	}
	// ModSecurity 2.9.7 of 5,000 installations behind one network: its
	// advisories are folded too (one network), counted in other.
	if len(pub.Advisories) != 0 || pub.Other.Advisories == 0 {
		t.Errorf("public: %d advisories listed, %d folded", len(pub.Advisories), pub.Other.Advisories)
	}
}

// TestExposureMultiField: an advisory on two fields counts an installation
// that runs both affected versions once.
func TestExposureMultiField(t *testing.T) {
	f := exposureStore(t)
	path := filepath.Join(t.TempDir(), "two.json")
	os.WriteFile(path, []byte(`{"id":"TWO-1","affected":[`+
		`{"package":{"name":"ModSecurity"},"versions":["2.9.3","2.9.6"]},`+
		`{"package":{"name":"httpd"},"versions":["2.4.49"]}]}`), 0o644)
	set, err := advisory.Load(path, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	f.srv.SetConfig(Config{Advisories: set})
	var e Exposure
	f.get(t, "/api/v1/exposure?from=0", "", &e)
	// 2.9.3 on Apache/2.4.49: 6 (not 12); 2.9.6: 2 more.
	if e.Exposed.Installations != 8 || len(e.Advisories) != 1 || e.Advisories[0].Installations != 8 || fmt.Sprint(e.Advisories[0].Fields) != "[modsec server]" {
		t.Errorf("exposed %d, advisories %+v", e.Exposed.Installations, e.Advisories)
	}
}
