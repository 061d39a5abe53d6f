package api

import (
	"net/http"
	"strconv"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// importsPath lists the records imported below the newest key, in the
// order they were imported: what peers pull besides /api/v1/reports, whose
// key cursor has passed them (see store.ImportedAfter).
const importsPath = "GET /api/v1/imports"

// imports answers importsPath with an apitypes.ImportsPage.
func (s *Server) imports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q, "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	after, err := hexParam(q, "cursor", "cursor must be the cursor of an earlier response", func(v string) (uint64, error) {
		return strconv.ParseUint(v, 16, 64)
	})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	recs, last, more, err := s.storeOf(r).ImportedAfter(after, limit)
	if err != nil {
		storeError(w, err) // a store that is down: 503 with the repair commands
		return
	}
	out := apitypes.ImportsPage{Reports: make([]record.Wire, 0, len(recs)), Cursor: strconv.FormatUint(last, 16), More: more}
	for i := range recs {
		out.Reports = append(out.Reports, recs[i].Wire())
	}
	writeJSON(w, http.StatusOK, out)
}
