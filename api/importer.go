package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// importPath takes NDJSON records into the running server's store: how one
// server of a zone pulls in what the others collected (statusengine import
// --api) without being stopped.
const importPath = "POST /api/v1/import"

// maxImportErrors bounds the rejected lines named in the answer.
const maxImportErrors = 10

// importResult is the answer of importPath.
type importResult struct {
	Imported  int      `json:"imported"`
	Duplicate int      `json:"duplicate"`
	Rejected  int      `json:"rejected"`
	Errors    []string `json:"errors,omitempty"`
}

// importNDJSON stores the NDJSON records of the request body, as the
// operator tool's import does: the same de-duplication as live reports, so
// pushing the same records twice stores nothing new. It writes: behind the
// token.
func (s *Server) importNDJSON(w http.ResponseWriter, r *http.Request) {
	// A large upload is accepted while it keeps arriving at MinRate; each
	// line is bounded (store.MaxLine, 1 MiB).
	pacedBody(w, r, &s.configOf(r).Limits)
	var res importResult
	stats, err := s.storeOf(r).ImportNDJSONZones(r.Body, s.configOf(r).Zones, func(line int, err error) {
		if len(res.Errors) < maxImportErrors {
			res.Errors = append(res.Errors, fmt.Sprintf("line %d: %v", line, err))
		}
	})
	res.Imported, res.Duplicate, res.Rejected = stats.Imported, stats.Duplicate, stats.Rejected
	if err != nil {
		code := http.StatusInternalServerError // the store failed
		if errors.Is(err, store.ErrLineTooLong) {
			code = http.StatusBadRequest
		}
		writeJSON(w, code, struct {
			importResult
			Error string `json:"error"`
		}{res, "import stopped: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, res)
}
