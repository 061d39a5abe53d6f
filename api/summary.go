package api

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// TopCombinations is how many version combinations a summary lists.
const TopCombinations = 20

// Breakdown is one value of a dimension in a summary.
type Breakdown struct {
	Value         string `json:"value"`
	Name          string `json:"name,omitempty"` // countries only
	Reports       uint64 `json:"reports"`
	Installations uint64 `json:"installations"`
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
	From                   int64                  `json:"from"`
	To                     int64                  `json:"to"`
	Reports                uint64                 `json:"reports"`
	Installations          uint64                 `json:"installations"`
	DistinctIDs            int                    `json:"distinct_ids"`
	LatestModsec           string                 `json:"latest_modsec"`
	InstallationsOnLatest  uint64                 `json:"installations_on_latest"`
	LatestShare            float64                `json:"latest_share"`
	Breakdowns             map[string][]Breakdown `json:"breakdowns"`
	TopCombinations        []Combination          `json:"top_combinations"`
	InstallationsEverKnown uint64                 `json:"installations_ever"`
}

// breakdownDims names the breakdowns of a summary.
var breakdownDims = []struct {
	name string
	dim  store.Dimension
}{
	{"modsec", store.DimModsec},
	{"platform", store.DimPlatform},
	{"server", store.DimServer},
	{"apr", store.DimAPR},
	{"pcre", store.DimPCRE},
	{"lua", store.DimLua},
	{"libxml", store.DimLibxml},
	{"country", store.DimCountry},
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
	from, to, err := timeRange(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.storeOf(r)
	d0, d1 := store.DaySpan(from, to)
	body, err := s.cache.get(fmt.Sprint("summary", d0.Unix(), d1.Unix()), st, &s.configOf(r).Limits, func() ([]byte, error) {
		sum, err := computeSummary(st, from, to)
		if err != nil {
			return nil, err
		}
		return json.Marshal(sum)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}

func computeSummary(st *store.Store, from, to time.Time) (*Summary, error) {
	t, err := st.Totals(from, to)
	if err != nil {
		return nil, err
	}
	sum := Summary{
		From:                   t.From.Unix(),
		To:                     t.To.Unix(),
		Reports:                t.Total.Reports,
		Installations:          t.Total.Installations,
		DistinctIDs:            int(t.DistinctIDs),
		Breakdowns:             map[string][]Breakdown{},
		TopCombinations:        combinations(t.Combos, TopCombinations),
		InstallationsEverKnown: st.InstallationCount(),
	}
	for _, b := range breakdownDims {
		sum.Breakdowns[b.name] = breakdown(t.Dims[b.dim], b.dim == store.DimCountry)
	}
	for v := range t.Dims[store.DimModsec] {
		if sum.LatestModsec == "" || compareVersions(v, sum.LatestModsec) > 0 {
			sum.LatestModsec = v
		}
	}
	if sum.LatestModsec != "" {
		sum.InstallationsOnLatest = t.Dims[store.DimModsec][sum.LatestModsec].Installations
	}
	if sum.Installations > 0 {
		sum.LatestShare = float64(sum.InstallationsOnLatest) / float64(sum.Installations)
	}
	return &sum, nil
}

// breakdown lists values by installations, then reports, then value.
func breakdown(m map[string]store.Counts, countries bool) []Breakdown {
	out := make([]Breakdown, 0, len(m))
	for v, c := range m {
		b := Breakdown{Value: v, Reports: c.Reports, Installations: c.Installations}
		if countries {
			b.Name = geo.CountryName(v)
			if v == "" {
				b.Name = "Unknown"
			}
		}
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Installations != b.Installations {
			return a.Installations > b.Installations
		}
		if a.Reports != b.Reports {
			return a.Reports > b.Reports
		}
		return a.Value < b.Value
	})
	return out
}

// combinations lists the n version combinations with the most
// installations, then reports.
func combinations(m map[store.Combo]store.Counts, n int) []Combination {
	out := make([]Combination, 0, len(m))
	for c, k := range m {
		out = append(out, Combination{Modsec: c.Modsec, Server: c.Server, APR: c.APR, PCRE: c.PCRE, Lua: c.Lua, Libxml: c.Libxml,
			Installations: k.Installations, Reports: k.Reports})
	}
	slices.SortFunc(out, func(a, b Combination) int {
		return cmp.Or(cmp.Compare(b.Installations, a.Installations), cmp.Compare(b.Reports, a.Reports),
			cmp.Compare(a.Modsec, b.Modsec), cmp.Compare(a.Server, b.Server), cmp.Compare(a.APR, b.APR),
			cmp.Compare(a.PCRE, b.PCRE), cmp.Compare(a.Lua, b.Lua), cmp.Compare(a.Libxml, b.Libxml))
	})
	return out[:min(n, len(out))]
}
