package api

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// The original 2014 service's JSON, {"time":{"from","to"},"amount":N,
// "results":[...]}, is written row by row: a range of years holds one record
// in memory at a time. So "amount" comes after "results" (JSON objects are
// unordered; every parser reads them the same).

type compatTime struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// compatResult keeps the original field names and string types, then adds the
// fields the original stripped or never filled. The fields marked private
// are left out of answers to the public when a token is set: with them the
// beacon could be rebuilt byte for byte (the original published ts_epoch,
// version and dns_server).
type compatResult struct {
	TSEpoch      string    `json:"ts_epoch"`
	Version      string    `json:"version"`
	DNSServer    compatDNS `json:"dns_server"`
	Server       string    `json:"server"`
	APRCompiled  string    `json:"apr_compiled"`
	APRLoaded    string    `json:"apr_loaded"`
	PCRECompiled string    `json:"pcre_compiled"`
	PCRELoaded   string    `json:"pcre_loaded"`
	Lua          string    `json:"lua"`
	Libxml       string    `json:"libxml"`
	Country      string    `json:"country"`
	CountryName  string    `json:"country_name"`
	Installation string    `json:"installation"`           // the estimate's hash
	ID           string    `json:"id,omitempty"`           // private
	ClientEpoch  *int64    `json:"client_epoch,omitempty"` // private
	Received     time.Time `json:"received,omitzero"`      // private: to the nanosecond
	Beacon       string    `json:"beacon,omitempty"`       // private
}

type compatDNS struct {
	Latitude  string `json:"latitude"`
	Longitude string `json:"longitude"`
	City      string `json:"city"`
}

func (s *Server) compat(unique bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fromS, toS := r.PathValue("from"), r.PathValue("to")
		from, ok1 := parseTime(fromS)
		to, ok2 := parseTime(toS)
		if !ok1 || !ok2 {
			writeError(w, http.StatusBadRequest, "from and to must be Unix times in seconds")
			return
		}
		if to.Before(from) {
			writeError(w, http.StatusBadRequest, "to is before from")
			return
		}
		st := s.storeOf(r)
		to = endOf(to)
		// Counted from the keys first: past MaxRows the answer is a 400,
		// which a stream already under way could not be.
		n, err := st.CountRange(from, to, MaxRows+1)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "reading the store failed")
			return
		}
		if n > MaxRows {
			writeError(w, http.StatusBadRequest, "more than "+strconv.Itoa(MaxRows)+" rows: narrow the range")
			return
		}
		// unique keeps the latest report of each installation: a first pass
		// finds it (a map of at most MaxRows installations).
		var latest map[[8]byte]uint64
		if unique {
			latest = map[[8]byte]uint64{}
			err := st.Each(from, to, 0, func(rec *record.Record) error {
				if rec.Report.Format == codec.FormatSchema {
					return nil
				}
				latest[record.InstallationHash(rec)] = rec.Key
				return nil
			})
			if err != nil {
				writeError(w, http.StatusInternalServerError, "reading the store failed")
				return
			}
		}
		private := s.private(r)
		defer s.track(st, w)()
		out := newJSONStream(w)
		out.raw(`{"time":`)
		out.value(compatTime{fromS, toS})
		out.raw(`,"results":[`)
		err = st.Each(from, to, 0, func(rec *record.Record) error {
			if rec.Report.Format == codec.FormatSchema {
				return nil // the original API is ModSecurity's: other schemas' reports are not its rows
			}
			if unique && latest[record.InstallationHash(rec)] != rec.Key {
				return nil
			}
			return out.row(toCompat(rec, private))
		})
		if err == nil {
			err = out.end(`],"amount":` + strconv.Itoa(out.rows) + "}\n")
		}
		if err != nil {
			out.abort(err)
		}
	}
}

func toCompat(rec *record.Record, private bool) compatResult {
	rep := &rec.Report
	h := record.InstallationHash(rec)
	row := compatResult{
		TSEpoch:      strconv.FormatInt(rec.Received.Unix(), 10),
		Version:      rep.Modsec,
		Server:       rep.Server,
		APRCompiled:  rep.APRCompiled,
		APRLoaded:    rep.APRLoaded,
		PCRECompiled: rep.PCRECompiled,
		PCRELoaded:   rep.PCRELoaded,
		Lua:          rep.Lua,
		Libxml:       rep.Libxml,
		Country:      rec.Geo.Country,
		CountryName:  rec.Geo.CountryName,
		Installation: hex.EncodeToString(h[:]),
	}
	row.DNSServer.City = rec.Geo.City
	if rec.Geo.HasPoint {
		row.DNSServer.Latitude = strconv.FormatFloat(rec.Geo.Lat, 'f', 4, 64)
		row.DNSServer.Longitude = strconv.FormatFloat(rec.Geo.Lon, 'f', 4, 64)
	}
	if private {
		row.ID, row.Received, row.Beacon = rep.ID, rec.Received, rep.Beacon
		if rep.HasEpoch {
			e := rep.Epoch
			row.ClientEpoch = &e
		}
	}
	return row
}
