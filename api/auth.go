package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Config is what the Corefile tells the API.
type Config struct {
	// Token, when set, guards the raw records: /api/v1/reports,
	// /api/v1/export and the beacon of the compatible endpoints need
	// "Authorization: Bearer <Token>".
	Token string
	// CityDatabase tells that a City database geolocates reports, so the
	// map has points.
	CityDatabase bool
}

// SetConfig applies c to the requests that follow.
func (s *Server) SetConfig(c Config) {
	s.cfg.Store(&c)
}

func (s *Server) config() *Config { return s.cfg.Load() }

// private tells whether r may see resolver addresses, ECS subnets and raw
// beacons: always when no token is configured, else with the right token.
func (s *Server) private(r *http.Request) bool {
	token := s.config().Token
	if token == "" {
		return true
	}
	auth := r.Header.Get("Authorization")
	scheme, given, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing digests keeps the time independent of the token's length too.
	a, b := sha256.Sum256([]byte(strings.TrimSpace(given))), sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
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
