package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// Adoption levels: levels[p] is the highest version that at least p% of
// the installations run or exceed.
var adoptionLevels = []int{50, 75, 90, 95}

// maxHistoryDays bounds how far back adoption looks for the first day of a
// version (about ten years; the store answers at most 3700 steps).
const maxHistoryDays = 3650

// Adoption is the answer of /api/v1/adoption.
type Adoption struct {
	From          int64  `json:"from"`
	To            int64  `json:"to"`
	Installations uint64 `json:"installations"`
	// Levels maps "50", "75", "90" and "95" to the highest ModSecurity
	// version (of those shown) that at least that percentage of the range's
	// installations run or exceed; null when none does.
	Levels   map[string]*string `json:"levels"`
	Versions []AdoptionVersion  `json:"versions"`
	// Other sums the versions under the public floor or past TopValues.
	Other     AdoptionOther `json:"other"`
	PublicMin Floor         `json:"public_min"`
	// Zone is set for a zone of a custom schema (?zone=): Versions are the
	// values of its version field.
	Zone string `json:"zone,omitempty"`
}

// AdoptionVersion is one ModSecurity version of Adoption.
type AdoptionVersion struct {
	Version string `json:"version"`
	// FirstSeen is the first UTC day (Unix seconds of its start) any
	// installation reported the version.
	FirstSeen     *int64  `json:"first_seen"`
	Installations uint64  `json:"installations"`
	Share         float64 `json:"share"`
	// DaysTo25 and DaysTo50 count the days from FirstSeen to the first day
	// on which 25% (50%) of the installations reporting that day ran the
	// version or a newer one; null if no day up to the range's end did.
	DaysTo25 *int `json:"days_to_25"`
	DaysTo50 *int `json:"days_to_50"`
}

// AdoptionOther sums the versions Adoption leaves out.
type AdoptionOther struct {
	Values        int     `json:"values"`
	Installations uint64  `json:"installations"`
	Share         float64 `json:"share"`
}

// adoptionRange is what a view knows of adoption: the figures of the range.
type adoptionRange struct {
	levels   map[string]*string
	versions []AdoptionVersion // newest first; no history yet
	other    AdoptionOther
}

// adoptionOf computes the range's part of adoption from t: the versions
// that pass the floor, newest first, and the levels among them.
func adoptionOf(t *store.Totals, floor, public Floor) adoptionRange {
	m := t.Dims[rollup.DimModsec]
	if t.Zone != "" { // a custom schema's: its version field
		m = nil
		if t.Schema != nil && t.Schema.Version() != "" {
			m = t.Fields[t.Schema.Version()]
		}
	}
	total := t.Total.Installations
	share := func(n uint64) float64 {
		if total == 0 {
			return 0
		}
		return float64(n) / float64(total)
	}
	shown, other := groups(m, floor, TopValues, cmp.Compare[string], jsonLen, nil)
	a := adoptionRange{levels: map[string]*string{}, versions: []AdoptionVersion{},
		other: AdoptionOther{Values: other.Values, Installations: other.Installations, Share: share(other.Installations)}}
	for _, e := range shown {
		a.versions = append(a.versions, AdoptionVersion{Version: e.key, Installations: e.c.Installations, Share: share(e.c.Installations)})
	}
	slices.SortFunc(a.versions, func(x, y AdoptionVersion) int {
		return cmp.Or(compareVersions(y.Version, x.Version), cmp.Compare(x.Version, y.Version))
	})
	// at[i]: the installations running versions[i] or newer, counting every
	// version sent, shown or not.
	names := make([]string, len(a.versions))
	for i, v := range a.versions {
		names[i] = v.Version
	}
	at := atOrAbove(names, func(yield func(string, uint64) bool) {
		for v, c := range m {
			if !yield(v, c.Installations) {
				return
			}
		}
	})
	for _, p := range adoptionLevels {
		a.levels[strconv.Itoa(p)] = nil
		for i := range names {
			if total > 0 && at[i]*100 >= uint64(p)*total {
				a.levels[strconv.Itoa(p)] = &names[i]
				break
			}
		}
	}
	return a
}

// atOrAbove counts, for each of versions (sorted newest first), the
// installations of every value of all that is that version or newer. Each
// value costs a binary search among versions, however many values there
// are.
func atOrAbove(versions []string, all func(yield func(string, uint64) bool)) []uint64 {
	buckets := make([]uint64, len(versions)+1)
	for v, n := range all {
		// The first of versions that v runs or exceeds.
		k, _ := slices.BinarySearchFunc(versions, v, func(x, v string) int {
			if compareVersions(x, v) > 0 {
				return -1
			}
			return 1
		})
		buckets[k] += n
	}
	out := make([]uint64, len(versions))
	var sum uint64
	for i := range versions {
		sum += buckets[i]
		out[i] = sum
	}
	return out
}

func (s *Server) adoption(w http.ResponseWriter, r *http.Request) {
	from, to, err := s.rangeOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.storeOf(r)
	zone, err := s.zoneOf(r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d0, d1 := store.DaySpan(from, to)
	f, pub := s.floorOf(r), s.configOf(r).PublicMin
	body, err := s.cache.get(fmt.Sprint("adoption", d0.Unix(), d1.Unix(), f, pub, zone), st, &s.configOf(r).Limits, func() ([]byte, error) {
		a, err := s.adoptionZone(st, from, to, f, pub, zone)
		if err != nil {
			return nil, err
		}
		return json.Marshal(a)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}

// adoptionWith is the adoption of the days [from, to] touch: the view's
// figures, and for each version shown its first day and the days it took
// to reach 25% and 50%, from the installations of each day since the
// first day the store counts.
func (s *Server) adoptionWith(st *store.Store, from, to time.Time, floor, public Floor) (*Adoption, error) {
	return s.adoptionZone(st, from, to, floor, public, "")
}

// adoptionZone is adoptionWith of zone (zoneOf): a custom schema's zone by
// its version field, history included (store.ZoneInstalls).
func (s *Server) adoptionZone(st *store.Store, from, to time.Time, floor, public Floor, zone string) (*Adoption, error) {
	v, err := s.viewZone(st, from, to, floor, public, zone)
	if err != nil {
		return nil, err
	}
	ar := v.adoption
	a := &Adoption{From: v.summary.From, To: v.summary.To, Installations: v.summary.Installations,
		Levels: ar.levels, Versions: slices.Clone(ar.versions), Other: ar.other, PublicMin: floor, Zone: v.summary.Zone}
	version := ""
	if zone != "" {
		if sc := st.Schemas().Custom(zone); sc != nil {
			version = sc.Version()
		}
		if version == "" {
			return a, nil // a schema without a version field: no history
		}
	}
	first, ok := st.FirstDay()
	_, end := store.DaySpan(from, to)
	if today := time.Now().UTC(); end.After(today) {
		end = today
	}
	if !ok || len(a.Versions) == 0 || end.Before(first) {
		return a, nil
	}
	start := first
	if limit := end.AddDate(0, 0, -maxHistoryDays); start.Before(limit) {
		start = limit
	}
	var days []store.InstallStep
	if zone != "" {
		days, err = st.ZoneInstalls(start, end, store.StepDay, zone, version)
	} else {
		days, err = st.Installs(start, end, store.StepDay, rollup.DimModsec)
	}
	if err != nil {
		return nil, err
	}
	names := make([]string, len(a.Versions))
	for i, v := range a.Versions {
		names[i] = v.Version
	}
	// Per day, the share of its installations on each version or newer.
	type dayShares struct {
		start time.Time
		seen  []bool    // the version was reported that day
		at    []float64 // share on it or newer
	}
	hist := make([]dayShares, 0, len(days))
	for _, b := range days {
		d := dayShares{start: b.Start, seen: make([]bool, len(names)), at: make([]float64, len(names))}
		counts := atOrAbove(names, func(yield func(string, uint64) bool) {
			for v, c := range b.Values {
				if !yield(v, c.Installations) {
					return
				}
			}
		})
		for i, name := range names {
			d.seen[i] = b.Values[name].Installations > 0
			if b.Total.Installations > 0 {
				d.at[i] = float64(counts[i]) / float64(b.Total.Installations)
			}
		}
		hist = append(hist, d)
	}
	for i := range a.Versions {
		v := &a.Versions[i]
		j := slices.IndexFunc(hist, func(d dayShares) bool { return d.seen[i] })
		if j < 0 {
			continue
		}
		fs := hist[j].start.Unix()
		v.FirstSeen = &fs
		for _, goal := range []struct {
			share float64
			days  **int
		}{{0.25, &v.DaysTo25}, {0.50, &v.DaysTo50}} {
			for _, d := range hist[j:] {
				if d.at[i] >= goal.share {
					n := int(d.start.Sub(hist[j].start) / (24 * time.Hour))
					*goal.days = &n
					break
				}
			}
		}
	}
	return a, nil
}
