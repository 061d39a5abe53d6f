package api

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// csvHeader names the export's CSV columns: the fields of store.Wire,
// report and geo flattened.
var csvHeader = []string{"key", "received", "epoch", "zone", "modsec", "server", "apr_compiled", "apr_loaded",
	"pcre_compiled", "pcre_loaded", "lua", "lua_loaded", "libxml", "libxml_loaded", "id", "format", "beacon",
	"resolver", "ecs", "country", "country_name", "city", "lat", "lon", "geo_source", "installation"}

func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := timeRange(q, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	format, err := oneOf(q, "format", "ndjson", "ndjson", "csv")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := parseFilter(q)
	h := w.Header()
	name := "statusengine-" + strconv.FormatInt(from.Unix(), 10) + "-" + strconv.FormatInt(to.Unix(), 10)
	if format == "csv" {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	} else {
		h.Set("Content-Type", "application/x-ndjson")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.ndjson"`)
	}
	// Records go out as they are read, through a small buffer: an export of
	// years holds one record in memory at a time.
	bw := bufio.NewWriterSize(w, 32<<10)
	var write func(*store.Record) error
	if format == "csv" {
		cw := csv.NewWriter(bw)
		cw.Write(csvHeader)
		write = func(rec *store.Record) error {
			cw.Write(csvRow(rec.Wire()))
			cw.Flush()
			return cw.Error()
		}
	} else {
		enc := json.NewEncoder(bw)
		write = func(rec *store.Record) error { return enc.Encode(rec.Wire()) }
	}
	// Each writes between read transactions: a slow client must not hold one.
	// The write deadline follows the export's progress (see progressWriter).
	st := s.storeOf(r)
	defer s.track(st, w)()
	err = st.Each(from, endOf(to), 0, func(rec *store.Record) error {
		if !f.match(rec) {
			return nil
		}
		return write(rec) // an error: the client went away or was too slow
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		// The store failed or closed (a reload onto another db), or the
		// client is gone: abort the chunked body, so that the client sees a
		// truncated answer, never a clean end of a partial export.
		streamsCut.Inc()
		panic(http.ErrAbortHandler)
	}
}

func csvRow(e store.Wire) []string {
	num := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	epoch := ""
	if e.Epoch != nil {
		epoch = strconv.FormatInt(*e.Epoch, 10)
	}
	r, g := e.Report, e.Geo
	if r == nil {
		r = &store.WireReport{}
	}
	if g == nil {
		g = &store.WireGeo{}
	}
	return []string{e.Key, e.Received.Format(time.RFC3339Nano), epoch, e.Zone, r.Modsec, r.Server, r.APRCompiled,
		r.APRLoaded, r.PCRECompiled, r.PCRELoaded, r.Lua, r.LuaLoaded, r.Libxml, r.LibxmlLoaded, r.ID,
		r.Format, e.Beacon, e.Resolver, e.ECS, g.Country, g.CountryName, g.City,
		num(g.Lat), num(g.Lon), g.Source, e.Installation}
}
