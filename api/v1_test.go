package api

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const testToken = "t0ken-for-tests"

// cityPlaces is the test City database: one /24 per city, and the
// documentation /24 192.0.2.0/24 left out (so it geolocates to unknown).
var cityPlaces = []geotest.Place{
	{Network: "198.51.100.0/24", Country: "DE", Name: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405},
	{Network: "203.0.113.0/24", Country: "US", Name: "United States", City: "Ashburn", Lat: 39.04, Lon: -77.49},
	{Network: "100.0.0.0/24", Country: "BR", City: "São Paulo", Lat: -23.55, Lon: -46.63},
	{Network: "100.0.1.0/24", Country: "JP", Name: "Japan", City: "Tokyo", Lat: 35.68, Lon: 139.69},
	{Network: "2001:db8:1::/48", Country: "FR", Name: "France", City: "Paris", Lat: 48.85, Lon: 2.35},
}

var resolverNets = []string{"198.51.100.", "203.0.113.", "100.0.0.", "100.0.1.", "192.0.2.", "10.0.0."}

// fixture is a server over a store holding generated reports.
type fixture struct {
	srv  *Server
	st   *store.Store
	http *httptest.Server
	base time.Time // first day of the reports, UTC midnight
	n    int
}

// newFixture stores n reports over 12 days ending yesterday, from many
// installations in several countries, geolocated with a real City database.
func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	loc, err := geo.Open(geotest.WriteCity(t, cityPlaces))
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()

	r := rand.New(rand.NewPCG(42, 7))
	modsecs := []string{"2.9.3", "2.9.7", "2.9.8", "2.9.10", "2.8.0"}
	servers := []string{"Apache/2.4.71 (Debian)", "Apache/2.4.62 (Unix)", "nginx", "IIS", "Apache"}
	type install struct {
		beacon   string
		resolver netip.Addr
		ecs      netip.Prefix
	}
	installs := make([]install, 400)
	for i := range installs {
		in := install{
			beacon: fmt.Sprintf("%s,%s,1.7.2/1.7.%d,10.42/,Lua 5.%d,2.9.14,%02x", modsecs[r.IntN(len(modsecs))],
				servers[r.IntN(len(servers))], r.IntN(3), 1+r.IntN(3), r.IntN(256)),
			resolver: netip.MustParseAddr(resolverNets[r.IntN(len(resolverNets))] + fmt.Sprint(1+r.IntN(250))),
		}
		if i%10 == 0 {
			in.ecs = netip.MustParsePrefix("2001:db8:1:" + fmt.Sprintf("%x", i) + "::/56").Masked()
		}
		installs[i] = in
	}
	// One report whose server field tries markup, as a hostile client could.
	installs[0].beacon = "2.9.8,<script>alert(1)</script>,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,ff"

	base := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -12)
	im := store.NewImporter(st, func(at int, err error) { t.Errorf("record %d rejected: %v", at, err) })
	for i := range n {
		in := installs[r.IntN(len(installs))]
		epoch := base.Unix() + int64(i)
		// Through the wire codec, as a real report arrives.
		rep, err := codec.Decode(codec.Encode(in.beacon, epoch, "status.modsecurity.org."), "status.modsecurity.org.")
		if err != nil {
			t.Fatalf("decode of generated report: %v", err)
		}
		rec := &record.Record{
			Received: base.Add(time.Duration(r.Int64N(int64(12 * 24 * time.Hour)))),
			Zone:     "status.modsecurity.org.",
			Resolver: in.resolver,
			ECS:      in.ecs,
			Report:   rep,
		}
		rec.Geo = loc.Locate(rec.Resolver, rec.ECS)
		if err := im.Add(rec, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Flush(); err != nil {
		t.Fatal(err)
	}
	if im.Stats.Imported != n {
		t.Fatalf("imported %d of %d", im.Stats.Imported, n)
	}
	s := New()
	s.SetStore(st)
	// The floor off: these tests compare every group with the records
	// (floor_test.go holds the floor to them).
	s.SetConfig(Config{CityDatabase: true, PublicMin: NoFloor})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &fixture{srv: s, st: st, http: hs, base: base, n: n}
}

// get fetches path and decodes a JSON body into v (when not nil).
func (f *fixture) get(t *testing.T, path, token string, v any) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.http.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if v != nil {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %s: body is not JSON: %v: %.200s", path, resp.Status, err, body)
		}
	}
	return resp.StatusCode, resp.Header
}

// raw is what the summary must say, computed from the raw records.
type raw struct {
	reports       int
	installations map[string]bool
	ids           map[string]bool
	modsec        map[string]map[string]bool
	country       map[string]int
}

func (f *fixture) raw(t *testing.T) raw {
	out := raw{installations: map[string]bool{}, ids: map[string]bool{}, modsec: map[string]map[string]bool{}, country: map[string]int{}}
	f.st.Each(time.Unix(0, 0), time.Now().Add(time.Hour), 0, func(rec *record.Record) error {
		k := record.InstallationKey(rec)
		out.reports++
		out.installations[k] = true
		out.ids[rec.Report.ID] = true
		if out.modsec[rec.Report.Modsec] == nil {
			out.modsec[rec.Report.Modsec] = map[string]bool{}
		}
		out.modsec[rec.Report.Modsec][k] = true
		out.country[rec.Geo.Country]++
		return nil
	})
	return out
}

func TestSummaryMatchesRecords(t *testing.T) {
	f := newFixture(t, 3000)
	want := f.raw(t)
	var sum Summary
	if code, _ := f.get(t, "/api/v1/summary", "", &sum); code != 200 {
		t.Fatalf("status %d", code)
	}
	if sum.Reports != uint64(want.reports) || sum.Installations != uint64(len(want.installations)) || sum.DistinctIDs != len(want.ids) {
		t.Errorf("reports %d installations %d ids %d; want %d %d %d", sum.Reports, sum.Installations, sum.DistinctIDs,
			want.reports, len(want.installations), len(want.ids))
	}
	if sum.LatestModsec != "2.9.10" {
		t.Errorf("latest_modsec %q, want 2.9.10 (numeric, not string, order)", sum.LatestModsec)
	}
	if sum.InstallationsOnLatest != uint64(len(want.modsec["2.9.10"])) {
		t.Errorf("installations_on_latest %d, want %d", sum.InstallationsOnLatest, len(want.modsec["2.9.10"]))
	}
	if share := float64(len(want.modsec["2.9.10"])) / float64(len(want.installations)); sum.LatestShare != share {
		t.Errorf("latest_share %v, want %v", sum.LatestShare, share)
	}
	for _, name := range []string{"modsec", "platform", "server", "apr", "pcre", "lua", "libxml", "country"} {
		bs := sum.Breakdowns[name]
		var reports uint64
		for i, b := range bs {
			reports += b.Reports
			if i > 0 && !b.Other && (bs[i-1].Installations < b.Installations) {
				t.Errorf("breakdown %s not sorted by installations", name)
			}
		}
		if reports != sum.Reports {
			t.Errorf("breakdown %s adds up to %d reports, want %d", name, reports, sum.Reports)
		}
	}
	platforms := map[string]bool{}
	for _, b := range sum.Breakdowns["platform"] {
		platforms[b.Value] = true
	}
	for _, p := range []string{"Apache", "nginx", "IIS"} {
		if !platforms[p] {
			t.Errorf("platform %q missing: %v", p, platforms)
		}
	}
	for _, b := range sum.Breakdowns["country"] {
		if b.Other {
			continue
		}
		if b.Reports != uint64(want.country[b.Value]) {
			t.Errorf("country %q: %d reports, want %d", b.Value, b.Reports, want.country[b.Value])
		}
		if b.Value == "BR" && b.Name != "Brazil" {
			t.Errorf("BR is named %q (the database has no name: the ISO table must give one)", b.Name)
		}
	}
	if len(sum.TopCombinations) == 0 || len(sum.TopCombinations) > TopCombinations {
		t.Errorf("%d top combinations", len(sum.TopCombinations))
	}
	// A range before every report is empty, not an error.
	var empty Summary
	f.get(t, fmt.Sprintf("/api/v1/summary?from=%d&to=%d", f.base.Unix()-10*86400, f.base.Unix()-5*86400), "", &empty)
	if empty.Reports != 0 || empty.Installations != 0 || empty.LatestShare != 0 || empty.Breakdowns["modsec"] == nil {
		t.Errorf("empty range: %+v", empty)
	}
}

func TestReportsPaginationAndFilters(t *testing.T) {
	f := newFixture(t, 1500)
	seen := map[string]bool{}
	cursor := ""
	pages := 0
	last := ""
	for {
		var page apitypes.ReportsPage
		path := "/api/v1/reports?limit=400"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if code, _ := f.get(t, path, "", &page); code != 200 {
			t.Fatalf("status %d", code)
		}
		pages++
		for _, r := range page.Reports {
			if seen[r.Key] {
				t.Fatalf("key %s on two pages", r.Key)
			}
			if last != "" && len(r.Key) == len(last) && r.Key < last {
				t.Fatalf("keys out of order: %s after %s", r.Key, last)
			}
			seen[r.Key], last = true, r.Key
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != f.n || pages != 4 {
		t.Errorf("walked %d reports in %d pages, want %d in 4", len(seen), pages, f.n)
	}

	var page apitypes.ReportsPage
	f.get(t, "/api/v1/reports?limit=1", "", &page)
	r := page.Reports[0]
	if r.Installation == "" || r.Resolver == "" || r.Beacon == "" || r.Report == nil || r.Report.Format != "current" || r.Epoch == nil || r.Geo == nil || r.Geo.Source == "" {
		t.Errorf("fields missing: %+v", r)
	}

	tests := []struct {
		query string
		check func(record.Wire) bool
	}{
		{"modsec=2.9.8", func(r record.Wire) bool { return r.Report.Modsec == "2.9.8" }},
		{"server=Apache", func(r record.Wire) bool { return strings.HasPrefix(r.Report.Server, "Apache") }},
		{"server=Apache/2.4.71", func(r record.Wire) bool { return r.Report.Server == "Apache/2.4.71 (Debian)" }},
		{"country=DE", func(r record.Wire) bool { return r.Geo.Country == "DE" && r.Geo.Lat != nil && r.Geo.City == "Berlin" }},
		{"id=ff", func(r record.Wire) bool { return r.Report.ID == "ff" }},
		{"country=ZZ", func(record.Wire) bool { return false }},
	}
	for _, tc := range tests {
		var page apitypes.ReportsPage
		f.get(t, "/api/v1/reports?limit=1000&"+tc.query, "", &page)
		for _, r := range page.Reports {
			if !tc.check(r) {
				t.Errorf("%s: report does not match: %+v", tc.query, r)
				break
			}
		}
		if tc.query != "country=ZZ" && len(page.Reports) == 0 {
			t.Errorf("%s: no reports", tc.query)
		}
		if page.Reports == nil {
			t.Errorf("%s: reports is null, want []", tc.query)
		}
	}
}

func TestBadParameters(t *testing.T) {
	f := newFixture(t, 10)
	paths := []string{
		"/api/v1/summary?from=abc",
		"/api/v1/summary?to=-5",
		"/api/v1/summary?from=200&to=100",
		"/api/v1/summary?from=99999999999999",
		"/api/v1/map?to=1.5",
		"/api/v1/timeseries?step=minute",
		"/api/v1/timeseries?by=zone",
		"/api/v1/timeseries?step=hour&from=0&to=1700000000",
		"/api/v1/reports?limit=0",
		"/api/v1/reports?limit=1001",
		"/api/v1/reports?limit=ten",
		"/api/v1/reports?cursor=xyz",
		"/api/v1/reports?from=1&to=0",
		"/api/v1/export?format=xml",
		"/api/v1/export?from=x",
		"/api/abc/def",
		"/api/unique/1/x",
		// Cursors that are no record's key: they wrapped around to the
		// first record before.
		"/api/v1/reports?cursor=ffffffffffffffff",
		"/api/v1/reports?cursor=8000000000000000",
		"/api/v1/reports?cursor=7fffffffffffffff",
		"/api/v1/reports?cursor=0",
		"/api/v1/reports?cursor=%2B1",
		"/api/v1/reports?cursor=00000000000000001",
		// Numbers out of range or not plain digits, and repeated parameters.
		"/api/v1/summary?from=8589934592",
		"/api/v1/summary?from=%2B5",
		"/api/v1/summary?from=1&from=2",
		"/api/v1/reports?limit=%2B5",
		"/api/v1/reports?limit=5&limit=6",
		"/api/v1/reports?limit=99999999999999999999",
		"/api/v1/timeseries?step=day&step=hour",
		"/api/0/8589934592",
		"/api/unique/-1/5",
		// Adoption, churn, timeseries counts, snapshots and badges.
		"/api/v1/adoption?from=abc",
		"/api/v1/adoption?from=2&to=1",
		"/api/v1/adoption?from=1&from=2",
		"/api/v1/adoption?to=8589934592",
		"/api/v1/churn?step=hour",
		"/api/v1/churn?step=year",
		"/api/v1/churn?step=day&step=week",
		"/api/v1/churn?from=0&to=8589934591&step=day",
		"/api/v1/churn?from=%2B1",
		"/api/v1/timeseries?count=installations&step=hour",
		"/api/v1/timeseries?count=devices",
		"/api/v1/timeseries?count=reports&count=installations",
		"/api/v1/timeseries?count=installations&from=0&to=8589934591&step=day",
		"/api/v1/timeseries?from=0&to=8589934591&step=hour",
		"/api/v1/timeseries?from=0&to=8589934591&step=month",
		"/api/v1/public/daily/yesterday.json",
		"/api/v1/public/daily/2026-13-01.json",
		"/api/v1/public/daily/2026-11-24",
		"/api/v1/public/daily/2026-11-24.json.gz",
		"/api/v1/public/daily/+2026-11-24.json",
		"/api/v1/public/daily/%2e%2e",
		"/badge/latest.svg?from=abc",
		"/badge/installations.svg?to=-1",
		"/badge/latest-share.svg?from=3&to=2",
		"/badge/exposed.svg?from=abc",
		"/api/v1/exposure?step=year",
		"/api/v1/exposure?step=hour",
		"/api/v1/exposure?from=0&to=8589934591&step=day",
		"/api/v1/exposure?zone=a&zone=b",
		"/api/v1/exposure?from=2&to=1",
		// A filter or a zone given twice: which would hold?
		"/api/v1/reports?country=DE&country=FR",
		"/api/v1/reports?zone=a&zone=b",
		"/api/v1/export?modsec=2.9.7&modsec=2.9.8",
		"/api/v1/export?id=a&id=b",
	}
	for _, p := range []string{"/api/v1/summary", "/api/v1/map", "/api/v1/timeseries", "/api/v1/adoption",
		"/api/v1/churn", "/api/v1/public/daily", "/badge/latest.svg"} {
		paths = append(paths, p+"?zone=status.modsecurity.org&zone=status.example.org")
	}
	for _, p := range paths {
		var body errorBody
		code, h := f.get(t, p, "", &body)
		if code != http.StatusBadRequest || body.Error == "" || h.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %d %q, want 400 with a JSON error", p, code, body.Error)
		}
	}
	var body errorBody
	if code, _ := f.get(t, "/api/v1/reports/x/y", "", &body); code != http.StatusNotFound || body.Error == "" {
		t.Errorf("unknown endpoint: %d %q", code, body.Error)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t, 50)
	f.srv.SetConfig(Config{Token: testToken, CityDatabase: true, PublicMin: NoFloor})
	from, to := f.base.Unix(), f.base.Unix()+13*86400
	tests := []struct {
		path  string
		token string
		want  int
	}{
		{"/api/v1/reports", "", 401},
		{"/api/v1/reports", "wrong", 401},
		{"/api/v1/reports", testToken + "x", 401},
		{"/api/v1/reports", testToken, 200},
		{"/api/v1/export", "", 401},
		{"/api/v1/export", testToken, 200},
		{"/api/v1/summary", "", 200},
		{"/api/v1/timeseries", "", 200},
		{"/api/v1/map", "", 200},
		{"/api/v1/openapi.json", "", 200},
		{fmt.Sprintf("/api/%d/%d", from, to), "", 200},
	}
	for _, tc := range tests {
		code, h := f.get(t, tc.path, tc.token, nil)
		if code != tc.want {
			t.Errorf("GET %s with token %q: %d, want %d", tc.path, tc.token, code, tc.want)
		}
		if code == 401 && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without a Bearer challenge")
		}
	}
	var body errorBody
	if f.get(t, "/api/v1/reports", "", &body); body.Error == "" {
		t.Error("401 without a JSON error")
	}
	// The compatible endpoint is public, but the raw beacon is not.
	path := fmt.Sprintf("/api/%d/%d", from, to)
	var pub, priv map[string]any
	f.get(t, path, "", &pub)
	f.get(t, path, testToken, &priv)
	pr, _ := pub["results"].([]any)
	vr, _ := priv["results"].([]any)
	if len(pr) == 0 || len(pr) != len(vr) {
		t.Fatalf("compat rows: %d public, %d private", len(pr), len(vr))
	}
	// Nothing that could rebuild the beacon, or tell the installation's
	// id: the receive time in whole seconds and the installation's hash.
	for _, field := range []string{"beacon", "id", "client_epoch", "received"} {
		if _, ok := pr[0].(map[string]any)[field]; ok {
			t.Errorf("public compat row carries %s", field)
		}
		if _, ok := vr[0].(map[string]any)[field]; !ok {
			t.Errorf("authorised compat row lacks %s", field)
		}
	}
	if h, _ := pr[0].(map[string]any)["installation"].(string); len(h) != 16 {
		t.Errorf("public compat row: installation %q, want a 16-hex hash", h)
	}
	if n, _ := pub["amount"].(float64); int(n) != len(pr) {
		t.Errorf("amount %v, %d rows", pub["amount"], len(pr))
	}
	var uniq map[string]any
	f.get(t, fmt.Sprintf("/api/unique/%d/%d", from, to), "", &uniq)
	ur, _ := uniq["results"].([]any)
	hashes := map[string]bool{}
	for _, r := range ur {
		h := r.(map[string]any)["installation"].(string)
		if hashes[h] {
			t.Errorf("unique: installation %s twice", h)
		}
		hashes[h] = true
	}
	all := map[string]bool{}
	for _, r := range pr {
		all[r.(map[string]any)["installation"].(string)] = true
	}
	if len(ur) == 0 || len(hashes) != len(all) {
		t.Errorf("unique: %d rows, %d installations in the range", len(ur), len(all))
	}
	if _, ok := vr[0].(map[string]any)["beacon"]; !ok {
		t.Error("authorised compat row lacks the beacon")
	}
	row := vr[0].(map[string]any)
	if _, ok := row["dns_server"].(map[string]any)["latitude"]; !ok || row["country"] == nil {
		t.Errorf("compat row lacks location fields: %v", row)
	}
}

func TestTimeseries(t *testing.T) {
	f := newFixture(t, 2000)
	var sum Summary
	f.get(t, "/api/v1/summary", "", &sum)
	for _, q := range []string{"step=day", "step=hour", "step=week", "step=day&by=modsec", "step=hour&by=country", "step=week&by=platform"} {
		var ts Timeseries
		if code, _ := f.get(t, "/api/v1/timeseries?"+q, "", &ts); code != 200 {
			t.Fatalf("%s: status %d", q, code)
		}
		var total uint64
		for i, b := range ts.Buckets {
			total += b.Total
			var s uint64
			for _, n := range b.Series {
				s += n
			}
			if ts.By != "" && s != b.Total {
				t.Errorf("%s: bucket %d series add up to %d, total %d", q, i, s, b.Total)
			}
			if len(b.Series) > TopSeries+1 {
				t.Errorf("%s: %d series", q, len(b.Series))
			}
			if i > 0 && b.T <= ts.Buckets[i-1].T {
				t.Errorf("%s: buckets out of order", q)
			}
		}
		if total != sum.Reports {
			t.Errorf("%s: buckets add up to %d reports, summary says %d", q, total, sum.Reports)
		}
	}
	var ts Timeseries
	f.get(t, fmt.Sprintf("/api/v1/timeseries?step=day&from=%d&to=%d", f.base.Unix(), f.base.Unix()+2*86400-1), "", &ts)
	if len(ts.Buckets) != 2 || ts.Buckets[0].T != f.base.Unix() || ts.Buckets[1].T != f.base.Unix()+86400 {
		t.Errorf("two days: %+v", ts.Buckets)
	}
}

func TestMap(t *testing.T) {
	f := newFixture(t, 2000)
	var sum Summary
	f.get(t, "/api/v1/summary", "", &sum)
	var m MapData
	f.get(t, "/api/v1/map", "", &m)
	if !m.CityDatabase || len(m.Points) == 0 {
		t.Fatalf("map with a City database has no points: %+v", m)
	}
	byCode := map[string]Breakdown{}
	for _, b := range sum.Breakdowns["country"] {
		byCode[b.Value] = b
	}
	for _, c := range m.Countries {
		if b := byCode[c.Code]; b.Installations != c.Installations || b.Reports != c.Reports || c.Name == "" {
			t.Errorf("country %s: map %+v, summary %+v", c.Code, c, b)
		}
	}
	if m.Unknown.Reports != byCode[""].Reports || m.Unknown.Reports == 0 {
		t.Errorf("unknown: %+v, summary %+v", m.Unknown, byCode[""])
	}
	cities := map[[2]float64]bool{}
	for _, p := range cityPlaces {
		cities[[2]float64{float64(int(p.Lat*10+sign(p.Lat)*0.5)) / 10, float64(int(p.Lon*10+sign(p.Lon)*0.5)) / 10}] = true
	}
	for _, p := range m.Points {
		if !cities[[2]float64{p.Lat, p.Lon}] {
			t.Errorf("point %v,%v is no test city rounded to 0.1", p.Lat, p.Lon)
		}
	}
	f.srv.SetConfig(Config{PublicMin: NoFloor})
	m = MapData{}
	f.get(t, "/api/v1/map", "", &m)
	if m.CityDatabase || len(m.Points) != 0 || len(m.Countries) == 0 {
		t.Errorf("without a City database: %+v", m)
	}
}

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}

func TestExport(t *testing.T) {
	f := newFixture(t, 1200)
	req, _ := http.NewRequest("GET", f.http.URL+"/api/v1/export?format=ndjson", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(resp.Body)
	lines := 0
	for sc.Scan() {
		var r record.Wire
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Key == "" {
			t.Fatalf("line %d: %v", lines+1, err)
		}
		lines++
	}
	resp.Body.Close()
	if lines != f.n || resp.Header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("ndjson: %d lines (%s), want %d", lines, resp.Header.Get("Content-Type"), f.n)
	}

	resp, err = http.Get(f.http.URL + "/api/v1/export?format=csv&modsec=2.9.8")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 2 || strings.Join(rows[0], ",") != strings.Join(record.CSVHeader(), ",") {
		t.Fatalf("csv header %v", rows[0])
	}
	for _, row := range rows[1:] {
		if row[4] != "2.9.8" || len(row) != len(record.CSVHeader()) {
			t.Fatalf("csv row %v", row)
		}
	}
}

// TestOpenAPI holds the document to the handlers: every documented path is
// routed to a handler of that pattern and answers with the documented
// top-level properties; every API route is documented.
func TestOpenAPI(t *testing.T) {
	f := newFixture(t, 200)
	f.srv.SetConfig(Config{Token: testToken, CityDatabase: true})
	var doc struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]map[string]struct {
			Responses map[string]struct {
				Content map[string]struct {
					Schema json.RawMessage `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if code, _ := f.get(t, "/api/v1/openapi.json", "", &doc); code != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %d %q", code, doc.OpenAPI)
	}
	documented := map[string]bool{}
	from, to := fmt.Sprint(f.base.Unix()), fmt.Sprint(time.Now().Unix())
	for path, ops := range doc.Paths {
		for method, op := range ops {
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = true
			url := strings.NewReplacer("{from}", from, "{to}", to, "{file}", f.base.Format(time.DateOnly)+".json").Replace(path)
			req := httptest.NewRequest(strings.ToUpper(method), url, nil)
			if _, got := f.srv.mux.Handler(req); got != pattern {
				t.Errorf("documented %s is routed to %q", pattern, got)
				continue
			}
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			f.srv.ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Errorf("%s: status %d", pattern, rec.Code)
				continue
			}
			ok200 := op.Responses["200"]
			for ctype, c := range ok200.Content {
				if !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) && len(ok200.Content) == 1 {
					t.Errorf("%s: Content-Type %q, documented %q", pattern, rec.Header().Get("Content-Type"), ctype)
				}
				if ctype != "application/json" && ctype != "application/x-ndjson" {
					continue
				}
				body := rec.Body.Bytes()
				if ctype == "application/x-ndjson" {
					line, _, _ := strings.Cut(rec.Body.String(), "\n")
					body = []byte(line)
				}
				required := requiredProps(t, c.Schema, doc.Components.Schemas)
				var got map[string]json.RawMessage
				if err := json.Unmarshal(body, &got); err != nil {
					t.Errorf("%s: body not a JSON object: %v", pattern, err)
					continue
				}
				for _, p := range required {
					if _, ok := got[p]; !ok {
						t.Errorf("%s: documented property %q missing", pattern, p)
					}
				}
				for p := range got {
					if !documentedProp(t, c.Schema, doc.Components.Schemas, p) {
						t.Errorf("%s: property %q is not documented", pattern, p)
					}
				}
			}
		}
	}
	for _, p := range f.srv.patterns {
		if !documented[p] {
			t.Errorf("route %s is not in openapi.json", p)
		}
	}
	if len(f.srv.patterns) < 8 {
		t.Errorf("only %d routes recorded", len(f.srv.patterns))
	}
}

type schema struct {
	Ref        string                     `json:"$ref"`
	Required   []string                   `json:"required"`
	Properties map[string]json.RawMessage `json:"properties"`
}

func resolve(t *testing.T, raw json.RawMessage, schemas map[string]json.RawMessage) schema {
	var s schema
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Ref != "" {
		return resolve(t, schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")], schemas)
	}
	return s
}

func requiredProps(t *testing.T, raw json.RawMessage, schemas map[string]json.RawMessage) []string {
	r := resolve(t, raw, schemas).Required
	sort.Strings(r)
	return r
}

func documentedProp(t *testing.T, raw json.RawMessage, schemas map[string]json.RawMessage, p string) bool {
	s := resolve(t, raw, schemas)
	if s.Properties == nil {
		return true // a free-form object
	}
	_, ok := s.Properties[p]
	return ok
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"2.9.10", "2.9.8", 1},
		{"2.9.8", "2.9.8", 0},
		{"2.9.8", "2.9.8-rc1", 1},
		{"2.9", "2.9.0", -1},
		{"3.0.0", "2.9.99", 1},
		{"02.9", "2.9", 0},
		{"2.9.x", "2.9.1", -1},
	}
	for _, tc := range tests {
		if got := compareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
		if got := compareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tc.b, tc.a, got, -tc.want)
		}
	}
}

// TestReportsScanBudget: a filter that matches little reads at most
// scanBudget records per page, and the cursor goes on to the rest.
func TestReportsScanBudget(t *testing.T) {
	f := newFixture(t, 1000)
	defer func(b int) { scanBudget = b }(scanBudget)
	scanBudget = 100
	var want int
	f.st.Each(time.Unix(0, 0), time.Now(), 0, func(rec *record.Record) error {
		if rec.Report.Modsec == "2.8.0" {
			want++
		}
		return nil
	})
	got, pages, cursor := 0, 0, ""
	for {
		var page apitypes.ReportsPage
		path := "/api/v1/reports?limit=1000&modsec=2.8.0"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if code, _ := f.get(t, path, "", &page); code != 200 {
			t.Fatalf("status %d", code)
		}
		pages++
		got += len(page.Reports)
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if got != want || pages != 10 {
		t.Errorf("%d reports in %d pages, want %d in 10", got, pages, want)
	}
}
