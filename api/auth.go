package api

import "net/http"

// private tells whether r may see resolver addresses, ECS subnets and raw
// beacons: always when no token is configured, else with the right token.
func (s *Server) private(r *http.Request) bool {
	return s.configOf(r).Token == "" || s.tokenHolder(r)
}

// requireToken answers 401 unless r may see private data.
func (s *Server) requireToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.private(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="statusengine"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <token>")
			return
		}
		h(w, r)
	}
}
