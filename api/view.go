package api

import (
	"cmp"
	"net/http"
	"sync"
	"time"

	"github.com/statusengine/statusengine/internal/flight"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// view is what the rollups say about a span of whole UTC days, with the
// groups a floor lets through: the summary, the map and adoption's figures
// of the range, all made from one store.Totals. A view is small whatever
// was sent (its lists are bounded), so the summary, the map, adoption, the
// badges and the timeseries' series of one span share it.
type view struct {
	summary  Summary
	mapData  MapData // with points, whether or not a City database is loaded
	adoption adoptionRange
}

// viewKey tells views apart: the store, the span, the floor of the groups
// and the public floor that picks latest_modsec.
type viewKey struct {
	st            *store.Store
	d0, d1        int64
	floor, public Floor
	zone          string // "" for ModSecurity's zones, else a zone of a custom schema
}

// viewCache keeps views for ResponseTTL, at most maxViews of them;
// concurrent requests for one view wait for one computation. A view that
// was slow to compute (a store flooded with distinct values) is kept four
// times as long as it took, and after that, until it is twenty times as old
// as it took (at most maxStale), served as it is while one goroutine
// computes it again: a steady stream of requests never waits for the
// store, and the store does at most one such computation per view at a
// time, and at most maxRefreshes in all.
type viewCache struct {
	once sync.Once // sets c's policy: the zero viewCache works
	c    flight.Cache[viewKey, *view]
}

const (
	maxViews = 16
	// slowView is the cost from which a view is served stale while it is
	// computed again; cheaper views are computed when they are asked for.
	slowView     = 250 * time.Millisecond
	maxStale     = time.Minute
	maxRefreshes = 2
)

// freshView tells whether e may be served as it is.
func freshView(e *flight.Entry[*view], now time.Time) bool {
	return now.Sub(e.At) < max(ResponseTTL, 4*e.Cost)
}

// staleView tells whether e may be served while it is computed again.
func staleView(e *flight.Entry[*view], now time.Time) bool {
	return e.Cost >= slowView && now.Sub(e.At) < min(maxStale, 20*e.Cost)
}

// viewOf is the view of the days [from, to] touch, with r's floor.
func (s *Server) viewOf(r *http.Request, from, to time.Time) (*view, error) {
	return s.viewWith(s.storeOf(r), from, to, s.floorOf(r), s.configOf(r).PublicMin)
}

func (s *Server) viewWith(st *store.Store, from, to time.Time, floor, public Floor) (*view, error) {
	return s.viewZone(st, from, to, floor, public, "")
}

// viewZone is the view of zone's reports: "" for ModSecurity's zones, else
// a zone of a custom schema (zoneOf), whose summary, map and adoption come
// from its fields (store.ZoneTotals).
func (s *Server) viewZone(st *store.Store, from, to time.Time, floor, public Floor, zone string) (*view, error) {
	d0, d1 := store.DaySpan(from, to)
	c := &s.views
	c.once.Do(func() {
		c.c.Fresh, c.c.Stale, c.c.MaxRefreshes = freshView, staleView, maxRefreshes
	})
	return c.c.Get(viewKey{st, d0.Unix(), d1.Unix(), floor, public, zone}, flight.Bounds{Entries: maxViews}, func() (*view, error) {
		return makeView(st, from, to, floor, public, zone)
	})
}

// makeView reads the totals of [from, to] and makes their view.
func makeView(st *store.Store, from, to time.Time, floor, public Floor, zone string) (*view, error) {
	t, err := st.ZoneTotals(from, to, zone)
	if err != nil {
		return nil, err
	}
	return newView(t, floor, public), nil
}

// newView makes a view of t: groups that pass floor, latest_modsec among
// the versions that pass public.
func newView(t *store.Totals, floor, public Floor) *view {
	v := &view{}
	if t.Zone != "" {
		v.summary = zoneSummaryOf(t, floor, public)
	} else {
		v.summary = summaryOf(t, floor, public)
	}
	v.mapData = mapOf(t, floor)
	v.adoption = adoptionOf(t, floor, public)
	return v
}

// summaryOf is the summary of t.
func summaryOf(t *store.Totals, floor, public Floor) Summary {
	sum := Summary{
		From:          t.From.Unix(),
		To:            t.To.Unix(),
		Reports:       t.Total.Reports,
		Installations: t.Total.Installations,
		DistinctIDs:   int(t.DistinctIDs),
		Breakdowns:    map[string][]Breakdown{},
		PublicMin:     floor,
	}
	for _, b := range breakdownDims {
		country := b.dim == rollup.DimCountry
		var exempt func(string) bool
		if country {
			exempt = unknownCountry
		}
		shown, other := groups(t.Dims[b.dim], floor, TopValues, cmp.Compare[string], jsonLen, exempt)
		rows := make([]Breakdown, 0, len(shown)+1)
		for _, e := range shown {
			row := Breakdown{Value: e.key, Reports: e.c.Reports, Installations: e.c.Installations}
			if country {
				row.Name = countryName(e.key)
			}
			rows = append(rows, row)
		}
		if other.Values > 0 {
			rows = append(rows, Breakdown{Value: OtherName, Other: true, Values: other.Values,
				Reports: other.Reports, Installations: other.Installations})
		}
		sum.Breakdowns[b.name] = rows
	}
	combos, other := groups(t.Combos, floor, TopCombinations, compareCombos, comboLen, nil)
	sum.TopCombinations = make([]Combination, 0, len(combos))
	for _, e := range combos {
		c := e.key
		sum.TopCombinations = append(sum.TopCombinations, Combination{Modsec: c.Modsec, Server: c.Server, APR: c.APR,
			PCRE: c.PCRE, Lua: c.Lua, Libxml: c.Libxml, Installations: e.c.Installations, Reports: e.c.Reports})
	}
	sum.CombinationsOther = other
	sum.LatestModsec = latest(t.Dims[rollup.DimModsec], public)
	if sum.LatestModsec != "" {
		sum.InstallationsOnLatest = t.Dims[rollup.DimModsec][sum.LatestModsec].Installations
	}
	if sum.Installations > 0 {
		sum.LatestShare = float64(sum.InstallationsOnLatest) / float64(sum.Installations)
	}
	return sum
}

// latest is the highest version of m that passes the floor: one report of
// "99.9.9" from one network never becomes the latest.
func latest(m map[string]store.Counts, floor Floor) string {
	best := ""
	for v, c := range m {
		if floor.passes(c) && (best == "" || compareVersions(v, best) > 0 || (compareVersions(v, best) == 0 && v < best)) {
			best = v
		}
	}
	return best
}

// mapOf is the map of t, with points.
func mapOf(t *store.Totals, floor Floor) MapData {
	m := MapData{From: t.From.Unix(), To: t.To.Unix(), Countries: []MapCountry{}, Points: []MapPoint{}}
	countries := make(map[string]store.Counts, len(t.Dims[rollup.DimCountry]))
	for v, c := range t.Dims[rollup.DimCountry] {
		if v == "" {
			m.Unknown = c
			continue
		}
		countries[v] = c
	}
	shown, other := groups(countries, floor, len(countries), cmp.Compare[string], jsonLen, nil)
	for _, e := range shown {
		m.Countries = append(m.Countries, MapCountry{Code: e.key, Name: countryName(e.key), Installations: e.c.Installations, Reports: e.c.Reports})
	}
	m.Other = other
	points, pother := groups(t.Points, floor, MaxPoints, comparePoints, func(rollup.Point) int { return 0 }, nil)
	for _, e := range points {
		m.Points = append(m.Points, MapPoint{Lat: e.key.Lat, Lon: e.key.Lon, Installations: e.c.Installations, Reports: e.c.Reports})
	}
	m.PointsOther = pother
	return m
}

// unknownCountry: the unlocated group names no place, so the floor leaves
// it be.
func unknownCountry(v string) bool { return v == "" }

// countryName is the English name of a country code; "Unknown" for the
// unlocated.
func countryName(code string) string {
	if code == "" {
		return "Unknown"
	}
	return geo.CountryName(code)
}

func compareCombos(a, b rollup.Combo) int {
	return cmp.Or(cmp.Compare(a.Modsec, b.Modsec), cmp.Compare(a.Server, b.Server), cmp.Compare(a.APR, b.APR),
		cmp.Compare(a.PCRE, b.PCRE), cmp.Compare(a.Lua, b.Lua), cmp.Compare(a.Libxml, b.Libxml))
}

func comparePoints(a, b rollup.Point) int {
	return cmp.Or(cmp.Compare(a.Lat, b.Lat), cmp.Compare(a.Lon, b.Lon))
}
