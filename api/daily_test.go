package api

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// TestDailySnapshots: a past day's snapshot is the day's public summary,
// map and adoption, the same bytes on every request (with or without the
// token), after a restart and after an import into that day; today's is
// live; days to come and days before the data are 404.
func TestDailySnapshots(t *testing.T) {
	p := newPopulation(t, Config{Token: testToken, CityDatabase: true})
	d := day(p.now).AddDate(0, 0, -13) // the farm and the small group report that day
	path := "/api/v1/public/daily/" + d.Format(time.DateOnly) + ".json"

	code, h, first := p.fetch(t, path, "")
	if code != 200 || h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("ETag") == "" ||
		h.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %v", path, code, h)
	}
	var doc Daily
	if err := json.Unmarshal(first, &doc); err != nil {
		t.Fatal(err)
	}
	from, to := store.DaySpan(d, d)
	raw := bruteTotals(t, p.st, from, to)
	if want := wantSummary(raw, from, to, DefaultFloor, DefaultFloor); !reflect.DeepEqual(doc.Summary, want) {
		t.Errorf("snapshot summary\n%s\nwant\n%s", show(doc.Summary), show(want))
	}
	if want := wantMap(raw, from, to, DefaultFloor, true); !reflect.DeepEqual(doc.Map, want) {
		t.Errorf("snapshot map\n%s\nwant\n%s", show(doc.Map), show(want))
	}
	if want := wantAdoption(t, p.st, p.now, from, to, DefaultFloor); !reflect.DeepEqual(doc.Adoption, want) {
		t.Errorf("snapshot adoption\n%s\nwant\n%s", show(doc.Adoption), show(want))
	}
	if doc.Day != d.Format(time.DateOnly) || doc.From != from.Unix() || doc.To != to.Unix() || doc.PublicMin != DefaultFloor ||
		doc.Summary.Reports == 0 || bytes.Contains(first, []byte("installations_ever")) {
		t.Errorf("snapshot %s: day %s from %d to %d floor %v, %d reports", path, doc.Day, doc.From, doc.To, doc.PublicMin, doc.Summary.Reports)
	}
	for _, mark := range hiddenMarks {
		if bytes.Contains(first, []byte(mark)) {
			t.Errorf("the snapshot shows %s", mark)
		}
	}

	// The same bytes: again, with the token (a snapshot is public), and
	// after an import that changes the day.
	late := popRecord(t, "2.9.8,nginx,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,77", netip.MustParseAddr("198.18.3.3"),
		crowdPlaces[0], d.Add(12*time.Hour), 1)
	if _, err := p.st.SubmitBatch([]*record.Record{late}); err != nil {
		t.Fatal(err)
	}
	// Summaries may be a second old (ResponseTTL).
	var sum Summary
	for deadline := time.Now().Add(5 * time.Second); sum.Reports != doc.Summary.Reports+1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the import did not reach the day: %d reports, the snapshot %d", sum.Reports, doc.Summary.Reports)
		}
		p.get(t, "/api/v1/summary?from="+unix(from)+"&to="+unix(to), "", &sum)
	}
	for _, token := range []string{"", testToken} {
		if _, _, again := p.fetch(t, path, token); !bytes.Equal(again, first) {
			t.Errorf("token %q: the snapshot changed:\n%s\n%s", token, first, again)
		}
	}
	req, _ := http.NewRequest("GET", p.http.URL+path, nil)
	req.Header.Set("If-None-Match", h.Get("ETag"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	// Today's: rendered live, not kept.
	today := "/api/v1/public/daily/" + day(p.now).Format(time.DateOnly) + ".json"
	if code, h, body := p.fetch(t, today, ""); code != 200 || h.Get("Cache-Control") != "public, max-age=60" || !json.Valid(body) {
		t.Errorf("today: %d %v", code, h)
	}
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/api/v1/public/daily/" + day(p.now).AddDate(0, 0, 1).Format(time.DateOnly) + ".json", 404},
		{"/api/v1/public/daily/" + day(p.now).AddDate(5, 0, 0).Format(time.DateOnly) + ".json", 404},
		{"/api/v1/public/daily/" + day(p.first).AddDate(0, 0, -1).Format(time.DateOnly) + ".json", 404},
		{"/api/v1/public/daily/2000-01-01.json", 404},
		{"/api/v1/public/daily/2026-02-30.json", 400},
		{"/api/v1/public/daily/" + d.Format(time.DateOnly), 400},
		{"/api/v1/public/daily/" + d.Format("20060102") + ".json", 400},
	} {
		var e errorBody
		if code, _ := p.get(t, tc.path, "", &e); code != tc.code || e.Error == "" {
			t.Errorf("GET %s: %d %q, want %d with a JSON error", tc.path, code, e.Error, tc.code)
		}
	}

	// The list: every day with reports, and today; mirroring it keeps
	// every final one.
	var list DailyList
	p.get(t, dailyPath, "", &list)
	withReports := map[string]bool{day(p.now).Format(time.DateOnly): true}
	p.st.Each(time.Unix(0, 0), p.now.Add(time.Hour), 0, func(r *record.Record) error {
		withReports[r.Received.UTC().Format(time.DateOnly)] = true
		return nil
	})
	if len(list.Days) != len(withReports) {
		t.Fatalf("%d days listed, want the %d with reports and today", len(list.Days), len(withReports))
	}
	for _, dd := range list.Days {
		if !withReports[dd.Day] {
			t.Errorf("%s listed without reports", dd.Day)
		}
	}
	if last := list.Days[len(list.Days)-1]; last.Final || last.URL != today {
		t.Errorf("today listed as %+v", last)
	}
	start := time.Now()
	final := 0
	for _, dd := range list.Days {
		if !dd.Final {
			continue
		}
		final++
		if code, _, _ := p.fetch(t, dd.URL, ""); code != 200 {
			t.Errorf("GET %s: %d", dd.URL, code)
		}
	}
	kept, _ := p.st.SnapshotDays()
	if len(kept) != final {
		t.Errorf("%d snapshots kept after mirroring %d final days", len(kept), final)
	}
	t.Logf("mirrored %d days in %v", final, time.Since(start).Round(time.Millisecond))

	// A restart: the kept bytes, whatever the store says now.
	p.http.Close()
	p.st.Close()
	st, err := store.Open(p.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s := New()
	s.SetStore(st)
	s.SetConfig(Config{CityDatabase: true, PublicMin: Floor{Installations: 2, Networks: 1}})
	hs := httptest.NewServer(s)
	defer hs.Close()
	resp, err := http.Get(hs.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	var after bytes.Buffer
	after.ReadFrom(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(after.Bytes(), first) {
		t.Errorf("after a restart (and another public_min) the snapshot changed:\n%s\n%s", first, after.Bytes())
	}
}

// svgBadge is what a test reads of a badge: it must parse as XML.
type svgBadge struct {
	XMLName xml.Name `xml:"svg"`
	Width   int      `xml:"width,attr"`
	Title   string   `xml:"title"`
	Texts   []string `xml:"g>text"`
}

// TestBadges: each badge is valid SVG with the public figure, the same
// whoever asks, cached publicly for a short while.
func TestBadges(t *testing.T) {
	p := newPopulation(t, Config{Token: testToken})
	var sum Summary
	p.get(t, "/api/v1/summary", "", &sum)
	want := map[string][2]string{
		"/badge/latest.svg":        {"latest ModSecurity", sum.LatestModsec},
		"/badge/latest-share.svg":  {"on latest ModSecurity", strconv.FormatFloat(100*sum.LatestShare, 'f', 1, 64) + "%"},
		"/badge/installations.svg": {"installations", groupThousands(sum.Installations)},
	}
	if sum.LatestModsec != "2.9.8" || sum.Installations < 100 {
		t.Fatalf("summary: %s %d", sum.LatestModsec, sum.Installations)
	}
	for path, w := range want {
		code, h, body := p.fetch(t, path, "")
		if code != 200 || h.Get("Content-Type") != "image/svg+xml; charset=utf-8" || h.Get("Cache-Control") != "public, max-age=300" {
			t.Errorf("%s: %d %v", path, code, h)
		}
		var b svgBadge
		if err := xml.Unmarshal(body, &b); err != nil {
			t.Errorf("%s is not XML: %v\n%s", path, err, body)
			continue
		}
		if b.Title != w[0]+": "+w[1] || len(b.Texts) != 4 || b.Texts[1] != w[0] || b.Texts[3] != w[1] || b.Width < 60 {
			t.Errorf("%s: %+v, want %q and %q", path, b, w[0], w[1])
		}
		if _, _, priv := p.fetch(t, path, testToken); !bytes.Equal(priv, body) {
			t.Errorf("%s differs with the token", path)
		}
		t.Logf("%s: %s", path, b.Title)
	}
	if !strings.Contains(want["/badge/installations.svg"][1], ",") && sum.Installations >= 1000 {
		t.Error("no thousands separator")
	}

	// An empty store, and a value that is markup.
	empty := newFixture(t, 0)
	for path := range want {
		code, _, body := empty.fetch(t, path, "")
		var b svgBadge
		if err := xml.Unmarshal(body, &b); code != 200 || err != nil || (path != "/badge/installations.svg" && b.Texts[3] != "no data") {
			t.Errorf("empty %s: %d %v %s", path, code, err, body)
		}
	}
	var b svgBadge
	if err := xml.Unmarshal(badgeSVG(`<x a="1">&`, `"'<`, badgeGrey), &b); err != nil || b.Texts[1] != `<x a="1">&` || b.Texts[3] != `"'<` {
		t.Errorf("escaping: %v %+v", err, b)
	}
}

// TestSnapshotsOutliveRetention: retention deletes the records of a day,
// never its kept snapshot.
func TestSnapshotsOutliveRetention(t *testing.T) {
	p := newPopulation(t, Config{})
	path := "/api/v1/public/daily/" + day(p.now).AddDate(0, 0, -30).Format(time.DateOnly) + ".json"
	code, _, kept := p.fetch(t, path, "")
	if code != 200 {
		t.Fatalf("GET %s: %d", path, code)
	}
	before := p.st.Count()
	p.st.Configure(store.Policy{Retention: 24 * time.Hour, SweepEvery: 100 * time.Millisecond})
	for deadline := time.Now().Add(20 * time.Second); p.st.Count() > before/10; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("retention left %d of %d records", p.st.Count(), before)
		}
	}
	if code, _, again := p.fetch(t, path, ""); code != 200 || !bytes.Equal(again, kept) {
		t.Errorf("after retention deleted %d of %d records: %d\n%s\nwas\n%s", before-p.st.Count(), before, code, again, kept)
	}
	t.Logf("retention deleted %d of %d records; the snapshot of %s stays the same %d bytes", before-p.st.Count(), before, path, len(kept))
}

// TestDailyOldRecord: one record received in 2000 (a peer's clock, an
// import) lists one day more, not every day since; GETs of days without
// reports are 404 and keep nothing (before: 9,837 days listed, and 3,000
// GETs kept 3,000 snapshots).
func TestDailyOldRecord(t *testing.T) {
	f := newFixture(t, 20)
	old := popRecord(t, "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,aa", netip.MustParseAddr("198.18.3.4"),
		crowdPlaces[0], time.Date(2000, 3, 1, 12, 0, 0, 0, time.UTC), 1)
	if res, err := f.st.SubmitBatch([]*record.Record{old}); err != nil || res[0].Outcome != store.Stored {
		t.Fatalf("storing the record of 2000: %v %v", res, err)
	}
	var list DailyList
	if code, _ := f.get(t, dailyPath, "", &list); code != 200 || len(list.Days) > 15 || list.Days[0].Day != "2000-03-01" {
		t.Fatalf("list: %d, %d days from %+v", code, len(list.Days), list.Days[:1])
	}
	empty := 0
	for d := time.Date(2000, 3, 2, 0, 0, 0, 0, time.UTC); empty < 300; d = d.AddDate(0, 0, 1) {
		var e errorBody
		if code, _ := f.get(t, dailyPath+"/"+d.Format(time.DateOnly)+".json", "", &e); code != 404 || e.Error == "" {
			t.Fatalf("GET of %s, a day without reports: %d %q", d.Format(time.DateOnly), code, e.Error)
		}
		empty++
	}
	if code, _ := f.get(t, dailyPath+"/2000-03-01.json", "", nil); code != 200 {
		t.Errorf("GET of 2000-03-01, a day with a report: %d", code)
	}
	kept, _ := f.st.SnapshotDays()
	if len(kept) != 1 {
		t.Errorf("%d snapshots kept after %d GETs of empty days and one of a day with a report, want 1", len(kept), empty)
	}
	t.Logf("%d days listed; %d GETs of empty days kept nothing", len(list.Days), empty)
}
