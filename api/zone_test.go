package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const appZone = "status.example.org."

// zoneFixture is a server over a store holding, today, n reports of
// appZone (a custom schema: product version os arch id), whose version is
// version(i), each from its own installation on one of 8 networks, and 10
// of ModSecurity's zone.
func zoneFixture(t *testing.T, n int, version func(i int) string) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	sc, err := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSchema([]string{appZone}, sc); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var recs []*record.Record
	for i := range n {
		r, err := codec.ParseSchema(sc, fmt.Sprintf("myapp,%s,Linux,x86_64,%x", version(i), i))
		if err != nil {
			t.Fatal(err)
		}
		r.Epoch, r.HasEpoch = int64(1e9+i), true
		recs = append(recs, &record.Record{Received: now.Add(-time.Duration(i) * time.Millisecond), Zone: appZone,
			Resolver: netip.AddrFrom4([4]byte{198, 51, byte(i % 8), 1}), Report: r.AsReport(),
			Geo: geo.Location{Country: "DE", CountryName: "Germany", Source: "resolver"}})
	}
	for i := range 10 {
		recs = append(recs, popRecord(t, fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", i),
			netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), geo.Location{}, now.Add(-time.Duration(i)*time.Second), int64(2e9+i)))
	}
	for len(recs) > 0 {
		k := min(4096, len(recs))
		if _, err := st.SubmitBatch(recs[:k]); err != nil {
			t.Fatal(err)
		}
		recs = recs[k:]
	}
	s := New()
	s.SetStore(st)
	s.SetConfig(Config{Token: testToken, Zones: []string{"status.modsecurity.org.", appZone}})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &fixture{srv: s, st: st, http: hs, n: n}
}

// TestZoneSummary: ?zone= gives a custom zone's summary, keyed by its
// field names with the public floor on every group; ModSecurity's summary
// (no zone, or one of its zones) counts its own reports only; an unknown
// or hostile zone is a 400 with a JSON message.
func TestZoneSummary(t *testing.T) {
	f := zoneFixture(t, 60, func(i int) string { return []string{"1.2.3", "1.3.0"}[i%2] })
	var sum Summary
	code, _, body := f.fetch(t, "/api/v1/summary?zone=status.example.org", "")
	if code != 200 || json.Unmarshal(body, &sum) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if sum.Zone != appZone || sum.Reports != 60 || sum.Installations != 60 || sum.Version != "version" || sum.LatestVersion != "1.3.0" ||
		sum.InstallationsOnLatest != 30 || len(sum.TopCombinations) != 0 || sum.InstallationsEverKnown != 0 {
		t.Errorf("zone summary %s", body)
	}
	for _, k := range []string{"product", "version", "os", "arch", "country"} {
		if len(sum.Breakdowns[k]) == 0 {
			t.Errorf("breakdown %q missing: %s", k, body)
		}
	}
	if _, ok := sum.Breakdowns["id"]; ok || sum.Breakdowns["modsec"] != nil {
		t.Errorf("breakdowns %v", sum.Breakdowns)
	}
	if v := sum.Breakdowns["version"]; len(v) != 2 || v[0].Installations != 30 {
		t.Errorf("version breakdown %+v", v)
	}
	for _, path := range []string{"/api/v1/summary", "/api/v1/summary?zone=status.modsecurity.org."} {
		sum = Summary{}
		code, _, body = f.fetch(t, path, testToken)
		if code != 200 || json.Unmarshal(body, &sum) != nil || sum.Zone != "" || sum.Reports != 10 || sum.Installations != 10 ||
			len(sum.Breakdowns["modsec"]) != 1 || sum.Breakdowns["modsec"][0].Value != "2.9.7" {
			t.Errorf("%s: ModSecurity's summary counts other zones: %d %s", path, code, body)
		}
	}
	for _, path := range []string{"/api/v1/summary", "/api/v1/map", "/api/v1/adoption", "/badge/latest.svg", "/api/v1/timeseries", "/api/v1/churn"} {
		for _, z := range []string{"nowhere.example.", strings.Repeat("a", 300), "%00", "status.example.org..", "<script>"} {
			code, _, body = f.fetch(t, path+"?zone="+z, "")
			if code != 400 || !json.Valid(body) || !strings.Contains(string(body), "zone") {
				t.Errorf("%s zone %.20q: %d %s", path, z, code, body)
			}
		}
	}

	// The map, adoption and the badges of the zone, by its version field.
	var m MapData
	code, _, body = f.fetch(t, "/api/v1/map?zone="+appZone, "")
	if code != 200 || json.Unmarshal(body, &m) != nil || len(m.Countries) != 1 || m.Countries[0].Code != "DE" || m.Countries[0].Installations != 60 {
		t.Errorf("zone map: %d %s", code, body)
	}
	code, _, body = f.fetch(t, "/api/v1/map", testToken)
	if code != 200 || json.Unmarshal(body, &m) != nil || len(m.Countries) != 0 || m.Unknown.Installations != 10 {
		t.Errorf("ModSecurity's map: %d %s", code, body)
	}
	var a Adoption
	code, _, body = f.fetch(t, "/api/v1/adoption?zone="+appZone, "")
	if code != 200 || json.Unmarshal(body, &a) != nil || a.Zone != appZone || a.Installations != 60 || len(a.Versions) != 2 ||
		a.Versions[0].Version != "1.3.0" || a.Levels["50"] == nil || *a.Levels["50"] != "1.3.0" || *a.Levels["75"] != "1.2.3" ||
		a.Versions[0].FirstSeen == nil || a.Versions[0].DaysTo25 == nil || *a.Versions[0].DaysTo25 != 0 {
		t.Errorf("zone adoption: %d %s", code, body)
	}
	a = Adoption{}
	code, _, body = f.fetch(t, "/api/v1/adoption", testToken)
	if code != 200 || json.Unmarshal(body, &a) != nil || a.Zone != "" || a.Installations != 10 || len(a.Versions) != 1 || a.Versions[0].Version != "2.9.7" {
		t.Errorf("ModSecurity's adoption: %d %s", code, body)
	}
	// The timeseries of the zone by a field, reports and installations; a
	// field it does not have is a 400.
	for _, count := range []string{"reports", "installations"} {
		var ts Timeseries
		code, _, body = f.fetch(t, "/api/v1/timeseries?zone="+appZone+"&by=version&count="+count, "")
		if code != 200 || json.Unmarshal(body, &ts) != nil || ts.Zone != appZone || len(ts.Buckets) == 0 {
			t.Fatalf("zone timeseries %s: %d %s", count, code, body)
		}
		last := ts.Buckets[len(ts.Buckets)-1]
		if last.Total != 60 || last.Series["1.2.3"] != 30 || last.Series["1.3.0"] != 30 {
			t.Errorf("zone timeseries %s: %s", count, body)
		}
		code, _, body = f.fetch(t, "/api/v1/timeseries?zone="+appZone+"&by=country&count="+count, "")
		if code != 200 || json.Unmarshal(body, &ts) != nil || ts.Buckets[len(ts.Buckets)-1].Series["DE"] != 60 {
			t.Errorf("zone timeseries by country %s: %d %s", count, code, body)
		}
		ts = Timeseries{}
		code, _, body = f.fetch(t, "/api/v1/timeseries?by=modsec&count="+count, testToken)
		if code != 200 || json.Unmarshal(body, &ts) != nil || ts.Zone != "" || ts.Buckets[len(ts.Buckets)-1].Total != 10 || ts.Buckets[len(ts.Buckets)-1].Series["2.9.7"] != 10 {
			t.Errorf("ModSecurity's timeseries %s: %d %s", count, code, body)
		}
	}
	for _, by := range []string{"id", "modsec", "nope"} {
		if code, _, body = f.fetch(t, "/api/v1/timeseries?zone="+appZone+"&by="+by, ""); code != 400 {
			t.Errorf("zone timeseries by %s: %d %s", by, code, body)
		}
	}
	var ch Churn
	code, _, body = f.fetch(t, "/api/v1/churn?zone="+appZone, "")
	if code != 200 || json.Unmarshal(body, &ch) != nil || ch.Zone != appZone || len(ch.Steps) == 0 || ch.Steps[len(ch.Steps)-1].Active != 60 || ch.Steps[len(ch.Steps)-1].New != 60 {
		t.Errorf("zone churn: %d %s", code, body)
	}
	ch = Churn{}
	code, _, body = f.fetch(t, "/api/v1/churn", "")
	if code != 200 || json.Unmarshal(body, &ch) != nil || ch.Zone != "" || ch.Steps[len(ch.Steps)-1].Active != 10 {
		t.Errorf("ModSecurity's churn: %d %s", code, body)
	}
	code, _, body = f.fetch(t, "/badge/latest.svg?zone="+appZone, "")
	if code != 200 || !strings.Contains(string(body), "latest status.example.org: 1.3.0") {
		t.Errorf("zone badge: %d %s", code, body)
	}
}

// TestZoneSummaryBounded: 100,000 distinct values of one field of a custom
// schema give a summary of at most 256 KiB, public or with the token, each
// breakdown at most TopValues values and other.
func TestZoneSummaryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 100,000 reports")
	}
	const n = 100000
	start := time.Now()
	f := zoneFixture(t, n, func(i int) string { return fmt.Sprintf("1.%d", i) })
	t.Logf("%d reports of distinct versions stored in %v", n, time.Since(start).Round(time.Millisecond))
	for _, token := range []string{"", testToken} {
		t0 := time.Now()
		code, _, body := f.fetch(t, "/api/v1/summary?zone="+appZone, token)
		t.Logf("token %q: summary of %d bytes in %v", token, len(body), time.Since(t0).Round(time.Millisecond))
		var sum Summary
		if code != 200 || len(body) > maxSummary || json.Unmarshal(body, &sum) != nil {
			t.Fatalf("token %q: %d, %d bytes", token, code, len(body))
		}
		rows := sum.Breakdowns["version"]
		other := rows[len(rows)-1]
		shown := len(rows) - 1
		if !other.Other || other.Values != n-shown || len(rows) > TopValues+1 || sum.Installations != n {
			t.Fatalf("token %q: %d version rows, other %+v, %d installations", token, len(rows), other, sum.Installations)
		}
		if token == "" && (shown != 0 || sum.LatestVersion != "") || token != "" && shown != TopValues {
			t.Errorf("token %q: %d versions named, latest %q", token, shown, sum.LatestVersion)
		}
	}
	for _, path := range []string{"/api/v1/adoption", "/api/v1/timeseries?by=version", "/api/v1/timeseries?by=version&count=installations", "/api/v1/map", "/api/v1/churn"} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		t0 := time.Now()
		code, _, body := f.fetch(t, path+sep+"zone="+appZone, testToken)
		t.Logf("%s: %d bytes in %v", path, len(body), time.Since(t0).Round(time.Millisecond))
		if code != 200 || len(body) > maxSummary {
			t.Errorf("%s: %d, %d bytes", path, code, len(body))
		}
	}
}

// TestZoneExportImport: a custom zone's reports leave through
// /api/v1/export and come back through /api/v1/import on a server whose
// store keeps the zone's schema, byte for byte; a server that serves the
// zone without the schema refuses each of its lines, naming why.
func TestZoneExportImport(t *testing.T) {
	f := zoneFixture(t, 20, func(i int) string { return "1.2.3" })
	code, _, exp := f.fetch(t, "/api/v1/export", testToken)
	if code != 200 || strings.Count(string(exp), appZone) != 20 {
		t.Fatalf("export: %d %s", code, exp)
	}
	importInto := func(st *store.Store) apitypes.ImportResult {
		s := New()
		s.SetStore(st)
		s.SetConfig(Config{Token: testToken, Zones: []string{"status.modsecurity.org.", appZone}})
		hs := httptest.NewServer(s)
		defer hs.Close()
		req, _ := http.NewRequest("POST", hs.URL+"/api/v1/import", bytes.NewReader(exp))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var res apitypes.ImportResult
		json.NewDecoder(resp.Body).Decode(&res)
		return res
	}
	dst, err := store.Open(filepath.Join(t.TempDir(), "dst.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	sc, _ := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"})
	if err := dst.SetSchema([]string{appZone}, sc); err != nil {
		t.Fatal(err)
	}
	if res := importInto(dst); res.Imported != 30 || res.Rejected != 0 {
		t.Fatalf("import: %+v", res)
	}
	var again bytes.Buffer
	dst.Export(&again, time.Unix(1, 0), time.Now().Add(time.Hour))
	if !bytes.Equal(again.Bytes(), exp) {
		t.Errorf("export after import differs:\n%s\nwant\n%s", again.Bytes(), exp)
	}
	// The zone filter of reports and export.
	code, _, body := f.fetch(t, "/api/v1/export?zone=STATUS.example.org", testToken)
	if code != 200 || strings.Count(string(body), "\n") != 20 || strings.Contains(string(body), "status.modsecurity.org.") {
		t.Errorf("export?zone=: %d %s", code, body)
	}
	var page struct {
		Reports []record.Wire `json:"reports"`
	}
	code, _, body = f.fetch(t, "/api/v1/reports?zone=status.modsecurity.org.&limit=1000", testToken)
	if code != 200 || json.Unmarshal(body, &page) != nil || len(page.Reports) != 10 || page.Reports[0].Zone != "status.modsecurity.org." {
		t.Errorf("reports?zone=: %d %s", code, body)
	}
	bare, err := store.Open(filepath.Join(t.TempDir(), "bare.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if res := importInto(bare); res.Imported != 10 || res.Rejected != 20 {
		t.Errorf("import without the schema: %+v", res)
	}
}

// TestZoneDefault: a server whose zones are all of custom schemas answers
// for the first of them without ?zone=; one that serves a ModSecurity zone
// too, or names no zones, answers for ModSecurity's.
func TestZoneDefault(t *testing.T) {
	f := zoneFixture(t, 6, func(i int) string { return "1.2.3" })
	for _, c := range []struct {
		zones []string
		want  string
	}{
		{[]string{appZone}, appZone},
		{[]string{"status.modsecurity.org.", appZone}, ""},
		{nil, ""},
	} {
		f.srv.SetConfig(Config{Token: testToken, Zones: c.zones})
		var sum Summary
		code, _, body := f.fetch(t, "/api/v1/summary", testToken)
		if code != 200 || json.Unmarshal(body, &sum) != nil || sum.Zone != c.want {
			t.Errorf("zones %v: %d %s, want zone %q", c.zones, code, body, c.want)
		}
	}
}

// TestZoneDaily: a past day's snapshot of a custom zone is its own
// document, kept apart from ModSecurity's (each the same bytes again), and
// the list of days links to the zone's.
func TestZoneDaily(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sc, _ := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id"}, Version: "version", Platform: "os", ID: "id"})
	if err := st.SetSchema([]string{appZone}, sc); err != nil {
		t.Fatal(err)
	}
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	var recs []*record.Record
	for i := range 7 {
		r, _ := codec.ParseSchema(sc, fmt.Sprintf("myapp,1.2.3,Linux,x86_64,%x", i))
		r.Epoch, r.HasEpoch = day.Unix()+int64(i), true
		recs = append(recs, &record.Record{Received: day.Add(time.Duration(i) * time.Hour), Zone: appZone,
			Resolver: netip.AddrFrom4([4]byte{198, 51, byte(i), 1}), Report: r.AsReport()})
	}
	recs = append(recs, popRecord(t, "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75",
		netip.MustParseAddr("203.0.113.1"), geo.Location{}, day.Add(time.Hour), day.Unix()))
	// The day after: ModSecurity's reports only, in ModSecurity's list, not in the zone's.
	modOnly := day.AddDate(0, 0, 1)
	recs = append(recs, popRecord(t, "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,76",
		netip.MustParseAddr("203.0.113.2"), geo.Location{}, modOnly.Add(time.Hour), modOnly.Unix()))
	if _, err := st.SubmitBatch(recs); err != nil {
		t.Fatal(err)
	}
	s := New()
	s.SetStore(st)
	s.SetConfig(Config{Zones: []string{"status.modsecurity.org.", appZone}})
	hs := httptest.NewServer(s)
	defer hs.Close()
	f := &fixture{srv: s, st: st, http: hs}
	name := day.Format(time.DateOnly)
	var zoneDoc, modDoc []byte
	for range 2 {
		var d Daily
		code, h, body := f.fetch(t, "/api/v1/public/daily/"+name+".json?zone="+appZone, "")
		if code != 200 || !strings.Contains(h.Get("Cache-Control"), "immutable") || json.Unmarshal(body, &d) != nil ||
			d.Summary.Zone != appZone || d.Summary.Reports != 7 || d.Summary.LatestVersion != "1.2.3" || d.Adoption.Zone != appZone {
			t.Fatalf("zone daily: %d %v %s", code, h, body)
		}
		if zoneDoc != nil && !bytes.Equal(zoneDoc, body) {
			t.Errorf("zone daily changed")
		}
		zoneDoc = body
		d = Daily{}
		code, _, body = f.fetch(t, "/api/v1/public/daily/"+name+".json", "")
		if code != 200 || json.Unmarshal(body, &d) != nil || d.Summary.Zone != "" || d.Summary.Reports != 1 {
			t.Fatalf("ModSecurity's daily: %d %s", code, body)
		}
		if modDoc != nil && !bytes.Equal(modDoc, body) {
			t.Errorf("ModSecurity's daily changed")
		}
		modDoc = body
	}
	for _, c := range []struct{ zone, suffix string }{{"", ".json"}, {appZone, ".json?zone=" + url.QueryEscape(appZone)}} {
		kept, err := st.ZoneSnapshotDays(c.zone)
		if err != nil || len(kept) != 1 || !kept[0].Equal(day) {
			t.Errorf("zone %q: kept days %v %v", c.zone, kept, err)
		}
		var l DailyList
		path := "/api/v1/public/daily"
		if c.zone != "" {
			path += "?zone=" + c.zone
		}
		code, _, body := f.fetch(t, path, "")
		if code != 200 || json.Unmarshal(body, &l) != nil || len(l.Days) == 0 || l.Days[0].URL != dailyPath+"/"+name+c.suffix || !l.Days[0].Final {
			t.Errorf("list %s: %d %s", path, code, body)
		}
		listed := false
		for _, d := range l.Days {
			listed = listed || d.Day == modOnly.Format(time.DateOnly)
		}
		if listed != (c.zone == "") {
			t.Errorf("list %s: the day of ModSecurity's reports only listed: %v, want %v", path, listed, c.zone == "")
		}
	}
	// The day of ModSecurity's reports only is not the zone's: no document, none kept.
	if code, _, body := f.fetch(t, "/api/v1/public/daily/"+modOnly.Format(time.DateOnly)+".json?zone="+appZone, ""); code != 404 {
		t.Errorf("zone daily of a day without its reports: %d %s", code, body)
	}
	if kept, err := st.ZoneSnapshotDays(appZone); err != nil || len(kept) != 1 {
		t.Errorf("zone kept days %v %v, want only %v", kept, err, day)
	}
	if code, _, body := f.fetch(t, "/api/v1/public/daily/"+name+".json?zone=nowhere.example", ""); code != 400 {
		t.Errorf("unknown zone: %d %s", code, body)
	}
}

// TestZonesList: /api/v1/zones names ModSecurity's zones and each custom
// zone served, with their titles and fields, for the page's selector.
func TestZonesList(t *testing.T) {
	f := zoneFixture(t, 3, func(i int) string { return "1.2.3" })
	f.srv.SetConfig(Config{Zones: []string{"status.modsecurity.org.", appZone}, Titles: map[string]string{appZone: "Example status"}})
	var zs Zones
	code, _, body := f.fetch(t, "/api/v1/zones", "")
	if code != 200 || json.Unmarshal(body, &zs) != nil || len(zs.Zones) != 2 {
		t.Fatalf("%d %s", code, body)
	}
	m, c := zs.Zones[0], zs.Zones[1]
	if m.Zone != "" || m.Schema != "modsecurity" || m.Title != defaultTitle || !slices.Contains(m.Fields, "modsec") ||
		c.Zone != appZone || c.Schema != "custom" || c.Title != "Example status" || strings.Join(c.Fields, ",") != "product,version,os,arch" || c.Version != "version" {
		t.Errorf("zones %s", body)
	}
	f.srv.SetConfig(Config{Zones: []string{appZone}})
	zs = Zones{}
	if code, _, body = f.fetch(t, "/api/v1/zones", ""); code != 200 || json.Unmarshal(body, &zs) != nil || len(zs.Zones) != 1 || zs.Zones[0].Title != "status.example.org" {
		t.Errorf("custom only: %d %s", code, body)
	}
}

// TestZoneExposure: exposure counts ModSecurity's zones only, whose fields
// the advisories name. A custom zone is a 400 that says so; ModSecurity's
// figures leave the custom zone's installations out.
func TestZoneExposure(t *testing.T) {
	f := zoneFixture(t, 60, func(i int) string { return "1.2.3" })
	var e errorBody
	if code, _ := f.get(t, "/api/v1/exposure?from=0&zone=status.example.org", "", &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "exposure counts ModSecurity's zones") {
		t.Errorf("a custom zone's exposure: %d %q, want 400 saying why", code, e.Error)
	}
	var ex Exposure
	if code, _ := f.get(t, "/api/v1/exposure?from=0&zone=status.modsecurity.org", testToken, &ex); code != 200 || ex.Installations != 10 {
		t.Errorf("ModSecurity's exposure: %d, %d installations; want 200 and its 10 alone", code, ex.Installations)
	}
}
