// Package api serves the statusengine JSON API and status page on the
// plugin's side listener.
package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// MaxRows bounds the rows one original-compatible request may return.
const MaxRows = 100000

// Server is the HTTP handler of the side listener. The store behind it is
// swapped on Corefile reloads while the listener stays up.
type Server struct {
	mux   *http.ServeMux
	store atomic.Pointer[store.Store]
	cfg   atomic.Pointer[Config]

	patterns []string // the API routes, for the OpenAPI document's test
	cache    respCache
}

// New returns a Server without a store; requests get 503 until SetStore.
func New() *Server {
	s := &Server{mux: http.NewServeMux()}
	s.cfg.Store(&Config{})
	s.handle("GET /api/{from}/{to}", s.compat(false))
	s.handle("GET /api/unique/{from}/{to}", s.compat(true))
	s.registerV1()
	s.handle(backupPath, s.requireToken(s.backup))
	s.handle(importPath, s.requireToken(s.importNDJSON))
	s.registerPage()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	return s
}

// SetStore points the API at st.
func (s *Server) SetStore(st *store.Store) { s.store.Store(st) }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Read-only but for the import: other methods get 405 rather than the
	// catch-all's 404, whatever the path.
	if r.Method != http.MethodGet && r.Method != http.MethodHead &&
		(r.Method != http.MethodPost || r.URL.Path != strings.TrimPrefix(importPath, "POST ")) {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method not allowed: the API is read-only")
		return
	}
	if s.store.Load() == nil {
		writeError(w, http.StatusServiceUnavailable, "store not open")
		return
	}
	s.mux.ServeHTTP(w, r)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// parseTime reads a Unix time in seconds, as every time parameter is.
func parseTime(s string) (time.Time, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || !digits(s) || n < 0 || n >= 1<<33 {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}
