package api

import (
	"errors"
	"net/http"

	"github.com/statusengine/statusengine/api/apitypes"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// importPath takes NDJSON records into the running server's store: how one
// server of a zone pulls in what the others collected (statusengine import
// --api) without being stopped.
const importPath = "POST /api/v1/import"

// importNDJSON stores the NDJSON records of the request body, as the
// operator tool's import does: the same de-duplication as live reports, so
// pushing the same records twice stores nothing new. It writes: behind the
// token. It answers an apitypes.ImportResult.
func (s *Server) importNDJSON(w http.ResponseWriter, r *http.Request) {
	// A large upload is accepted while it keeps arriving at MinRate; each
	// line is bounded (store.MaxLine, 1 MiB).
	pacedBody(w, r, &s.configOf(r).Limits)
	var res apitypes.ImportResult
	stats, err := s.storeOf(r).ImportNDJSONZones(r.Body, s.configOf(r).Zones, res.Reject)
	res.Imported, res.Duplicate, res.Rejected = stats.Imported, stats.Duplicate, stats.Rejected
	if err != nil {
		code := http.StatusInternalServerError // the store failed
		if errors.Is(err, store.ErrLineTooLong) {
			code = http.StatusBadRequest
		}
		res.Error = "import stopped: " + err.Error()
		writeJSON(w, code, res)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
