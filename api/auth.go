package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// private tells whether r may see resolver addresses, ECS subnets and raw
// beacons: always when no token is configured, else with the right token.
func (s *Server) private(r *http.Request) bool {
	return s.configOf(r).Token == "" || s.tokenHolder(r)
}

// requireToken answers 401 unless r may see private data.
func (s *Server) requireToken(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.private(r) {
			if s.readTokenHolder(r) {
				writeError(w, http.StatusForbidden, "the read_token only reads /api/v1/reports and /api/v1/imports; this endpoint needs the token")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="statusengine"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <token>")
			return
		}
		h(w, r)
	}
}

// requireRead answers 401 unless r may read the raw records: with the
// token, or the read token (what peers pull with).
func (s *Server) requireRead(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.private(r) && !s.readTokenHolder(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="statusengine"`)
			writeError(w, http.StatusUnauthorized, "this endpoint needs Authorization: Bearer <token> (or the read_token)")
			return
		}
		h(w, r)
	}
}

// tokenHolder tells whether a token is configured and r carries it.
func (s *Server) tokenHolder(r *http.Request) bool {
	return bearer(r, s.configOf(r).Token)
}

// readTokenHolder tells whether a read token is configured and r carries it.
func (s *Server) readTokenHolder(r *http.Request) bool {
	return bearer(r, s.configOf(r).ReadToken)
}

// bearer tells whether token is set and r carries it.
func bearer(r *http.Request, token string) bool {
	if token == "" {
		return false
	}
	scheme, given, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing digests keeps the time independent of the token's length too.
	a, b := sha256.Sum256([]byte(strings.TrimSpace(given))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
