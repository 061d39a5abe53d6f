package api

import (
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// Limits of /api/v1/reports.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Report is one stored report as the v1 API shows it.
type Report struct {
	Key          string  `json:"key"`
	Received     int64   `json:"received"`
	ClientEpoch  *int64  `json:"client_epoch"`
	Zone         string  `json:"zone"`
	Modsec       string  `json:"modsec"`
	Server       string  `json:"server"`
	APRCompiled  string  `json:"apr_compiled"`
	APRLoaded    string  `json:"apr_loaded"`
	PCRECompiled string  `json:"pcre_compiled"`
	PCRELoaded   string  `json:"pcre_loaded"`
	Lua          string  `json:"lua"`
	LuaLoaded    string  `json:"lua_loaded,omitempty"`
	Libxml       string  `json:"libxml"`
	LibxmlLoaded string  `json:"libxml_loaded,omitempty"`
	ID           string  `json:"id"`
	Format       string  `json:"format"`
	Beacon       string  `json:"beacon"`
	Resolver     string  `json:"resolver"`
	ECS          *string `json:"ecs"`
	Geo          GeoJSON `json:"geo"`
	Installation string  `json:"installation"`
}

// GeoJSON is a report's location.
type GeoJSON struct {
	Country     string   `json:"country"`
	CountryName string   `json:"country_name"`
	City        string   `json:"city"`
	Lat         *float64 `json:"lat"`
	Lon         *float64 `json:"lon"`
	Source      string   `json:"source"`
}

func formatName(f codec.Format) string {
	if f == codec.Format2014 {
		return "2014"
	}
	return "current"
}

// recordKey is the opaque, stable key of a record (and the reports cursor).
func recordKey(k uint64) string { return strconv.FormatUint(k, 16) }

func toReport(rec *store.Record) Report {
	rep := &rec.Report
	h := store.InstallationHash(rec)
	out := Report{
		Key:          recordKey(rec.Key),
		Received:     rec.Received.Unix(),
		Zone:         rec.Zone,
		Modsec:       rep.Modsec,
		Server:       rep.Server,
		APRCompiled:  rep.APRCompiled,
		APRLoaded:    rep.APRLoaded,
		PCRECompiled: rep.PCRECompiled,
		PCRELoaded:   rep.PCRELoaded,
		Lua:          rep.Lua,
		LuaLoaded:    rep.LuaLoaded,
		Libxml:       rep.Libxml,
		LibxmlLoaded: rep.LibxmlLoaded,
		ID:           rep.ID,
		Format:       formatName(rep.Format),
		Beacon:       rep.Beacon,
		Geo: GeoJSON{
			Country:     rec.Geo.Country,
			CountryName: rec.Geo.CountryName,
			City:        rec.Geo.City,
			Source:      rec.Geo.Source,
		},
		Installation: hex.EncodeToString(h[:]),
	}
	if rep.HasEpoch {
		e := rep.Epoch
		out.ClientEpoch = &e
	}
	if rec.Resolver.IsValid() {
		out.Resolver = rec.Resolver.String()
	}
	if rec.ECS.IsValid() {
		e := rec.ECS.String()
		out.ECS = &e
	}
	if rec.Geo.HasPoint {
		lat, lon := rec.Geo.Lat, rec.Geo.Lon
		out.Geo.Lat, out.Geo.Lon = &lat, &lon
	}
	return out
}

// filter is the record filter of reports and export.
type filter struct {
	modsec, server, country, id string
}

func parseFilter(q url.Values) filter {
	return filter{modsec: q.Get("modsec"), server: q.Get("server"), country: q.Get("country"), id: q.Get("id")}
}

// filtered tells whether r asks for a filter: such a page may scan the whole
// range for its rows, so it counts as an expensive request.
func filtered(r *http.Request) bool {
	f := parseFilter(r.URL.Query())
	return f != filter{}
}

// match: server matches the whole signature, its product/version or its
// platform, so "Apache", "Apache/2.4.71" and "Apache/2.4.71 (Debian)" all work.
func (f filter) match(rec *store.Record) bool {
	rep := &rec.Report
	if f.modsec != "" && rep.Modsec != f.modsec {
		return false
	}
	if f.server != "" && rep.Server != f.server && store.ServerVersion(rep.Server) != f.server && store.Platform(rep.Server) != f.server {
		return false
	}
	if f.country != "" && rec.Geo.Country != f.country {
		return false
	}
	if f.id != "" && rep.ID != f.id {
		return false
	}
	return true
}

type reportsResponse struct {
	Reports    []Report `json:"reports"`
	NextCursor *string  `json:"next_cursor"`
}

func (s *Server) reports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := timeRange(q, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := intParam(q, "limit", DefaultLimit, 1, MaxLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	after, err := cursorParam(q)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := parseFilter(q)
	resp := reportsResponse{Reports: make([]Report, 0, min(limit, 64))}
	more := false
	err = s.storeOf(r).RangeAfter(from, endOf(to), after, func(rec *store.Record) bool {
		if !f.match(rec) {
			return true
		}
		if len(resp.Reports) == limit {
			more = true
			return false
		}
		resp.Reports = append(resp.Reports, toReport(rec))
		return true
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the store failed")
		return
	}
	if more {
		c := resp.Reports[len(resp.Reports)-1].Key
		resp.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, resp)
}
