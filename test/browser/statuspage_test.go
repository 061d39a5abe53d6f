package browser

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/geo/geotest"
)

var updateScreenshot = flag.Bool("screenshot", false, "copy the overview screenshot to docs/screenshot.png")

const (
	zone        = "status.test."
	xssServer   = "<script>window.__x=1</script>"
	historyDays = 30
)

// TestStatusPage loads the page from a server holding a few thousand
// reports from many countries (the embedded country database, no points)
// and checks what it shows against the API, at desktop and phone widths,
// across ranges, and live.
func TestStatusPage(t *testing.T) {
	chromiumPath(t)
	start := time.Now()
	now := start.Truncate(time.Second)

	loc, err := geo.Default()
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	f := newFleet(t, loc, 900, 20)
	// Installations behind private addresses: geolocated to no country,
	// the page's "Unknown" (which read "Unknown ()").
	for i := range 60 {
		f.installs = append(f.installs, install{beacon: randomBeacon(f.rng, pick(f.rng, servers)), addr: netip.AddrFrom4([4]byte{10, 1, byte(i), 1})})
	}
	db := filepath.Join(t.TempDir(), "statusengine.db")
	stored := fillHistory(t, db, loc, f, now)
	udp, base := startServer(t, db)

	// Today's reports come in over DNS, geolocated by the plugin from ECS.
	live := slices.Clone(f.installs[:150])
	for i := range 30 {
		live = append(live, f.newInstall(f.countries[i%len(f.countries)], xssServer))
	}
	sendReports(t, udp, live, now.Unix())
	stored += len(live)
	t.Logf("%d reports stored (%d over DNS) from %d installations in %d countries; filled in %v",
		stored, len(live), len(f.installs)+30, len(f.countries), time.Since(start).Round(time.Millisecond))

	var all summary
	getJSON(t, fmt.Sprintf("%s/api/v1/summary?from=%d&to=%d", base, now.Add(-31*24*time.Hour).Unix(), now.Add(time.Hour).Unix()), &all)
	if all.Reports != stored {
		t.Fatalf("summary counts %d reports, %d were stored", all.Reports, stored)
	}

	b := newBrowser(t, base)

	// 1. Thirty days on a desktop.
	loadStart := time.Now()
	b.do(chromedp.Navigate(base + "/#range=30d"))
	p := b.waitFor("30 days", 30*time.Second, last(30*24*time.Hour))
	t.Logf("page rendered in %v: %s reports, %s installations, latest %s, %s on it, %d countries shaded",
		time.Since(loadStart).Round(time.Millisecond), p.Reports, p.Installations, p.Latest, p.Adoption, len(p.Shaded))
	if len(p.Shaded) < 15 {
		t.Errorf("only %d countries shaded", len(p.Shaded))
	}
	if p.Attribution != geo.Attribution {
		t.Errorf("attribution %q, want %q", p.Attribution, geo.Attribution)
	}
	if number(p.Reports) != stored {
		t.Errorf("page shows %s reports, %d stored", p.Reports, stored)
	}
	checkAgainstAPI(t, base, p)
	if p.XSSDefined {
		t.Error("a beacon's <script> ran: window.__x is defined")
	}
	if !p.XSSText {
		t.Error("the <script> server field is not shown as text anywhere")
	}
	b.screenshot("desktop.png", chromedp.FullScreenshot(100))
	// The README's picture: figures, map, charts, adoption and churn.
	b.do(chromedp.EmulateViewport(1400, 1800))
	overview := b.screenshot("overview.png", chromedp.CaptureScreenshot())

	// 2. A phone: 390 px wide, nothing sticks out sideways.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload())
	p = b.waitFor("30 days", 30*time.Second, last(30*24*time.Hour))
	if p.Overflow > 0 {
		t.Errorf("at 390 px the page is %d px wider than the screen", p.Overflow)
	}
	checkAgainstAPI(t, base, p)
	b.screenshot("phone.png", chromedp.FullScreenshot(100))
	b.do(chromedp.EmulateViewport(1400, 1000))

	// A tap on the first of the top countries selects it on the map and
	// prints its numbers, which touch screens need instead of tooltips.
	var top summary
	getJSON(t, fmt.Sprintf("%s/api/v1/summary?from=%d&to=%d", base, p.From, p.To), &top)
	b.do(chromedp.Click(chromedp.CSS(`#countries li`)))
	p = b.waitFor("a selected country", 5*time.Second, func(p pageState) bool { return len(p.Selected) > 0 })
	if c := top.Breakdowns["country"]; len(c) == 0 {
		t.Error("summary has no countries")
	} else if want := fmt.Sprintf("%s: %d installations", c[0].Name, c[0].Installations); !strings.Contains(strings.ReplaceAll(p.Info, ",", ""), want) ||
		fmt.Sprint(p.Selected) != fmt.Sprint([]string{c[0].Value}) {
		t.Errorf("after a tap on the top country: info %q, selected %v; want %q and %s", p.Info, p.Selected, want, c[0].Value)
	}
	b.darkMode()
	b.screenshot("dark.png", chromedp.CaptureScreenshot())

	// 3. The range picker: 24 hours, then a custom range by URL.
	b.do(chromedp.Click(chromedp.CSS(`button[data-range="24h"]`)))
	p = b.waitFor("24 hours", 15*time.Second, last(24*time.Hour))
	if number(p.Reports) < len(live) {
		t.Errorf("last 24 hours show %s reports, %d arrived today", p.Reports, len(live))
	}
	checkAgainstAPI(t, base, p)
	from, to := now.Add(-10*24*time.Hour).Unix(), now.Add(-3*24*time.Hour).Unix()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = "range=custom&from=%d&to=%d"`, from, to)))
	p = b.waitFor("the custom range", 15*time.Second, func(p pageState) bool { return p.From == from && p.To == to })
	checkAgainstAPI(t, base, p)

	// The 90- and 365-day windows: installations per day, then per week.
	for _, r := range []struct {
		name string
		span time.Duration
	}{{"90d", 90 * 24 * time.Hour}, {"365d", 365 * 24 * time.Hour}} {
		b.do(chromedp.Click(chromedp.CSS(`button[data-range="` + r.name + `"]`)))
		p = b.waitFor(r.name, 15*time.Second, last(r.span))
		checkAgainstAPI(t, base, p)
		t.Logf("%s: %s per %s, churn per %s, adoption levels %v", r.name, p.Time.Count, p.Time.Step, p.Churn.Step, p.Levels)
	}
	// A range before any report: nothing located, and the legend says so
	// rather than "0 ▬ 0".
	from, to = now.AddDate(-3, 0, 0).Unix(), now.AddDate(-2, 0, 0).Unix()
	b.do(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = "range=custom&from=%d&to=%d"`, from, to)))
	p = b.waitFor("a range before the data", 15*time.Second, func(p pageState) bool { return p.From == from && p.To == to })
	if p.LegendShown || !p.LegendEmpty || strings.Contains(p.Legend, "0 0") || number(p.Reports) != 0 {
		t.Errorf("no data: legend %q (ramp shown %v), %s reports", p.Legend, p.LegendShown, p.Reports)
	}
	// An old link's 1y is the 365-day range.
	b.do(chromedp.Evaluate[chromedp.Void](`location.hash = "range=1y"`))
	b.waitFor("365 days from #range=1y", 15*time.Second, last(365*24*time.Hour))

	// 4. Live: new reports show up by themselves within one refresh period.
	b.do(chromedp.Evaluate[chromedp.Void](`location.hash = "range=7d"`))
	p = b.waitFor("7 days", 15*time.Second, last(7*24*time.Hour))
	before := number(p.Reports)
	var more []install
	for range 25 {
		more = append(more, f.newInstall(f.countries[f.rng.IntN(len(f.countries))], pick(f.rng, servers)))
	}
	sendReports(t, udp, more, time.Now().Unix()+100000)
	refreshStart := time.Now()
	p = b.waitFor(fmt.Sprintf("%d reports", before+len(more)), 40*time.Second,
		func(p pageState) bool { return number(p.Reports) == before+len(more) })
	checkAgainstAPI(t, base, p)
	t.Logf("auto-refresh picked up %d new reports after %v", len(more), time.Since(refreshStart).Round(time.Second))

	if *updateScreenshot && !t.Failed() {
		png, err := os.ReadFile(overview)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshot.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStatusPageCity runs the server with a City database (`geoip`), so the
// map API has points, and checks the page draws every one of them.
func TestStatusPageCity(t *testing.T) {
	chromiumPath(t)
	places := []geotest.Place{
		{Network: "45.10.0.0/16", Country: "DE", Name: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.40},
		{Network: "45.11.0.0/16", Country: "US", Name: "United States", City: "New York", Lat: 40.71, Lon: -74.01},
		{Network: "45.12.0.0/16", Country: "US", Name: "United States", City: "San Francisco", Lat: 37.77, Lon: -122.42},
		{Network: "45.13.0.0/16", Country: "BR", Name: "Brazil", City: "São Paulo", Lat: -23.55, Lon: -46.63},
		{Network: "45.14.0.0/16", Country: "JP", Name: "Japan", City: "Tokyo", Lat: 35.68, Lon: 139.69},
		{Network: "45.15.0.0/16", Country: "AU", Name: "Australia", City: "Sydney", Lat: -33.87, Lon: 151.21},
		{Network: "45.16.0.0/16", Country: "IN", Name: "India", City: "Mumbai", Lat: 19.08, Lon: 72.88},
		{Network: "45.17.0.0/16", Country: "ZA", Name: "South Africa", City: "Johannesburg", Lat: -26.20, Lon: 28.05},
		{Network: "45.18.0.0/16", Country: "GB", Name: "United Kingdom", City: "London", Lat: 51.51, Lon: -0.13},
		{Network: "45.19.0.0/16", Country: "CA", Name: "Canada", City: "Toronto", Lat: 43.65, Lon: -79.38},
		{Network: "45.20.0.0/16", Country: "FR", Name: "France", City: "Paris", Lat: 48.86, Lon: 2.35},
		{Network: "45.21.0.0/16", Country: "SG", Name: "Singapore", City: "Singapore", Lat: 1.35, Lon: 103.82},
	}
	cityDB := geotest.WriteCity(t, places)
	udp, base := startServer(t, filepath.Join(t.TempDir(), "statusengine.db"), "geoip "+cityDB)

	// Installations per place grow with its index, each on its own /24.
	rng := rand.New(rand.NewPCG(3, 4))
	var ins []install
	for i, pl := range places {
		net := netip.MustParsePrefix(pl.Network).Addr().As4()
		for j := range 3 * (i + 1) {
			a := netip.AddrFrom4([4]byte{net[0], net[1], byte(j), 7})
			ins = append(ins, install{beacon: randomBeacon(rng, pick(rng, servers)), addr: a, country: pl.Country})
		}
	}
	sendReports(t, udp, ins, time.Now().Unix())

	var m worldMap
	getJSON(t, base+"/api/v1/map", &m)
	if !m.CityDatabase || len(m.Points) == 0 {
		t.Fatalf("map API: city_database %v, %d points; want a City database with points", m.CityDatabase, len(m.Points))
	}

	b := newBrowser(t, base)
	b.do(chromedp.Navigate(base + "/"))
	p := b.waitFor("the default 7 days", 30*time.Second, last(7*24*time.Hour))
	if number(p.Reports) != len(ins) {
		t.Errorf("page shows %s reports, %d sent", p.Reports, len(ins))
	}
	checkAgainstAPI(t, base, p)
	t.Logf("%d reports from %d places: %d points drawn, %d countries shaded", len(ins), len(places), p.Points, len(p.Shaded))
	b.screenshot("city.png", chromedp.CaptureScreenshot())
}
