package api

import (
	"encoding/json"
	"fmt"
	"net/http"

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
	d0, d1 := store.DaySpan(from, to)
	f, pub := s.floorOf(r), s.configOf(r).PublicMin
	body, err := s.cache.get(fmt.Sprint("summary", d0.Unix(), d1.Unix(), f, pub), st, &s.configOf(r).Limits, func() ([]byte, error) {
		v, err := s.viewOf(r, from, to)
		if err != nil {
			return nil, err
		}
		sum := v.summary
		sum.InstallationsEverKnown = st.InstallationCount()
		return json.Marshal(sum)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}
