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

// csvHeader names the export's CSV columns: the fields of Report, geo flattened.
var csvHeader = []string{"key", "received", "client_epoch", "zone", "modsec", "server", "apr_compiled", "apr_loaded",
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
			cw.Write(csvRow(toReport(rec)))
			cw.Flush()
			return cw.Error()
		}
	} else {
		enc := json.NewEncoder(bw)
		write = func(rec *store.Record) error { return enc.Encode(toReport(rec)) }
	}
	// Each writes between read transactions: a slow client must not hold one.
	// The write deadline follows the export's progress (see progressWriter).
	st := s.storeOf(r)
	defer s.track(st, w)()
	err = st.Each(from, endOf(to), func(rec *store.Record) error {
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

func csvRow(rp Report) []string {
	opt := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	num := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', -1, 64)
	}
	epoch := ""
	if rp.ClientEpoch != nil {
		epoch = strconv.FormatInt(*rp.ClientEpoch, 10)
	}
	return []string{rp.Key, strconv.FormatInt(rp.Received, 10), epoch, rp.Zone, rp.Modsec, rp.Server, rp.APRCompiled,
		rp.APRLoaded, rp.PCRECompiled, rp.PCRELoaded, rp.Lua, rp.LuaLoaded, rp.Libxml, rp.LibxmlLoaded, rp.ID,
		rp.Format, rp.Beacon, rp.Resolver, opt(rp.ECS), rp.Geo.Country, rp.Geo.CountryName, rp.Geo.City,
		num(rp.Geo.Lat), num(rp.Geo.Lon), rp.Geo.Source, rp.Installation}
}
