package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// TopCombinations is how many version combinations a summary lists.
const TopCombinations = 20

// Breakdown is one value of a dimension in a summary, or, with Other set,
// the values it leaves out.
type Breakdown struct {
	Value         string `json:"value"`
	Name          string `json:"name,omitempty"` // countries only
	Reports       uint64 `json:"reports"`
	Installations uint64 `json:"installations"`
	// Other marks the last row of a breakdown that leaves values out (under
	// the public floor, or past TopValues): their sum, and how many there
	// are (Values). Value is then "other".
	Other  bool `json:"other,omitempty"`
	Values int  `json:"values,omitempty"`
}

// Combination is one set of versions seen together.
type Combination struct {
	Modsec        string `json:"modsec"`
	Server        string `json:"server"`
	APR           string `json:"apr"`
	PCRE          string `json:"pcre"`
	Lua           string `json:"lua"`
	Libxml        string `json:"libxml"`
	Installations uint64 `json:"installations"`
	Reports       uint64 `json:"reports"`
}

// Summary is the answer of /api/v1/summary.
type Summary struct {
	From                  int64                  `json:"from"`
	To                    int64                  `json:"to"`
	Reports               uint64                 `json:"reports"`
	Installations         uint64                 `json:"installations"`
	DistinctIDs           int                    `json:"distinct_ids"`
	LatestModsec          string                 `json:"latest_modsec"`
	InstallationsOnLatest uint64                 `json:"installations_on_latest"`
	LatestShare           float64                `json:"latest_share"`
	Breakdowns            map[string][]Breakdown `json:"breakdowns"`
	TopCombinations       []Combination          `json:"top_combinations"`
	// CombinationsOther sums the combinations TopCombinations leaves out.
	CombinationsOther Folded `json:"combinations_other"`
	// PublicMin is the floor the answer's groups passed ({1, 1}: none).
	PublicMin Floor `json:"public_min"`
	// InstallationsEverKnown counts the installations of the whole
	// database; daily snapshots leave it out (it is not the day's).
	InstallationsEverKnown uint64 `json:"installations_ever,omitempty"`

	// Zone is the zone of a custom schema the summary is of (?zone=);
	// absent for ModSecurity's zones. Its Breakdowns are keyed by the
	// schema's field names (the id left out) and "country"; Version names
	// its version field, LatestVersion the latest value of it (as
	// LatestModsec, which it then replaces), and TopCombinations is empty.
	Zone          string `json:"zone,omitempty"`
	Version       string `json:"version_field,omitempty"`
	LatestVersion string `json:"latest_version,omitempty"`
}

// breakdownDims names the breakdowns of a summary.
var breakdownDims = []struct {
	name string
	dim  rollup.Dimension
}{
	{"modsec", rollup.DimModsec},
	{"platform", rollup.DimPlatform},
	{"server", rollup.DimServer},
	{"apr", rollup.DimAPR},
	{"pcre", rollup.DimPCRE},
	{"lua", rollup.DimLua},
	{"libxml", rollup.DimLibxml},
	{"country", rollup.DimCountry},
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
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
	body, err := s.cache.get(fmt.Sprint("summary", d0.Unix(), d1.Unix(), f, pub, zone), st, &s.configOf(r).Limits, func() ([]byte, error) {
		v, err := s.viewZone(st, from, to, f, pub, zone)
		if err != nil {
			return nil, err
		}
		sum := v.summary
		if zone == "" { // the whole database's: not one custom zone's
			sum.InstallationsEverKnown = st.InstallationCount()
		}
		return json.Marshal(sum)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}

// zoneOf is the zone r's ?zone= names: "" for ModSecurity's zones (the
// parameter absent, or naming one of them: their reports are summed
// together, as before schemas), else a zone of a custom schema the store
// keeps. Without the parameter, a server whose zones are all of custom
// schemas answers for the first of them (sorted). Any other zone, or the
// parameter given twice, is an error.
func (s *Server) zoneOf(r *http.Request, st *store.Store) (string, error) {
	q := r.URL.Query()
	if err := once(q, "zone"); err != nil {
		return "", err
	}
	custom := st.Schemas().Zones()
	z := q.Get("zone")
	if z == "" {
		served := s.configOf(r).Zones
		modsec := slices.DeleteFunc(slices.Clone(served), func(z string) bool { return slices.Contains(custom, z) })
		if len(served) > 0 && len(modsec) == 0 {
			// Every zone served is of a custom schema: the first of them.
			for _, c := range custom {
				if slices.Contains(served, c) {
					return c, nil
				}
			}
		}
		return "", nil
	}
	if len(z) > 254 {
		return "", fmt.Errorf("zone: longer than a domain name")
	}
	z = strings.ToLower(z)
	if !strings.HasSuffix(z, ".") {
		z += "."
	}
	if slices.Contains(custom, z) {
		return z, nil
	}
	if slices.Contains(s.configOf(r).Zones, z) {
		return "", nil
	}
	return "", fmt.Errorf("zone %.80q: not a zone of this server", z)
}

// zoneSummaryOf is the summary of a custom zone's totals t.
func zoneSummaryOf(t *store.Totals, floor, public Floor) Summary {
	sum := Summary{
		From: t.From.Unix(), To: t.To.Unix(),
		Reports: t.Total.Reports, Installations: t.Total.Installations, DistinctIDs: int(t.DistinctIDs),
		Breakdowns: map[string][]Breakdown{}, TopCombinations: []Combination{}, PublicMin: floor,
		Zone: t.Zone,
	}
	dims := map[string]map[string]store.Counts{"country": t.Dims[rollup.DimCountry]}
	for name, vs := range t.Fields {
		dims[name] = vs
	}
	if t.Schema != nil {
		for _, name := range t.Schema.Fields() {
			if name != t.Schema.ID() && dims[name] == nil {
				dims[name] = map[string]store.Counts{}
			}
		}
	}
	for name, vs := range dims {
		country := name == "country"
		var exempt func(string) bool
		if country {
			exempt = unknownCountry
		}
		shown, other := groups(vs, floor, TopValues, cmp.Compare[string], jsonLen, exempt)
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
		sum.Breakdowns[name] = rows
	}
	if t.Schema != nil && t.Schema.Version() != "" {
		sum.Version = t.Schema.Version()
		vs := t.Fields[sum.Version]
		sum.LatestVersion = latest(vs, public)
		if sum.LatestVersion != "" {
			sum.InstallationsOnLatest = vs[sum.LatestVersion].Installations
		}
	}
	if sum.Installations > 0 {
		sum.LatestShare = float64(sum.InstallationsOnLatest) / float64(sum.Installations)
	}
	return sum
}
