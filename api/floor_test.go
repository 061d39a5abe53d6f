package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fetch GETs path with an optional token and returns status and body.
func (f *fixture) fetch(t *testing.T, path, token string) (int, http.Header, []byte) {
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
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// publicPaths are the public answers a group could show in, for the range
// [from, to]: summary, map, every split of the timeseries, adoption, the
// badges; and the daily snapshots of the last three weeks.
func (p *population) publicPaths(from, to time.Time) []string {
	q := "from=" + unix(from) + "&to=" + unix(to)
	paths := []string{"/api/v1/summary?" + q, "/api/v1/map?" + q, "/api/v1/adoption?" + q, "/api/v1/churn?" + q,
		"/badge/latest.svg?" + q, "/badge/latest-share.svg?" + q, "/badge/installations.svg?" + q,
		"/api/v1/exposure?" + q, "/api/v1/exposure?step=week&" + q, "/badge/exposed.svg?" + q}
	for _, by := range []string{"modsec", "platform", "country"} {
		for _, step := range []string{"day", "week", "month"} {
			for _, count := range []string{"reports", "installations"} {
				paths = append(paths, fmt.Sprintf("/api/v1/timeseries?%s&by=%s&step=%s&count=%s", q, by, step, count))
			}
		}
	}
	for d := day(p.now).AddDate(0, 0, -21); !d.After(p.now); d = d.AddDate(0, 0, 1) {
		paths = append(paths, "/api/v1/public/daily/"+d.Format(time.DateOnly)+".json")
	}
	return paths
}

// TestPublicFloor holds summary and map to the records under every floor,
// with and without the token, over 30, 90 and 365 days; and checks that a
// group of 4 installations (4 networks) and one of 10 installations behind
// one network never show in any public answer, while the token shows them.
func TestPublicFloor(t *testing.T) {
	p := newPopulation(t, Config{})
	ranges := []time.Duration{30 * 24 * time.Hour, 90 * 24 * time.Hour, 365 * 24 * time.Hour}
	tests := []struct {
		name   string
		cfg    Config
		token  string
		floor  Floor // of the groups
		public Floor // of latest_modsec
	}{
		{"no token configured", Config{CityDatabase: true}, "", DefaultFloor, DefaultFloor},
		{"token configured, not sent", Config{CityDatabase: true, Token: testToken}, "", DefaultFloor, DefaultFloor},
		{"wrong token", Config{CityDatabase: true, Token: testToken}, "x" + testToken, DefaultFloor, DefaultFloor},
		{"token sent", Config{CityDatabase: true, Token: testToken}, testToken, NoFloor, DefaultFloor},
		{"public_min 10 3", Config{CityDatabase: true, PublicMin: Floor{10, 3}}, "", Floor{10, 3}, Floor{10, 3}},
		{"public_min 1 1", Config{PublicMin: NoFloor}, "", NoFloor, NoFloor},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p.srv.SetConfig(tc.cfg)
			for _, span := range ranges {
				from, to := p.now.Add(-span), p.now
				raw := bruteTotals(t, p.st, from, to)
				q := "?from=" + unix(from) + "&to=" + unix(to)
				var sum Summary
				if code, _ := p.get(t, "/api/v1/summary"+q, tc.token, &sum); code != 200 {
					t.Fatalf("summary: %d", code)
				}
				sum.InstallationsEverKnown = 0
				if want := wantSummary(raw, from, to, tc.floor, tc.public); !reflect.DeepEqual(sum, want) {
					t.Errorf("%v: summary\n%+v\nwant\n%+v", span, sum, want)
				}
				checkAddsUp(t, &sum)
				var m MapData
				p.get(t, "/api/v1/map"+q, tc.token, &m)
				if want := wantMap(raw, from, to, tc.floor, tc.cfg.CityDatabase); !reflect.DeepEqual(m, want) {
					t.Errorf("%v: map\n%+v\nwant\n%+v", span, m, want)
				}
				if sum.LatestModsec == "99.9.9" && tc.public != NoFloor {
					t.Errorf("one report of 99.9.9 is latest_modsec")
				}
			}
			// The groups that must not show.
			from := p.now.Add(-30 * 24 * time.Hour)
			var shown []string
			for _, path := range p.publicPaths(from, p.now) {
				code, _, body := p.fetch(t, path, tc.token)
				if code != 200 {
					t.Errorf("GET %s: %d %s", path, code, body)
					continue
				}
				for _, mark := range hiddenMarks {
					if strings.Contains(string(body), mark) {
						shown = append(shown, path+": "+mark)
					}
				}
			}
			if tc.floor == NoFloor && len(shown) == 0 {
				t.Error("with no floor the small groups show nowhere")
			}
			if tc.floor != NoFloor {
				for _, s := range shown {
					t.Errorf("a group under the floor shows in %s", s)
				}
			}
		})
	}
	// With the token the small groups are there, each value of them; the
	// latest version is still the highest of those that pass the floor.
	p.srv.SetConfig(Config{CityDatabase: true, Token: testToken})
	_, _, body := p.fetch(t, "/api/v1/summary", testToken)
	_, _, mbody := p.fetch(t, "/api/v1/map", testToken)
	for _, mark := range []string{`"2.9.11"`, `"Rare/1.0"`, `"3.0.0"`, `"Farm/2.0"`, `"NZ"`, `"JP"`, `"99.9.9"`} {
		if !strings.Contains(string(body), mark) {
			t.Errorf("with the token the summary lacks %s", mark)
		}
	}
	for _, mark := range []string{`"lat":-41.3`, `"lat":35.7`, `"NZ"`, `"JP"`} {
		if !strings.Contains(string(mbody), mark) {
			t.Errorf("with the token the map lacks %s", mark)
		}
	}
	var sum Summary
	json.Unmarshal(body, &sum)
	if sum.LatestModsec != "2.9.8" {
		t.Errorf("latest_modsec with the token: %q, want 2.9.8 (2.9.11 has 4 installations, 3.0.0 one network, 99.9.9 one report)", sum.LatestModsec)
	}
}

// checkAddsUp: every breakdown, its other row included, adds up to the
// summary's reports, and the build breakdowns to its installations.
func checkAddsUp(t *testing.T, sum *Summary) {
	t.Helper()
	for name, rows := range sum.Breakdowns {
		var reports, installs uint64
		for i, b := range rows {
			reports += b.Reports
			installs += b.Installations
			if b.Other && (i != len(rows)-1 || b.Value != "other" || b.Values == 0) {
				t.Errorf("%s: other row %+v at %d of %d", name, b, i, len(rows))
			}
		}
		if reports != sum.Reports || (name != "country" && installs != sum.Installations) {
			t.Errorf("%s adds up to %d reports, %d installations; the summary has %d, %d", name, reports, installs, sum.Reports, sum.Installations)
		}
		if len(rows) > TopValues+1 {
			t.Errorf("%s: %d rows", name, len(rows))
		}
	}
	var installs uint64
	for _, c := range sum.TopCombinations {
		installs += c.Installations
	}
	if installs+sum.CombinationsOther.Installations != sum.Installations {
		t.Errorf("combinations add up to %d installations, the summary has %d", installs+sum.CombinationsOther.Installations, sum.Installations)
	}
}

// TestPoisonedLatest: one report of a high version from one network, and
// ten installations of another behind one network, never become
// latest_modsec — in the summary, the badge or the adoption levels — with
// or without the token.
func TestPoisonedLatest(t *testing.T) {
	p := newPopulation(t, Config{Token: testToken})
	for _, token := range []string{"", testToken} {
		var sum Summary
		p.get(t, "/api/v1/summary", token, &sum)
		if sum.LatestModsec != "2.9.8" || sum.InstallationsOnLatest == 0 {
			t.Errorf("token %q: latest_modsec %q (%d installations), want 2.9.8", token, sum.LatestModsec, sum.InstallationsOnLatest)
		}
		var a Adoption
		p.get(t, "/api/v1/adoption", token, &a)
		for lvl, v := range a.Levels {
			if v != nil && (*v == "99.9.9" || *v == "3.0.0") {
				t.Errorf("token %q: level %s is %s", token, lvl, *v)
			}
		}
	}
	_, _, svg := p.fetch(t, "/badge/latest.svg", "")
	if !strings.Contains(string(svg), ">2.9.8<") || strings.Contains(string(svg), "99.9.9") {
		t.Errorf("latest badge: %s", svg)
	}
}
