package record

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// Wire is the one JSON form of a record: a line of NDJSON export and
// import, a row of the API's reports, what name servers replicate. Key,
// Received, Zone, Resolver, ECS, Beacon, Epoch and Geo are the record;
// Report (the fields decoded from the beacon) and Installation (the
// estimate's hash) are there for readers and ignored on import, where the
// beacon is parsed again. The API's CSV flattens it.
type Wire struct {
	Key          string      `json:"key"`      // the receive time in unix nanoseconds, hex: the record's id
	Received     time.Time   `json:"received"` // RFC 3339 with nanoseconds, UTC
	Zone         string      `json:"zone"`
	Resolver     string      `json:"resolver,omitempty"`
	ECS          string      `json:"ecs,omitempty"`
	Beacon       string      `json:"beacon"`
	Epoch        *int64      `json:"epoch,omitempty"` // absent when the name had no epoch label
	Geo          *WireGeo    `json:"geo,omitempty"`
	Report       *WireReport `json:"report,omitempty"`
	Installation string      `json:"installation,omitempty"`
}

// WireGeo is the JSON form of a location.
type WireGeo struct {
	Country     string   `json:"country,omitempty"`
	CountryName string   `json:"country_name,omitempty"`
	City        string   `json:"city,omitempty"`
	Lat         *float64 `json:"lat,omitempty"`
	Lon         *float64 `json:"lon,omitempty"`
	Source      string   `json:"source,omitempty"`
}

// WireReport holds the fields decoded from the beacon.
type WireReport struct {
	Format       string `json:"format"` // "current" or "2014"
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

// FormatName is the wire name of a beacon layout.
func FormatName(f codec.Format) string {
	switch f {
	case codec.Format2014:
		return "2014"
	case codec.FormatSchema:
		return "schema"
	}
	return "current"
}

// KeyString is the wire form of a record key.
func KeyString(k uint64) string { return strconv.FormatUint(k, 16) }

// MaxKey is the largest record key: a receive time below 1<<33 Unix
// seconds, in nanoseconds (what clampNano allows).
const MaxKey = uint64(1<<33)*uint64(time.Second) - 1

// ParseKey reads a record key as KeyString writes it.
func ParseKey(s string) (uint64, error) {
	k, err := strconv.ParseUint(s, 16, 64)
	if err != nil || k == 0 || k > MaxKey {
		return 0, errors.New("not a record key")
	}
	return k, nil
}

// Wire returns the wire form of r.
func (r *Record) Wire() Wire {
	e := Wire{
		Key:      KeyString(r.Key),
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
	if g := r.Geo; g != (geo.Location{}) {
		eg := &WireGeo{Country: g.Country, CountryName: g.CountryName, City: g.City, Source: g.Source}
		if g.HasPoint {
			lat, lon := g.Lat, g.Lon
			eg.Lat, eg.Lon = &lat, &lon
		}
		e.Geo = eg
	}
	if rep := r.Report; rep.Format != 0 && rep.Format != codec.FormatSchema {
		e.Report = &WireReport{FormatName(rep.Format), rep.Modsec, rep.Server, rep.APRCompiled, rep.APRLoaded,
			rep.PCRECompiled, rep.PCRELoaded, rep.Lua, rep.LuaLoaded, rep.Libxml, rep.LibxmlLoaded, rep.ID}
	}
	h := InstallationHash(r)
	e.Installation = hex.EncodeToString(h[:])
	return e
}

// InstallationHash is the first 8 bytes of SHA-256 of InstallationKey: the
// installation estimate as the API shows it.
func InstallationHash(r *Record) [8]byte {
	var buf [512]byte // on the stack: a real key is about 100 bytes; a longer one grows on the heap
	h := sha256.Sum256(appendInstallationKey(buf[:0], r))
	var k [8]byte
	copy(k[:], h[:8])
	return k
}

// Record turns a wire form back into a record: the beacon is parsed again
// with the zone's schema in sc (the codec's grammar for ModSecurity's),
// addresses and times are read. Everything else a record must obey is
// Record.Validate's, in the writer.
func (e *Wire) Record(sc *Schemas) (*Record, error) {
	rep, err := sc.Parse(e.Zone, e.Beacon)
	if err != nil {
		return nil, fmt.Errorf("beacon: %w", err)
	}
	if e.Epoch != nil {
		rep.Epoch, rep.HasEpoch = *e.Epoch, true
	}
	rec := &Record{Received: e.Received.UTC(), Zone: e.Zone, Report: rep}
	if e.Received.IsZero() {
		return nil, errors.New("received: missing")
	}
	if e.Resolver != "" {
		if rec.Resolver, err = netip.ParseAddr(e.Resolver); err != nil {
			return nil, fmt.Errorf("resolver: %w", err)
		}
		rec.Resolver = rec.Resolver.Unmap().WithZone("")
	}
	if e.ECS != "" {
		if rec.ECS, err = netip.ParsePrefix(e.ECS); err != nil {
			return nil, fmt.Errorf("ecs: %w", err)
		}
		rec.ECS = rec.ECS.Masked()
	}
	if g := e.Geo; g != nil {
		rec.Geo = geo.Location{Country: g.Country, CountryName: g.CountryName, City: g.City, Source: g.Source}
		if g.Lat != nil && g.Lon != nil {
			rec.Geo.Lat, rec.Geo.Lon, rec.Geo.HasPoint = *g.Lat, *g.Lon, true
		}
	}
	return rec, nil
}

// importLine reads Wire lines and also those of version 1's API export, whose
// "received" was unix seconds, "key" the exact receive time and
// "client_epoch" the epoch label.
type importLine struct {
	Wire
	Received    json.RawMessage `json:"received"`
	ClientEpoch *int64          `json:"client_epoch"`
}

// ParseLine reads one NDJSON line into a record, its beacon with the
// zone's schema in sc.
func ParseLine(b []byte, sc *Schemas) (*Record, error) {
	var l importLine
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	e := &l.Wire
	switch {
	case l.Key != "":
		k, err := ParseKey(l.Key)
		if err != nil {
			return nil, fmt.Errorf("key: %w", err)
		}
		e.Received = time.Unix(0, int64(k))
	case len(l.Received) > 0 && l.Received[0] == '"':
		if err := json.Unmarshal(l.Received, &e.Received); err != nil {
			return nil, fmt.Errorf("received: %w", err)
		}
	case len(l.Received) > 0:
		sec, err := strconv.ParseInt(string(l.Received), 10, 64)
		if err != nil || sec <= 0 || sec >= 1<<33 {
			return nil, errors.New("received: not a time")
		}
		e.Received = time.Unix(sec, 0)
	}
	if e.Epoch == nil {
		e.Epoch = l.ClientEpoch
	}
	return e.Record(sc)
}
