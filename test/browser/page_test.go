package browser

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// pageState is what the page shows, read from its DOM in one go. The tags
// are needed: chromedp decodes with encoding/json/v2, which matches names
// exactly.
type pageState struct {
	State         string   `json:"state"`
	Error         string   `json:"error"`
	Renders       int      `json:"renders"`
	From          int64    `json:"from"`
	To            int64    `json:"to"`
	Reports       string   `json:"reports"`
	Installations string   `json:"installations"`
	Distinct      string   `json:"distinct"`
	Latest        string   `json:"latest"`
	Adoption      string   `json:"adoption"`
	OnLatest      string   `json:"onLatest"`
	Codes         []string `json:"codes"`
	Shaded        []struct {
		Code          string `json:"code"`
		Fill          string `json:"fill"`
		Installations int    `json:"installations"`
	} `json:"shaded"`
	Points      int         `json:"points"`
	PointSum    int         `json:"pointSum"`
	Time        *chartState `json:"time"`
	Platform    *chartState `json:"platform"`
	Combos      [][]string  `json:"combos"`
	XSSDefined  bool        `json:"xssDefined"`
	XSSText     bool        `json:"xssText"`
	Overflow    int         `json:"overflow"`
	Attribution string      `json:"attribution"`
	Info        string      `json:"info"`
	Selected    []string    `json:"selected"`
	// What issue 11 added: the chart over time's title, the adoption
	// panel, the churn chart, the map legend, the top countries' labels.
	TimeTitle     string            `json:"timeTitle"`
	Levels        map[string]string `json:"levels"`
	AdoptionRows  [][]string        `json:"adoptionRows"`
	Churn         *chartState       `json:"churn"`
	ChurnTitle    string            `json:"churnTitle"`
	LegendShown   bool              `json:"legendShown"`
	LegendEmpty   bool              `json:"legendEmpty"`
	Legend        string            `json:"legend"`
	CountryLabels []string          `json:"countryLabels"`
	LatestNote    string            `json:"latestNote"`
	// What issue 20 added: the exposure panel.
	Exposure         *chartState `json:"exposure"`
	Exposed          string      `json:"exposed"`
	ExposedN         string      `json:"exposedN"`
	ExposureRows     [][]string  `json:"exposureRows"`
	ExposureSeverity []string    `json:"exposureSeverity"`
	ExposureCaveat   string      `json:"exposureCaveat"`
	ExposureTitle    string      `json:"exposureTitle"`
	ExposureUnknown  string      `json:"exposureUnknown"`
}

type chartState struct {
	Step     string   `json:"step"`
	By       string   `json:"by"`
	Count    string   `json:"count"`
	Labels   []string `json:"labels"`
	Datasets []struct {
		Label string    `json:"label"`
		Sum   float64   `json:"sum"`
		Data  []float64 `json:"data"`
	} `json:"datasets"`
	Ink int `json:"ink"`
}

const collectJS = `(() => {
  const txt = id => document.getElementById(id).textContent;
  const fig = document.getElementById('figures');
  const paths = [...document.querySelectorAll('#map-countries path[data-code]')];
  const ink = c => { const x = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0; for (let i = 3; i < x.length; i += 4) if (x[i] > 0) n++; return n; };
  const chart = (id) => { const c = Chart.getChart(id); if (!c) return null;
    return { step: c.canvas.dataset.step || '', by: c.canvas.dataset.by || '', count: c.canvas.dataset.count || '', labels: c.data.labels.map(String),
      datasets: c.data.datasets.map(d => ({ label: String(d.label || ''), data: d.data, sum: d.data.reduce((a, b) => a + b, 0) })),
      ink: ink(c.canvas) }; };
  return {
    state: document.body.dataset.state || '', error: txt('error'), renders: +document.body.dataset.renders || 0,
    from: +fig.dataset.from || 0, to: +fig.dataset.to || 0,
    reports: txt('fig-reports'), installations: txt('fig-installations'), distinct: txt('fig-distinct'),
    latest: txt('fig-latest'), adoption: txt('fig-adoption'), onLatest: txt('fig-on-latest'),
    codes: paths.map(p => p.dataset.code),
    shaded: paths.filter(p => p.classList.contains('has-data')).map(p => ({ code: p.dataset.code,
      installations: +p.dataset.installations, fill: getComputedStyle(p).fill })),
    points: document.querySelectorAll('#map-points circle').length,
    pointSum: [...document.querySelectorAll('#map-points circle')].reduce((n, c) => n + +c.dataset.installations, 0),
    time: chart('chart-time'), platform: chart('chart-platform'), churn: chart('chart-churn'),
    combos: [...document.querySelectorAll('#combos tbody tr')].map(tr => [...tr.cells].map(td => td.textContent)),
    xssDefined: typeof window.__x !== 'undefined',
    xssText: document.body.textContent.includes(` + "`" + xssServer + "`" + `),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    attribution: txt('attribution'),
    info: txt('map-info'),
    selected: [...document.querySelectorAll('#map-countries path.selected')].map(p => p.dataset.code),
    timeTitle: txt('time-title'), churnTitle: txt('churn-title'), latestNote: txt('fig-latest-note'),
    levels: Object.fromEntries([...document.querySelectorAll('#levels dd')].map(d => [d.dataset.level, d.textContent])),
    adoptionRows: [...document.querySelectorAll('#adoption tbody tr')].map(tr => [...tr.cells].map(td => td.textContent)),
    legendShown: getComputedStyle(document.getElementById('legend')).display !== 'none',
    legendEmpty: getComputedStyle(document.getElementById('legend-empty')).display !== 'none',
    legend: document.getElementById('legend').innerText + ' ' + txt('legend-empty'),
    countryLabels: [...document.querySelectorAll('#countries li .label')].map(l => l.textContent),
    exposure: chart('chart-exposure'), exposed: txt('fig-exposed'), exposedN: txt('fig-exposed-n'),
    exposureRows: [...document.querySelectorAll('#exposure-advisories tbody tr')].map(tr => [tr.dataset.advisory || '', ...[...tr.cells].map(td => td.textContent)]),
    exposureSeverity: [...document.querySelectorAll('#exposure-severity li')].map(li => li.dataset.severity),
    exposureCaveat: txt('exposure-caveat'), exposureTitle: txt('exposure-trend-title'), exposureUnknown: txt('exposure-unknown'),
  };
})()`

type summary struct {
	From, To              int64
	Reports               int
	Installations         int
	DistinctIDs           int     `json:"distinct_ids"`
	LatestModsec          string  `json:"latest_modsec"`
	InstallationsOnLatest int     `json:"installations_on_latest"`
	LatestShare           float64 `json:"latest_share"`
	Breakdowns            map[string][]struct {
		Value, Name   string
		Reports       int
		Installations int
		Other         bool
		Values        int
	}
	TopCombinations   []map[string]any `json:"top_combinations"`
	CombinationsOther struct {
		Values        int
		Installations int
	} `json:"combinations_other"`
}

type timeseries struct {
	Step, By, Count string
	Buckets         []struct {
		T      int64
		Total  float64
		Series map[string]float64
	}
}

type worldMap struct {
	CityDatabase bool `json:"city_database"`
	Countries    []struct {
		Code, Name    string
		Installations int
		Reports       int
	}
	Points []struct {
		Lat, Lon      float64
		Installations int
	}
	Other struct{ Values int }
}

type adoption struct {
	Levels   map[string]*string
	Versions []struct {
		Version       string
		FirstSeen     *int64 `json:"first_seen"`
		Installations int
		Share         float64
		DaysTo25      *int `json:"days_to_25"`
		DaysTo50      *int `json:"days_to_50"`
	}
	Other struct {
		Values        int
		Installations int
	}
}

type churn struct {
	Step  string
	Steps []struct {
		Start                        int64
		Active, New, Returning, Gone int
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

var nonDigits = regexp.MustCompile(`[^0-9]`)

func number(s string) int {
	n, err := strconv.Atoi(nonDigits.ReplaceAllString(s, ""))
	if err != nil {
		return -1
	}
	return n
}

func shown(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// checkAgainstAPI compares what the page shows with what the API answers
// for the same range.
func checkAgainstAPI(t *testing.T, base string, p pageState) {
	t.Helper()
	q := fmt.Sprintf("from=%d&to=%d", p.From, p.To)
	var s summary
	getJSON(t, base+"/api/v1/summary?"+q, &s)
	var m worldMap
	getJSON(t, base+"/api/v1/map?"+q, &m)

	for _, c := range []struct {
		what  string
		shown string
		want  int
	}{
		{"reports", p.Reports, s.Reports},
		{"installations", p.Installations, s.Installations},
		{"distinct ids", p.Distinct, s.DistinctIDs},
		{"installations on latest", p.OnLatest, s.InstallationsOnLatest},
	} {
		if number(c.shown) != c.want {
			t.Errorf("%s: page shows %q, summary says %d", c.what, c.shown, c.want)
		}
	}
	if p.Latest != s.LatestModsec {
		t.Errorf("latest version: page shows %q, summary says %q", p.Latest, s.LatestModsec)
	}
	pct, err := strconv.ParseFloat(strings.TrimSpace(strings.NewReplacer(",", ".", "%", "", "\u00a0", "").Replace(p.Adoption)), 64)
	if err != nil || math.Abs(pct-s.LatestShare*100) > 0.05+1e-9 {
		t.Errorf("adoption: page shows %q, summary says %.4f", p.Adoption, s.LatestShare)
	}

	// Map: every country the API names that the world map has is shaded
	// with the API's number, and nothing else is.
	onMap := map[string]bool{}
	for _, c := range p.Codes {
		onMap[c] = true
	}
	want := map[string]int{}
	for _, c := range m.Countries {
		if onMap[c.Code] && c.Installations > 0 {
			want[c.Code] = c.Installations
		}
	}
	got := map[string]int{}
	for _, s := range p.Shaded {
		got[s.Code] = s.Installations
		if s.Fill == "" || s.Fill == "none" {
			t.Errorf("country %s marked but not filled", s.Code)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("shaded countries %v, map API says %v", got, want)
	}
	if m.CityDatabase {
		sum := 0
		for _, pt := range m.Points {
			sum += pt.Installations
		}
		if p.Points != len(m.Points) || p.PointSum != sum {
			t.Errorf("%d points drawn for %d installations, map API has %d for %d", p.Points, p.PointSum, len(m.Points), sum)
		}
	} else if p.Points != 0 {
		t.Errorf("%d points drawn without a City database", p.Points)
	}

	// Versions over time: each named series sums to the API's, one label a bucket.
	if p.Time == nil {
		t.Fatal("no time chart")
	}
	var ts timeseries
	getJSON(t, fmt.Sprintf("%s/api/v1/timeseries?%s&step=%s&by=%s&count=%s", base, q, p.Time.Step, p.Time.By, p.Time.Count), &ts)
	// It plots installations, and says so; only the shortest ranges plot
	// reports (per hour: installations are counted per day), and say so.
	span := p.To - p.From
	wantCount, wantStep := "installations", "day"
	switch {
	case span <= 2*86400:
		wantCount, wantStep = "reports", "hour"
	case span > 120*86400:
		wantStep = "week"
	}
	wantTitle := map[string]string{"installations": "Installations", "reports": "Reports"}[wantCount] + " per " + wantStep
	if p.Time.Count != wantCount || p.Time.Step != wantStep || ts.Count != wantCount || p.TimeTitle != wantTitle {
		t.Errorf("chart over time: %s per %s titled %q (API %s); want %q", p.Time.Count, p.Time.Step, p.TimeTitle, ts.Count, wantTitle)
	}
	if len(p.Time.Labels) != len(ts.Buckets) {
		t.Errorf("time chart has %d points, timeseries %d buckets", len(p.Time.Labels), len(ts.Buckets))
	}
	sums := map[string]float64{}
	var total float64
	for _, b := range ts.Buckets {
		total += b.Total
		for k, v := range b.Series {
			sums[shown(k)] += v
		}
	}
	var drawn float64
	for _, d := range p.Time.Datasets {
		drawn += d.Sum
		if d.Label != "other" && d.Sum != sums[d.Label] {
			t.Errorf("time chart series %q sums to %v, timeseries to %v", d.Label, d.Sum, sums[d.Label])
		}
	}
	if drawn < total {
		t.Errorf("time chart draws %v installation-buckets, timeseries totals %v", drawn, total)
	}
	if p.Time.Ink < 2000 {
		t.Errorf("time chart canvas nearly blank (%d pixels drawn)", p.Time.Ink)
	}

	// Platform share: the API's platform breakdown, largest first.
	if p.Platform == nil || len(p.Platform.Datasets) != 1 {
		t.Fatal("no platform chart")
	}
	plat := s.Breakdowns["platform"]
	sort.SliceStable(plat, func(i, j int) bool { return plat[i].Installations > plat[j].Installations })
	var labels []string
	var data []float64
	for _, r := range plat {
		if r.Other {
			labels = append(labels, "other")
		} else {
			labels = append(labels, shown(r.Value))
		}
		data = append(data, float64(r.Installations))
	}
	if fmt.Sprint(p.Platform.Labels) != fmt.Sprint(labels) || fmt.Sprint(p.Platform.Datasets[0].Data) != fmt.Sprint(data) {
		t.Errorf("platform chart %v %v, summary %v %v", p.Platform.Labels, p.Platform.Datasets[0].Data, labels, data)
	}
	if p.Platform.Ink < 2000 {
		t.Errorf("platform chart canvas nearly blank (%d pixels drawn)", p.Platform.Ink)
	}

	// Combinations table: one row per combination, the same cells, then
	// one for the combinations it leaves out (under the public floor, or
	// past the top 20).
	rows := len(s.TopCombinations)
	if s.CombinationsOther.Values > 0 || rows == 0 {
		rows++
	}
	if len(p.Combos) != rows {
		t.Fatalf("combinations table has %d rows, summary %d and %d left out", len(p.Combos), len(s.TopCombinations), s.CombinationsOther.Values)
	}
	for i, c := range s.TopCombinations {
		var want []string
		for _, k := range []string{"modsec", "server", "apr", "pcre", "lua", "libxml"} {
			v, _ := c[k].(string)
			want = append(want, shown(v))
		}
		if got := p.Combos[i][:6]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("combination %d: page %q, summary %q", i, got, want)
		}
		if n, _ := c["installations"].(float64); number(p.Combos[i][6]) != int(n) {
			t.Errorf("combination %d: page %q installations, summary %v", i, p.Combos[i][6], n)
		}
	}
	if o := s.CombinationsOther; o.Values > 0 {
		last := p.Combos[len(p.Combos)-1]
		if last[0] != fmt.Sprintf("other (%d combinations)", o.Values) || number(last[1]) != o.Installations {
			t.Errorf("combinations left out: page %q, summary %+v", last, o)
		}
	}

	checkIssue11(t, base, q, p, s, m)
	checkExposure(t, base, q, p)
}

// exposure is what the page uses of /api/v1/exposure.
type exposure struct {
	Step          string
	Installations int
	Exposed       struct {
		Installations int
		Share         float64
	}
	Unknown struct {
		Installations int
	}
	BySeverity []struct{ Severity string } `json:"by_severity"`
	Advisories []struct {
		ID            string
		Installations int
		Versions      []struct{ Value string }
	}
	Trend []struct {
		Installations int
		Exposed       int
		Fields        map[string]int
	}
	Set struct {
		Fields []string
	} `json:"advisory_set"`
	Caveat string
}

// checkExposure compares the exposure panel (issue 20) with the API: the
// share exposed, the advisories in order with their installations, the
// severities, the trend per field and the caveat.
func checkExposure(t *testing.T, base, q string, p pageState) {
	t.Helper()
	if p.Exposure == nil {
		t.Fatal("no exposure chart")
	}
	var e exposure
	getJSON(t, base+"/api/v1/exposure?"+q+"&step="+p.Exposure.Step, &e)
	if number(p.ExposedN) != e.Exposed.Installations {
		t.Errorf("exposed: page %q installations, API %d", p.ExposedN, e.Exposed.Installations)
	}
	if e.Installations > 0 {
		pct, err := strconv.ParseFloat(strings.TrimSpace(strings.NewReplacer(",", ".", "%", "", "\u00a0", "").Replace(p.Exposed)), 64)
		if err != nil || math.Abs(pct-e.Exposed.Share*100) > 0.05+1e-9 {
			t.Errorf("exposed share: page %q, API %.4f", p.Exposed, e.Exposed.Share)
		}
	}
	if e.Unknown.Installations > 0 && !strings.HasPrefix(strings.ReplaceAll(p.ExposureUnknown, ",", ""), fmt.Sprintf("%d (", e.Unknown.Installations)) {
		t.Errorf("unknown: page %q, API %d", p.ExposureUnknown, e.Unknown.Installations)
	}
	rows := len(e.Advisories)
	if rows == 0 {
		rows = 1 // "No reports in this range" or "No installation runs ..."
	}
	if len(p.ExposureRows) != rows {
		t.Fatalf("exposure table: %d rows, API %d advisories", len(p.ExposureRows), len(e.Advisories))
	}
	for i, a := range e.Advisories {
		row := p.ExposureRows[i]
		if row[0] != a.ID || !strings.HasPrefix(row[1], a.ID) || number(row[4]) != a.Installations {
			t.Errorf("exposure row %d: page %q, API %s with %d installations", i, row, a.ID, a.Installations)
		}
		for _, v := range a.Versions {
			if !strings.Contains(row[3], v.Value) {
				t.Errorf("exposure row %d: versions %q lack %q", i, row[3], v.Value)
			}
		}
	}
	if len(p.ExposureSeverity) != len(e.BySeverity) {
		t.Errorf("severities: page %v, API %d levels", p.ExposureSeverity, len(e.BySeverity))
	}
	if !strings.Contains(p.ExposureCaveat, "runs a version that upstream lists as affected") || p.ExposureCaveat != e.Caveat {
		t.Errorf("caveat: page %q, API %q", p.ExposureCaveat, e.Caveat)
	}
	// The series: exposed to any advisory, then each field.
	if len(p.Exposure.Labels) != len(e.Trend) || len(p.Exposure.Datasets) != 1+len(e.Set.Fields) {
		t.Fatalf("exposure chart: %d points, %d series; API %d steps, fields %v", len(p.Exposure.Labels), len(p.Exposure.Datasets), len(e.Trend), e.Set.Fields)
	}
	for k := range 1 + len(e.Set.Fields) {
		for i, s := range e.Trend {
			n := s.Exposed
			if k > 0 {
				n = s.Fields[e.Set.Fields[k-1]]
			}
			want := 0.0
			if s.Installations > 0 {
				want = 100 * float64(n) / float64(s.Installations)
			}
			if got := p.Exposure.Datasets[k].Data[i]; math.Abs(got-want) > 1e-9 {
				t.Errorf("exposure chart series %d step %d: %v, API %v", k, i, got, want)
			}
		}
	}
	if p.ExposureTitle != "Share on an affected version per "+e.Step {
		t.Errorf("exposure chart title %q, step %s", p.ExposureTitle, e.Step)
	}
}

// checkIssue11 compares what issue 11 added to the page with the API: the
// adoption panel, the churn chart, the top countries' labels and the map
// legend.
func checkIssue11(t *testing.T, base, q string, p pageState, s summary, m worldMap) {
	t.Helper()
	var a adoption
	getJSON(t, base+"/api/v1/adoption?"+q, &a)
	for _, lvl := range []string{"50", "75", "90", "95"} {
		want := "–"
		if v := a.Levels[lvl]; v != nil {
			want = *v
		}
		if p.Levels[lvl] != want {
			t.Errorf("adoption level %s: page %q, API %q", lvl, p.Levels[lvl], want)
		}
	}
	rows := len(a.Versions)
	if a.Other.Values > 0 {
		rows++
	}
	if rows == 0 {
		rows = 1 // "No reports in this range"
	}
	if len(p.AdoptionRows) != rows {
		t.Fatalf("adoption table: %d rows, API %d versions (other: %d)", len(p.AdoptionRows), len(a.Versions), a.Other.Values)
	}
	days := func(n *int) string {
		if n == nil {
			return "–"
		}
		return strconv.Itoa(*n)
	}
	for i, v := range a.Versions {
		row := p.AdoptionRows[i]
		if row[0] != v.Version || number(row[2]) != v.Installations || row[4] != days(v.DaysTo25) || row[5] != days(v.DaysTo50) ||
			(v.FirstSeen == nil) != (row[1] == "–") {
			t.Errorf("adoption row %d: page %q, API %+v", i, row, v)
		}
		pct, err := strconv.ParseFloat(strings.TrimSpace(strings.NewReplacer(",", ".", "%", "", "\u00a0", "").Replace(row[3])), 64)
		if err != nil || math.Abs(pct-v.Share*100) > 0.05+1e-9 {
			t.Errorf("adoption row %d share: page %q, API %v", i, row[3], v.Share)
		}
	}
	if a.Other.Values > 0 {
		if row := p.AdoptionRows[len(p.AdoptionRows)-1]; !strings.HasPrefix(row[0], "other (") || number(row[2]) != a.Other.Installations {
			t.Errorf("adoption other row: page %q, API %+v", row, a.Other)
		}
	}

	// Churn: new, returning and gone per step, gone drawn below the axis.
	if p.Churn == nil || len(p.Churn.Datasets) != 3 {
		t.Fatal("no churn chart")
	}
	var c churn
	getJSON(t, fmt.Sprintf("%s/api/v1/churn?%s&step=%s", base, q, p.Churn.Step), &c)
	if len(p.Churn.Labels) != len(c.Steps) || p.ChurnTitle != "Installations gained and lost per "+c.Step {
		t.Errorf("churn chart: %d steps titled %q, API %d steps of a %s", len(p.Churn.Labels), p.ChurnTitle, len(c.Steps), c.Step)
	}
	var nw, ret, gone float64
	for _, st := range c.Steps {
		nw += float64(st.New)
		ret += float64(st.Returning)
		gone += float64(st.Gone)
	}
	for i, want := range []struct {
		label string
		sum   float64
	}{{"new", nw}, {"returning", ret}, {"gone", -gone}} {
		if d := p.Churn.Datasets[i]; d.Label != want.label || d.Sum != want.sum {
			t.Errorf("churn %s sums to %v, API %v", d.Label, d.Sum, want.sum)
		}
	}

	// Top countries: "Unknown" for the unlocated, never "Unknown ()", and
	// the other row names how many countries it holds.
	for i, l := range p.CountryLabels {
		if strings.Contains(l, "()") {
			t.Errorf("top countries row %d reads %q", i, l)
		}
	}
	for _, b := range s.Breakdowns["country"] {
		if b.Value == "" && !slices.Contains(p.CountryLabels, "Unknown") {
			t.Errorf("the unlocated are in the summary, not as Unknown on the page: %q", p.CountryLabels)
		}
		if b.Other && !slices.Contains(p.CountryLabels, fmt.Sprintf("other (%d countries)", b.Values)) {
			t.Errorf("the countries under the floor are not in an other row: %q", p.CountryLabels)
		}
	}
	// The legend: a ramp from 1 to the most installations of a country,
	// or, with none located, a sentence instead of "0 to 0".
	located := 0
	for _, c := range m.Countries {
		located = max(located, c.Installations)
	}
	if located == 0 {
		if p.LegendShown || !p.LegendEmpty {
			t.Errorf("nothing located, the legend reads %q", p.Legend)
		}
	} else if !p.LegendShown || p.LegendEmpty || !strings.Contains(strings.ReplaceAll(p.Legend, ",", ""), strconv.Itoa(located)) {
		t.Errorf("legend %q (shown %v), most installations of a country %d", p.Legend, p.LegendShown, located)
	}
}
