package api

import (
	_ "embed"
	"net/http"
)

// openAPI documents every API route; TestOpenAPI holds it to the handlers.
//
//go:embed openapi.json
var openAPI []byte

// handle registers an API route and remembers its pattern for the
// OpenAPI test.
func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.patterns = append(s.patterns, pattern)
	s.mux.HandleFunc(pattern, h)
}

// registerV1 adds the /api/v1 routes.
func (s *Server) registerV1() {
	s.handle("GET /api/v1/reports", s.requireRead(s.expensive(s.reports, filtered)))
	s.handle(importsPath, s.requireRead(s.imports))
	s.handle("GET /api/v1/export", s.requireToken(s.expensive(s.export, nil)))
	s.handle("GET /api/v1/summary", s.summary)
	s.handle("GET /api/v1/timeseries", s.timeseries)
	s.handle("GET /api/v1/map", s.mapData)
	s.handle("GET /api/v1/adoption", s.adoption)
	s.handle("GET /api/v1/churn", s.churn)
	s.handle("GET /api/v1/exposure", s.exposure)
	s.handle("GET /badge/exposed.svg", s.exposedBadge)
	s.handle("GET /api/v1/zones", s.zones)
	s.handle("GET "+dailyPath, s.dailyList)
	s.handle("GET "+dailyPath+"/{file}", s.daily)
	for path := range badges {
		s.handle("GET "+path, s.badge)
	}
	s.handle("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
}
