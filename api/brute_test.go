package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// A population for the public floor, adoption, churn and the 90- and
// 365-day windows: a crowd of ordinary installations over 400 days, and
// three groups that must never show in public.

var (
	crowdPlaces = []geo.Location{
		{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.5, Lon: 13.4, HasPoint: true, Source: "resolver"},
		{Country: "US", CountryName: "United States", City: "Ashburn", Lat: 39, Lon: -77.5, HasPoint: true, Source: "resolver"},
		{Country: "BR", CountryName: "Brazil", Source: "resolver"},
		{Source: "resolver"}, // unlocated
	}
	// smallGroup: 4 installations from 4 networks, a version newer than
	// the crowd's, its own server, country and map point.
	smallPlace = geo.Location{Country: "NZ", CountryName: "New Zealand", City: "Wellington", Lat: -41.3, Lon: 174.8, HasPoint: true, Source: "resolver"}
	// farmGroup: 10 installations behind one network.
	farmPlace = geo.Location{Country: "JP", CountryName: "Japan", City: "Tokyo", Lat: 35.7, Lon: 139.7, HasPoint: true, Source: "resolver"}
)

// What the hidden groups are made of: none of these may appear in a public
// answer.
var hiddenMarks = []string{`"2.9.11"`, `Rare/1.0`, `"Rare"`, `"3.0.0"`, `Farm/2.0`, `"Farm"`, `"NZ"`, `"JP"`, `99.9.9`,
	`"lat":-41.3`, `"lat":35.7`, `New Zealand`, `Japan`}

// population is a store holding the population, served by a Server.
type population struct {
	*fixture
	now   time.Time
	first time.Time // the first day of the reports
	path  string    // the database file
}

// popRecord is one report.
func popRecord(t testing.TB, beacon string, resolver netip.Addr, g geo.Location, at time.Time, epoch int64) *record.Record {
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		t.Fatalf("beacon %q: %v", beacon, err)
	}
	rep.Epoch, rep.HasEpoch = epoch, true
	return &record.Record{Received: at, Zone: "status.modsecurity.org.", Resolver: resolver, Report: rep, Geo: g}
}

// newPopulation stores the population: 300 crowd installations on ten
// resolver networks reporting now and then over 400 days (2.9.8 comes out
// on day 250, and they upgrade to it over the next 200 days), the small group (4 installations, 4 networks), the farm (10
// installations, one network) and one poisoned report of 99.9.9, all
// within the last 20 days.
func newPopulation(t *testing.T, cfg Config) *population {
	t.Helper()
	path := filepath.Join(t.TempDir(), "se.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -400)
	r := rand.New(rand.NewPCG(11, 12))
	var recs []*record.Record
	epoch := int64(1500000000)
	add := func(beacon string, res netip.Addr, g geo.Location, at time.Time) {
		if at.After(now) {
			at = now.Add(-time.Duration(r.IntN(60)+1) * time.Second)
		}
		epoch++
		recs = append(recs, popRecord(t, beacon, res, g, at, epoch))
	}
	// 2.9.8 comes out on day 250: installations upgrade to it from then
	// on, and some that join later start with it.
	const release = 250
	modsecs := []string{"2.9.3", "2.9.5", "2.9.7"}
	servers := []string{"Apache/2.4.62 (Debian)", "Apache/2.4.58 (Ubuntu)", "nginx", "IIS"}
	for i := range 300 {
		net := byte(i % 10)
		res := netip.AddrFrom4([4]byte{198, 18, net, byte(1 + i%250)})
		g := crowdPlaces[i%len(crowdPlaces)]
		server := servers[r.IntN(len(servers))]
		ms := modsecs[r.IntN(len(modsecs))]
		join := r.IntN(400)
		upgrade := max(join, release) + r.IntN(200)
		if join > release && r.IntN(2) == 0 {
			upgrade = join
		}
		for d := join; d <= 400; d += 1 + r.IntN(25) {
			v := ms
			if d >= upgrade {
				v = "2.9.8" // an upgrade: a new installation
			}
			b := fmt.Sprintf("%s,%s,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", v, server, i%256)
			add(b, res, g, first.AddDate(0, 0, d).Add(time.Duration(r.IntN(86400))*time.Second))
		}
	}
	recent := today.AddDate(0, 0, -20)
	for i := range 4 {
		res := netip.AddrFrom4([4]byte{203, 0, byte(100 + i), 7})
		for d := range 3 {
			add(fmt.Sprintf("2.9.11,Rare/1.0 (Unix),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,a%d", i), res, smallPlace,
				recent.AddDate(0, 0, 2+5*d).Add(time.Duration(i)*time.Hour))
		}
	}
	for i := range 10 {
		res := netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)})
		for d := range 2 {
			add(fmt.Sprintf("3.0.0,Farm/2.0,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", 0xb0+i), res, farmPlace,
				recent.AddDate(0, 0, 3+7*d).Add(time.Duration(i)*time.Minute))
		}
	}
	add("99.9.9,Apache/2.4.62 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,ee", netip.MustParseAddr("192.0.2.66"), crowdPlaces[0], recent.AddDate(0, 0, 4))

	im := store.NewImporter(st, func(at int, err error) { t.Errorf("record %d rejected: %v", at, err) })
	for i, rec := range recs {
		if err := im.Add(rec, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := im.Flush(); err != nil {
		t.Fatal(err)
	}
	s := New()
	s.SetStore(st)
	s.SetConfig(cfg)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &population{fixture: &fixture{srv: s, st: st, http: hs, base: first, n: len(recs)}, now: now, first: first, path: path}
}

// raw groups, computed from the records alone.
type rawGroup struct {
	reports  uint64
	installs map[string]bool
	nets     map[string]bool
}

func (g *rawGroup) counts() store.Counts {
	return store.Counts{Reports: g.reports, Installations: uint64(len(g.installs)), Networks: uint64(min(len(g.nets), store.NetworkCap))}
}

type rawTotals struct {
	total  rawGroup
	ids    map[string]bool
	dims   map[rollup.Dimension]map[string]*rawGroup
	combos map[rollup.Combo]*rawGroup
	points map[rollup.Point]*rawGroup
}

func addRaw[K comparable](m map[K]*rawGroup, k K, inst, net string) {
	g := m[k]
	if g == nil {
		g = &rawGroup{installs: map[string]bool{}, nets: map[string]bool{}}
		m[k] = g
	}
	g.reports++
	g.installs[inst] = true
	g.nets[net] = true
}

// bruteTotals reads every record of the UTC days [from, to] touch.
func bruteTotals(t *testing.T, st *store.Store, from, to time.Time) *rawTotals {
	t.Helper()
	from, to = store.DaySpan(from, to)
	out := &rawTotals{total: rawGroup{installs: map[string]bool{}, nets: map[string]bool{}}, ids: map[string]bool{},
		dims: map[rollup.Dimension]map[string]*rawGroup{}, combos: map[rollup.Combo]*rawGroup{}, points: map[rollup.Point]*rawGroup{}}
	for _, b := range breakdownDims {
		out.dims[b.dim] = map[string]*rawGroup{}
	}
	err := st.Each(from, to.Add(time.Second-1), 0, func(rec *record.Record) error {
		inst, net := record.InstallationKey(rec), record.InstallNetwork(rec).String()
		out.total.reports++
		out.total.installs[inst], out.total.nets[net] = true, true
		out.ids[rec.Report.ID] = true
		for _, b := range breakdownDims {
			addRaw(out.dims[b.dim], rollup.DimValue(rec, b.dim), inst, net)
		}
		addRaw(out.combos, rollup.ComboOf(rec), inst, net)
		if p, ok := rollup.PointOf(&rec.Geo); ok {
			addRaw(out.points, p, inst, net)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// shownOf orders groups as the API does and splits them at the floor and
// n: what a public list must name, and the sum of the rest.
func shownOf[K comparable](m map[K]*rawGroup, f Floor, n int, cmpKey func(a, b K) int, exempt func(K) bool) ([]K, Folded) {
	var keys []K
	var other Folded
	for k, g := range m {
		c := g.counts()
		if (c.Installations >= f.Installations && c.Networks >= f.Networks) || (exempt != nil && exempt(k)) {
			keys = append(keys, k)
		} else {
			other.add(c)
		}
	}
	slices.SortFunc(keys, func(a, b K) int {
		ca, cb := m[a].counts(), m[b].counts()
		return cmp.Or(cmp.Compare(cb.Installations, ca.Installations), cmp.Compare(cb.Reports, ca.Reports), cmpKey(a, b))
	})
	if len(keys) > n {
		for _, k := range keys[n:] {
			other.add(m[k].counts())
		}
		keys = keys[:n]
	}
	return keys, other
}

// wantSummary is what /api/v1/summary must answer under floor f, from the
// records alone.
func wantSummary(raw *rawTotals, from, to time.Time, f, public Floor) Summary {
	from, to = store.DaySpan(from, to)
	s := Summary{From: from.Unix(), To: to.Unix(), Reports: raw.total.reports, Installations: uint64(len(raw.total.installs)),
		DistinctIDs: len(raw.ids), Breakdowns: map[string][]Breakdown{}, TopCombinations: []Combination{}, PublicMin: f}
	for _, b := range breakdownDims {
		var exempt func(string) bool
		if b.dim == rollup.DimCountry {
			exempt = func(v string) bool { return v == "" }
		}
		keys, other := shownOf(raw.dims[b.dim], f, TopValues, cmp.Compare[string], exempt)
		rows := []Breakdown{}
		for _, k := range keys {
			c := raw.dims[b.dim][k].counts()
			row := Breakdown{Value: k, Reports: c.Reports, Installations: c.Installations}
			if b.dim == rollup.DimCountry {
				row.Name = countryName(k)
			}
			rows = append(rows, row)
		}
		if other.Values > 0 {
			rows = append(rows, Breakdown{Value: "other", Other: true, Values: other.Values, Reports: other.Reports, Installations: other.Installations})
		}
		s.Breakdowns[b.name] = rows
	}
	keys, other := shownOf(raw.combos, f, TopCombinations, compareCombos, nil)
	for _, k := range keys {
		c := raw.combos[k].counts()
		s.TopCombinations = append(s.TopCombinations, Combination{Modsec: k.Modsec, Server: k.Server, APR: k.APR, PCRE: k.PCRE,
			Lua: k.Lua, Libxml: k.Libxml, Installations: c.Installations, Reports: c.Reports})
	}
	s.CombinationsOther = other
	for v, g := range raw.dims[rollup.DimModsec] {
		c := g.counts()
		if public.passes(c) && (s.LatestModsec == "" || compareVersions(v, s.LatestModsec) > 0) {
			s.LatestModsec = v
		}
	}
	if s.LatestModsec != "" {
		s.InstallationsOnLatest = uint64(len(raw.dims[rollup.DimModsec][s.LatestModsec].installs))
		s.LatestShare = float64(s.InstallationsOnLatest) / float64(s.Installations)
	}
	return s
}

// wantMap is what /api/v1/map must answer under floor f.
func wantMap(raw *rawTotals, from, to time.Time, f Floor, city bool) MapData {
	from, to = store.DaySpan(from, to)
	m := MapData{From: from.Unix(), To: to.Unix(), CityDatabase: city, Countries: []MapCountry{}, Points: []MapPoint{}}
	countries := map[string]*rawGroup{}
	for v, g := range raw.dims[rollup.DimCountry] {
		if v == "" {
			m.Unknown = g.counts()
		} else {
			countries[v] = g
		}
	}
	keys, other := shownOf(countries, f, 1000, cmp.Compare[string], nil)
	for _, k := range keys {
		c := countries[k].counts()
		m.Countries = append(m.Countries, MapCountry{Code: k, Name: countryName(k), Installations: c.Installations, Reports: c.Reports})
	}
	m.Other = other
	if city {
		pts, pother := shownOf(raw.points, f, MaxPoints, comparePoints, nil)
		for _, p := range pts {
			c := raw.points[p].counts()
			m.Points = append(m.Points, MapPoint{Lat: p.Lat, Lon: p.Lon, Installations: c.Installations, Reports: c.Reports})
		}
		m.PointsOther = pother
	}
	return m
}

// day is the UTC day of t.
func day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// show is v as JSON, for messages.
func show(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
