package record

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// The writers of the interchange form. The NDJSON export (API and CLI),
// the API's report rows and replication all write Wire through json with
// HTML escaping off, so a beacon holding '<', '>' or '&' reads the same by
// every route; CSV flattens Wire by csvColumns, header and row alike.

// NDJSONWriter writes records as NDJSON, one Wire a line.
type NDJSONWriter struct{ enc *json.Encoder }

// NewNDJSONWriter writes to w.
func NewNDJSONWriter(w io.Writer) *NDJSONWriter {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // the bytes a client sent, not \u003c
	return &NDJSONWriter{enc: enc}
}

// Write writes one record's line.
func (n *NDJSONWriter) Write(r *Record) error {
	e := r.Wire()
	return n.enc.Encode(&e)
}

// csvColumns flattens Wire into CSV: each column's name and its value.
// TestCSVColumnsCoverWire fails when a field of Wire has no column.
var csvColumns = []struct {
	name  string
	value func(e *Wire, r *WireReport, g *WireGeo) string
}{
	{"key", func(e *Wire, _ *WireReport, _ *WireGeo) string { return e.Key }},
	{"received", func(e *Wire, _ *WireReport, _ *WireGeo) string { return e.Received.Format(time.RFC3339Nano) }},
	{"epoch", func(e *Wire, _ *WireReport, _ *WireGeo) string {
		if e.Epoch == nil {
			return ""
		}
		return strconv.FormatInt(*e.Epoch, 10)
	}},
	{"zone", func(e *Wire, _ *WireReport, _ *WireGeo) string { return e.Zone }},
	{"modsec", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.Modsec }},
	{"server", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.Server }},
	{"apr_compiled", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.APRCompiled }},
	{"apr_loaded", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.APRLoaded }},
	{"pcre_compiled", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.PCRECompiled }},
	{"pcre_loaded", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.PCRELoaded }},
	{"lua", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.Lua }},
	{"lua_loaded", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.LuaLoaded }},
	{"libxml", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.Libxml }},
	{"libxml_loaded", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.LibxmlLoaded }},
	{"id", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.ID }},
	{"format", func(_ *Wire, r *WireReport, _ *WireGeo) string { return r.Format }},
	{"beacon", func(e *Wire, _ *WireReport, _ *WireGeo) string { return e.Beacon }},
	{"resolver", func(e *Wire, _ *WireReport, _ *WireGeo) string { return e.Resolver }},
	{"ecs", func(e *Wire, _ *WireReport, _ *WireGeo) string { return e.ECS }},
	{"country", func(_ *Wire, _ *WireReport, g *WireGeo) string { return g.Country }},
	{"country_name", func(_ *Wire, _ *WireReport, g *WireGeo) string { return g.CountryName }},
	{"city", func(_ *Wire, _ *WireReport, g *WireGeo) string { return g.City }},
	{"lat", func(_ *Wire, _ *WireReport, g *WireGeo) string { return csvFloat(g.Lat) }},
	{"lon", func(_ *Wire, _ *WireReport, g *WireGeo) string { return csvFloat(g.Lon) }},
	{"geo_source", func(_ *Wire, _ *WireReport, g *WireGeo) string { return g.Source }},
	{"installation", func(e *Wire, _ *WireReport, _ *WireGeo) string { return e.Installation }},
}

// CSVHeader is the CSV form's header: its column names.
func CSVHeader() []string {
	h := make([]string, len(csvColumns))
	for i, col := range csvColumns {
		h[i] = col.name
	}
	return h
}

func csvFloat(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

// CSVWriter writes records as CSV: a header line, then one row a record.
type CSVWriter struct {
	cw  *csv.Writer
	row []string
}

// NewCSVWriter writes the header to w.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	c := &CSVWriter{cw: csv.NewWriter(w), row: make([]string, len(csvColumns))}
	c.cw.Write(CSVHeader())
	c.cw.Flush()
	return c, c.cw.Error()
}

// Write writes one record's row.
func (c *CSVWriter) Write(r *Record) error {
	e := r.Wire()
	rep, g := e.Report, e.Geo
	if rep == nil {
		rep = &WireReport{}
	}
	if g == nil {
		g = &WireGeo{}
	}
	for i, col := range csvColumns {
		c.row[i] = col.value(&e, rep, g)
	}
	c.cw.Write(c.row)
	c.cw.Flush()
	return c.cw.Error()
}
