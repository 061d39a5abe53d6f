// Package api serves the statusengine JSON API and status page on the
// plugin's side listener.
package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxRows bounds the rows one original-compatible request may return.
const MaxRows = 100000

// Server is the HTTP handler of the side listener. Its configuration and the
// store behind it are swapped on Corefile reloads while the listener and its
// connections stay up.
type Server struct {
	mux   *http.ServeMux
	mu    sync.Mutex // serializes Configure
	state atomic.Pointer[state]

	patterns []string // the API routes, for the OpenAPI document's test
	cache    respCache
	views    viewCache
	streams  streams
}

// New returns a Server without a store; requests get 503 until Configure.
func New() *Server {
	s := &Server{mux: http.NewServeMux()}
	s.Configure(nil, Config{})
	s.handle("GET /api/{from}/{to}", s.expensive(s.compat(false), nil))
	s.handle("GET /api/unique/{from}/{to}", s.expensive(s.compat(true), nil))
	s.registerV1()
	s.handle(backupPath, s.requireToken(s.expensive(s.backup, nil)))
	s.handle(importPath, s.requireToken(s.expensive(s.importNDJSON, nil)))
	s.registerPage()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint")
	})
	return s
}

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
	st := s.state.Load()
	if st.store == nil {
		writeError(w, http.StatusServiceUnavailable, "store not open")
		return
	}
	if err := st.store.Down(); err != nil {
		// A damaged file: no read enters it again (store.goDown), and the
		// answer names the file and the commands that repair it.
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	lim := &st.cfg.Limits
	w = paced(w, r, lim)
	if !st.all.acquire(r.Context(), lim.QueueWait) {
		rejected.WithLabelValues("requests").Inc()
		busy(w, retryAfterBusy, "busy: "+strconv.Itoa(st.all.size())+" requests are being served; retry later")
		return
	}
	inFlight.WithLabelValues("all").Inc()
	defer func() {
		inFlight.WithLabelValues("all").Dec()
		st.all.release()
	}()
	s.mux.ServeHTTP(w, withState(r, st))
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
