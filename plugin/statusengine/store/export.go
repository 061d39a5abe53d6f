package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// Exported is the NDJSON form of a Record: one JSON object per line, as
// Export writes and ImportNDJSON reads. Received, Zone, Resolver, ECS,
// Beacon, Epoch and Geo are the record; the decoded fields are there for
// readers (jq, spreadsheets) and are ignored on import, where the beacon is
// parsed again.
type Exported struct {
	Received time.Time     `json:"received"` // RFC 3339 with nanoseconds, UTC
	Zone     string        `json:"zone"`
	Resolver string        `json:"resolver,omitempty"`
	ECS      string        `json:"ecs,omitempty"`
	Beacon   string        `json:"beacon"`
	Epoch    *int64        `json:"epoch,omitempty"` // absent when the name had no epoch label
	Geo      *ExportedGeo  `json:"geo,omitempty"`
	Fields   *ExportedBody `json:"report,omitempty"`
}

// ExportedGeo is the NDJSON form of Geo.
type ExportedGeo struct {
	Country     string   `json:"country,omitempty"`
	CountryName string   `json:"country_name,omitempty"`
	City        string   `json:"city,omitempty"`
	Lat         *float64 `json:"lat,omitempty"`
	Lon         *float64 `json:"lon,omitempty"`
	Source      string   `json:"source,omitempty"`
}

// ExportedBody holds the fields decoded from the beacon.
type ExportedBody struct {
	Format       string `json:"format"`
	Modsec       string `json:"modsec"`
	Server       string `json:"server"`
	APRCompiled  string `json:"apr_compiled"`
	APRLoaded    string `json:"apr_loaded"`
	PCRECompiled string `json:"pcre_compiled"`
	PCRELoaded   string `json:"pcre_loaded"`
	Lua          string `json:"lua"`
	LuaLoaded    string `json:"lua_loaded,omitempty"`
	Libxml       string `json:"libxml"`
	LibxmlLoaded string `json:"libxml_loaded,omitempty"`
	ID           string `json:"id"`
}

// Export returns the NDJSON form of r.
func (r *Record) Export() Exported {
	e := Exported{
		Received: r.Received.UTC(),
		Zone:     r.Zone,
		Beacon:   r.Report.Beacon,
	}
	if r.Resolver.IsValid() {
		e.Resolver = r.Resolver.String()
	}
	if r.ECS.IsValid() {
		e.ECS = r.ECS.String()
	}
	if r.Report.HasEpoch {
		ep := r.Report.Epoch
		e.Epoch = &ep
	}
	if g := r.Geo; g != (Geo{}) {
		eg := &ExportedGeo{Country: g.Country, CountryName: g.CountryName, City: g.City, Source: g.Source}
		if g.HasPoint {
			lat, lon := g.Lat, g.Lon
			eg.Lat, eg.Lon = &lat, &lon
		}
		e.Geo = eg
	}
	if rep := r.Report; rep.Format != 0 {
		format := "current"
		if rep.Format == codec.Format2014 {
			format = "2014"
		}
		e.Fields = &ExportedBody{format, rep.Modsec, rep.Server, rep.APRCompiled, rep.APRLoaded,
			rep.PCRECompiled, rep.PCRELoaded, rep.Lua, rep.LuaLoaded, rep.Libxml, rep.LibxmlLoaded, rep.ID}
	}
	return e
}

// Record checks e and turns it back into a record; the beacon must parse.
func (e *Exported) Record() (*Record, error) {
	if e.Received.IsZero() || e.Received.Unix() <= 0 || e.Received.Unix() >= 1<<33 {
		return nil, errors.New("received time missing or out of range")
	}
	rep, err := codec.ParseBeacon(e.Beacon)
	if err != nil {
		return nil, fmt.Errorf("beacon: %w", err)
	}
	if e.Epoch != nil {
		if *e.Epoch < 0 || *e.Epoch > 999999999999 {
			return nil, errors.New("epoch out of range")
		}
		rep.Epoch, rep.HasEpoch = *e.Epoch, true
	}
	rec := &Record{Received: e.Received.UTC(), Zone: e.Zone, Report: rep}
	if e.Resolver != "" {
		if rec.Resolver, err = netip.ParseAddr(e.Resolver); err != nil {
			return nil, fmt.Errorf("resolver: %w", err)
		}
		rec.Resolver = rec.Resolver.Unmap()
	}
	if e.ECS != "" {
		if rec.ECS, err = netip.ParsePrefix(e.ECS); err != nil {
			return nil, fmt.Errorf("ecs: %w", err)
		}
	}
	if g := e.Geo; g != nil {
		rec.Geo = Geo{Country: g.Country, CountryName: g.CountryName, City: g.City, Source: g.Source}
		if g.Lat != nil && g.Lon != nil {
			rec.Geo.Lat, rec.Geo.Lon, rec.Geo.HasPoint = *g.Lat, *g.Lon, true
		}
	}
	return rec, nil
}

// Export writes the records received in [from, to] to w as NDJSON, oldest
// first, and returns how many it wrote.
func (s *Store) Export(w io.Writer, from, to time.Time) (int, error) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	n := 0
	err := s.Each(from, to, func(r *Record) error {
		e := r.Export()
		if err := enc.Encode(&e); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
