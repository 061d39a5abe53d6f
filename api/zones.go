package api

import (
	"net/http"
	"slices"
	"strings"
)

// ZoneInfo is one entry of /api/v1/zones: ModSecurity's zones together
// (Zone ""), or a zone of a custom schema.
type ZoneInfo struct {
	Zone   string `json:"zone"`   // "" for ModSecurity's zones; else with its final dot
	Schema string `json:"schema"` // "modsecurity" or "custom"
	Title  string `json:"title"`  // the status page's title
	// Fields are the summary's breakdowns but country: ModSecurity's, or
	// the schema's fields but the id.
	Fields   []string `json:"fields"`
	Version  string   `json:"version,omitempty"`  // the version field
	Platform string   `json:"platform,omitempty"` // the platform field
}

// Zones is the answer of /api/v1/zones.
type Zones struct {
	Zones []ZoneInfo `json:"zones"`
}

// defaultTitle is the page's title of ModSecurity's zones without one.
const defaultTitle = "ModSecurity status"

// zones lists what ?zone= may name, for the status page's zone selector:
// ModSecurity's zones first (when the server serves one, or names none),
// then each zone of a custom schema it serves, sorted.
func (s *Server) zones(w http.ResponseWriter, r *http.Request) {
	cfg := s.configOf(r)
	st := s.storeOf(r)
	custom := st.Schemas().Zones()
	served := cfg.Zones
	out := Zones{Zones: []ZoneInfo{}}
	var modsec []string
	for _, z := range served {
		if !slices.Contains(custom, z) {
			modsec = append(modsec, z)
		}
	}
	if len(served) == 0 || len(modsec) > 0 {
		title := defaultTitle
		for _, z := range modsec {
			if t := cfg.Titles[z]; t != "" {
				title = t
				break
			}
		}
		fields := make([]string, 0, len(breakdownDims))
		for _, b := range breakdownDims {
			if b.name != "country" {
				fields = append(fields, b.name)
			}
		}
		out.Zones = append(out.Zones, ZoneInfo{Zone: "", Schema: "modsecurity", Title: title, Fields: fields, Version: "modsec", Platform: "platform"})
	}
	for _, z := range custom {
		if len(served) > 0 && !slices.Contains(served, z) {
			continue
		}
		sc := st.Schemas().Custom(z)
		title := cfg.Titles[z]
		if title == "" {
			title = strings.TrimSuffix(z, ".")
		}
		var fields []string
		for _, f := range sc.Fields() {
			if f != sc.ID() {
				fields = append(fields, f)
			}
		}
		out.Zones = append(out.Zones, ZoneInfo{Zone: z, Schema: "custom", Title: title, Fields: fields, Version: sc.Version(), Platform: sc.Platform()})
	}
	writeJSON(w, http.StatusOK, out)
}
