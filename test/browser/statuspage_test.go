package browser

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/test"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/miekg/dns"

	"github.com/statusengine/statusengine/plugin/statusengine"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

var updateScreenshot = flag.Bool("screenshot", false, "copy the overview screenshot to docs/screenshot.png")

func init() {
	// As build/coredns does: statusengine right after template.
	d := dnsserver.Directives
	i := slices.Index(d, "template")
	if err := dnsserver.SetDirectives(slices.Insert(slices.Clone(d), i+1, "statusengine")); err != nil {
		panic(err)
	}
}

const (
	zone        = "status.test."
	xssServer   = "<script>window.__x=1</script>"
	historyDays = 30
)

// chromiumPath finds Debian's chromium; without it the test skips, except in
// CI, where a missing browser is a broken install step.
func chromiumPath(t *testing.T) string {
	p, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not installed (Debian package chromium); CI must install it")
		}
		t.Skip("chromium not installed (apt-get install chromium)")
	}
	return p
}

// fleet is a made-up population of ModSecurity installations spread over
// the countries the embedded geo database knows.
type fleet struct {
	rng       *rand.Rand
	countries []string                // ordered by weight, most first
	addrs     map[string][]netip.Addr // public addresses per country
	installs  []install
}

type install struct {
	beacon  string // without the client epoch
	addr    netip.Addr
	country string
}

var (
	modsecs = []weighted{{"2.9.7", 40}, {"2.9.8", 25}, {"2.9.6", 12}, {"2.9.5", 8}, {"2.9.3", 6}, {"2.8.0", 4}, {"2.9.4", 3}, {"2.9.2", 2}}
	servers = []weighted{{"Apache/2.4.62 (Debian)", 30}, {"Apache/2.4.58 (Ubuntu)", 20}, {"Apache", 12}, {"nginx", 15},
		{"Apache/2.4.37 (Red Hat Ent", 8}, {"IIS", 5}, {"Apache/2.4.62 (Unix) Open", 5}}
	aprs    = []weighted{{"1.7.2/1.7.2", 50}, {"1.7.0/1.7.0", 25}, {"1.6.5/1.6.5", 15}, {"1.7.5/1.7.5", 10}}
	pcres   = []weighted{{"10.42/", 45}, {"8.45/8.45 2021-06-15", 25}, {"10.40/", 15}, {"8.39/8.39 2016-06-14", 10}}
	luas    = []weighted{{"(null)", 60}, {"Lua 5.1", 25}, {"Lua 5.4", 15}}
	libxmls = []weighted{{"2.9.14", 45}, {"2.9.10", 25}, {"2.11.5", 15}, {"2.9.13", 15}}
)

type weighted struct {
	v string
	w int
}

func pick(rng *rand.Rand, ws []weighted) string {
	total := 0
	for _, w := range ws {
		total += w.w
	}
	n := rng.IntN(total)
	for _, w := range ws {
		if n -= w.w; n < 0 {
			return w.v
		}
	}
	return ws[0].v
}

// newFleet finds public IPv4 addresses in at least minCountries countries by
// asking the embedded database itself, so the test follows whatever data it
// ships, then makes n installations with Zipf-like country weights.
func newFleet(t *testing.T, loc *geo.Locator, n, minCountries int) *fleet {
	f := &fleet{rng: rand.New(rand.NewPCG(1, 2)), addrs: map[string][]netip.Addr{}}
	var order []string
	for i := 0; i < 200000 && len(order) < 40; i++ {
		b := f.rng.Uint32()
		a := netip.AddrFrom4([4]byte{byte(b >> 24), byte(b >> 16), byte(b >> 8), 1})
		if !geo.Public(a) || b>>24 >= 224 {
			continue
		}
		g := loc.Locate(a, netip.Prefix{})
		if g.Country == "" {
			continue
		}
		if len(f.addrs[g.Country]) == 0 {
			order = append(order, g.Country)
		}
		if len(f.addrs[g.Country]) < 4 {
			f.addrs[g.Country] = append(f.addrs[g.Country], a)
		}
	}
	if len(order) < minCountries {
		t.Fatalf("embedded geo database placed random addresses in %d countries, want %d", len(order), minCountries)
	}
	// Big countries (most address space) first: they get the biggest weight.
	sort.SliceStable(order, func(i, j int) bool { return len(f.addrs[order[i]]) > len(f.addrs[order[j]]) })
	f.countries = order
	ws := make([]weighted, len(order))
	for i, c := range order {
		ws[i] = weighted{c, 1 + 1000/(i+2)}
	}
	for range n {
		c := pick(f.rng, ws)
		f.installs = append(f.installs, f.newInstall(c, pick(f.rng, servers)))
	}
	return f
}

func (f *fleet) newInstall(country, server string) install {
	as := f.addrs[country]
	beacon := strings.Join([]string{pick(f.rng, modsecs), server, pick(f.rng, aprs), pick(f.rng, pcres),
		pick(f.rng, luas), pick(f.rng, libxmls), fmt.Sprintf("%02x", f.rng.IntN(256))}, ",")
	return install{beacon: beacon, addr: as[f.rng.IntN(len(as))], country: country}
}

// record is one report of in as the plugin would store it had it arrived at
// t through a resolver that sent the installation's subnet as ECS; geo comes
// from the same locator the plugin uses.
func (f *fleet) record(t *testing.T, loc *geo.Locator, in install, at time.Time) *store.Record {
	r, err := codec.ParseBeacon(in.beacon)
	if err != nil {
		t.Fatalf("beacon %q: %v", in.beacon, err)
	}
	r.Epoch, r.HasEpoch = at.Unix(), true
	rec := &store.Record{Received: at, Zone: zone, Report: r,
		Resolver: netip.AddrFrom4([4]byte{8, 8, byte(f.rng.IntN(256)), 8})}
	if f.rng.IntN(3) > 0 {
		rec.ECS = netip.PrefixFrom(in.addr, 24).Masked()
	} else {
		rec.Resolver = in.addr
	}
	rec.Geo = loc.Locate(rec.Resolver, rec.ECS)
	return rec
}

// fillHistory stores reports of the fleet spread over the last historyDays,
// written with the store's own batch path before the server starts: reports
// arriving over DNS would all carry today's time.
func fillHistory(t *testing.T, path string, loc *geo.Locator, f *fleet, now time.Time) int {
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var recs []*store.Record
	// From an hour inside the 30-day view to an hour ago, so that a 30d
	// page loaded a little later still counts every one.
	span := int64(historyDays*24*time.Hour - 2*time.Hour)
	for _, in := range f.installs {
		for range 1 + f.rng.IntN(6) {
			at := now.Add(-time.Duration(f.rng.Int64N(span))).Add(-time.Hour)
			recs = append(recs, f.record(t, loc, in, at))
		}
	}
	out, err := st.SubmitBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range out {
		if o == store.Stored {
			n++
		}
	}
	return n
}

// sendReports resolves each installation's beacon through the real server
// over loopback UDP with an EDNS Client Subnet option carrying the
// installation's address, as a public resolver would.
func sendReports(t *testing.T, server string, ins []install, epoch int64) {
	var wg sync.WaitGroup
	work := make(chan int)
	errs := make(chan error, len(ins))
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &dns.Client{Net: "udp", Timeout: 3 * time.Second}
			for i := range work {
				in := ins[i]
				m := new(dns.Msg)
				m.SetQuestion(codec.Encode(in.beacon, epoch-int64(i), zone), dns.TypeA)
				m.SetEdns0(1232, false)
				opt := m.IsEdns0()
				opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1,
					SourceNetmask: 24, Address: in.addr.AsSlice()})
				var err error
				for try := 0; try < 3; try++ {
					var r *dns.Msg
					if r, _, err = c.Exchange(m, server); err == nil && r.Rcode != dns.RcodeSuccess {
						err = fmt.Errorf("rcode %s", dns.RcodeToString[r.Rcode])
					}
					if err == nil {
						break
					}
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", in.beacon, err)
				}
			}
		}()
	}
	for i := range ins {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

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
	Time        *chartState `json:"time"`
	Platform    *chartState `json:"platform"`
	Combos      [][]string  `json:"combos"`
	XSSDefined  bool        `json:"xssDefined"`
	XSSText     bool        `json:"xssText"`
	Overflow    int         `json:"overflow"`
	Attribution string      `json:"attribution"`
}

type chartState struct {
	Step     string   `json:"step"`
	By       string   `json:"by"`
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
    return { step: c.canvas.dataset.step || '', by: c.canvas.dataset.by || '', labels: c.data.labels.map(String),
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
    time: chart('chart-time'), platform: chart('chart-platform'),
    combos: [...document.querySelectorAll('#combos tbody tr')].map(tr => [...tr.cells].map(td => td.textContent)),
    xssDefined: typeof window.__x !== 'undefined',
    xssText: document.body.textContent.includes(` + "`" + xssServer + "`" + `),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    attribution: txt('attribution'),
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
	}
	TopCombinations []map[string]any `json:"top_combinations"`
}

type timeseries struct {
	Step, By string
	Buckets  []struct {
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
	if m.CityDatabase && p.Points != len(m.Points) {
		t.Errorf("%d points drawn, map API has %d", p.Points, len(m.Points))
	}

	// Versions over time: each named series sums to the API's, one label a bucket.
	if p.Time == nil {
		t.Fatal("no time chart")
	}
	var ts timeseries
	getJSON(t, fmt.Sprintf("%s/api/v1/timeseries?%s&step=%s&by=%s", base, q, p.Time.Step, p.Time.By), &ts)
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
		labels = append(labels, shown(r.Value))
		data = append(data, float64(r.Installations))
	}
	if fmt.Sprint(p.Platform.Labels) != fmt.Sprint(labels) || fmt.Sprint(p.Platform.Datasets[0].Data) != fmt.Sprint(data) {
		t.Errorf("platform chart %v %v, summary %v %v", p.Platform.Labels, p.Platform.Datasets[0].Data, labels, data)
	}
	if p.Platform.Ink < 2000 {
		t.Errorf("platform chart canvas nearly blank (%d pixels drawn)", p.Platform.Ink)
	}

	// Combinations table: one row per combination, the same cells.
	if len(s.TopCombinations) == 0 || len(p.Combos) != len(s.TopCombinations) {
		t.Fatalf("combinations table has %d rows, summary %d", len(p.Combos), len(s.TopCombinations))
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
}

func TestStatusPage(t *testing.T) {
	chromium := chromiumPath(t)
	start := time.Now()
	now := start.Truncate(time.Second)

	loc, err := geo.Default()
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	f := newFleet(t, loc, 900, 20)
	db := filepath.Join(t.TempDir(), "statusengine.db")
	stored := fillHistory(t, db, loc, f, now)

	corefile := fmt.Sprintf(`%s:0 {
    bind 127.0.0.1
    statusengine {
        db %s
        api 127.0.0.1:0
    }
}`, strings.TrimSuffix(zone, "."), db)
	inst, udp, _, err := test.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("CoreDNS: %v", err)
	}
	defer inst.Stop()
	base := "http://" + statusengine.ListenAddr

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

	// Chromium, offline: anything not from the side listener is a failure.
	outDir := t.ArtifactDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	defer cancelT()

	var mu sync.Mutex
	var problems []string
	note := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	// Open the tab first, so that the listener sees every event of the page.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	err = chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			note("exception: " + ev.ExceptionDetails.Text)
		case *runtime.EventConsoleAPICalled:
			if ev.Type == "error" {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value))
				}
				note("console.error: " + strings.Join(args, " "))
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.EntryLevelError {
				note("log: " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		case *network.EventRequestWillBeSent:
			if u := ev.Request.URL; !strings.HasPrefix(u, base+"/") && !strings.HasPrefix(u, "data:") {
				note("request off the listener: " + u)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, log.Enable, cdp.Empty{})
		return err
	}))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}

	// waitRender polls until the page has rendered more than `after` times.
	waitRender := func(after int, limit time.Duration) pageState {
		t.Helper()
		deadline := time.Now().Add(limit)
		for {
			p, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](collectJS))
			if err != nil {
				t.Fatalf("reading the page: %v", err)
			}
			if p.State == "error" {
				t.Fatalf("page shows an error: %s", p.Error)
			}
			if p.State == "ready" && p.Renders > after {
				return p
			}
			if time.Now().After(deadline) {
				t.Fatalf("page not rendered after %v (state %q, %d renders)", limit, p.State, p.Renders)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	screenshot := func(name string, shot chromedp.Action[[]byte]) string {
		t.Helper()
		png, err := chromedp.Run(ctx, shot)
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		out := filepath.Join(outDir, name)
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s (%d KB)", out, len(png)/1024)
		return out
	}

	// 1. Thirty days on a desktop.
	loadStart := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/#range=30d")); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	p := waitRender(0, 30*time.Second)
	t.Logf("page rendered in %v: %s reports, %s installations, latest %s, %s on it, %d countries shaded",
		time.Since(loadStart).Round(time.Millisecond), p.Reports, p.Installations, p.Latest, p.Adoption, len(p.Shaded))
	if p.To-p.From != 30*86400 {
		t.Errorf("30d range spans %d s", p.To-p.From)
	}
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
	// Let fonts and the canvas settle before the picture.
	chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond))
	screenshot("desktop.png", chromedp.FullScreenshot(100))
	// The README's picture: figures, map and charts in one screen.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 1250), chromedp.Sleep(300*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	overview := screenshot("overview.png", chromedp.CaptureScreenshot())

	// 2. A phone: 390 px wide, nothing sticks out sideways.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	p = waitRender(0, 30*time.Second)
	if p.Overflow > 0 {
		t.Errorf("at 390 px the page is %d px wider than the screen", p.Overflow)
	}
	checkAgainstAPI(t, base, p)
	chromedp.Do(ctx, chromedp.Sleep(300*time.Millisecond))
	screenshot("phone.png", chromedp.FullScreenshot(100))
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1400, 1000)); err != nil {
		t.Fatal(err)
	}

	// 3. The range picker: 24 hours, then a custom range by URL.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-range="24h"]`))); err != nil {
		t.Fatal(err)
	}
	p = waitRender(p.Renders, 15*time.Second)
	if p.To-p.From != 86400 {
		t.Errorf("24h range spans %d s", p.To-p.From)
	}
	if number(p.Reports) < len(live) {
		t.Errorf("last 24 hours show %s reports, %d arrived today", p.Reports, len(live))
	}
	checkAgainstAPI(t, base, p)
	from, to := now.Add(-10*24*time.Hour).Unix(), now.Add(-3*24*time.Hour).Unix()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = "range=custom&from=%d&to=%d"`, from, to))); err != nil {
		t.Fatal(err)
	}
	p = waitRender(p.Renders, 15*time.Second)
	if p.From != from || p.To != to {
		t.Errorf("custom range shows %d..%d, want %d..%d", p.From, p.To, from, to)
	}
	checkAgainstAPI(t, base, p)

	// 4. Live: new reports show up by themselves within one refresh period.
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`location.hash = "range=7d"`)); err != nil {
		t.Fatal(err)
	}
	p = waitRender(p.Renders, 15*time.Second)
	before := number(p.Reports)
	var more []install
	for range 25 {
		more = append(more, f.newInstall(f.countries[f.rng.IntN(len(f.countries))], pick(f.rng, servers)))
	}
	sendReports(t, udp, more, time.Now().Unix()+100000)
	refreshStart := time.Now()
	p = waitRender(p.Renders, 40*time.Second)
	if number(p.Reports) != before+len(more) {
		t.Errorf("after auto-refresh the page shows %s reports, want %d", p.Reports, before+len(more))
	}
	checkAgainstAPI(t, base, p)
	t.Logf("auto-refresh picked up %d new reports after %v", len(more), time.Since(refreshStart).Round(time.Second))

	mu.Lock()
	for _, s := range problems {
		t.Errorf("browser: %s", s)
	}
	mu.Unlock()

	if *updateScreenshot && !t.Failed() {
		b, err := os.ReadFile(overview)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshot.png"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
