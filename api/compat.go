package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// compatResponse is the shape of the original 2014 service's JSON.
type compatResponse struct {
	Time    compatTime     `json:"time"`
	Amount  int            `json:"amount"`
	Results []compatResult `json:"results"`
}

type compatTime struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// compatResult keeps the original field names and string types, then adds the
// fields the original stripped or never filled.
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
	ID           string    `json:"id"`
	ClientEpoch  *int64    `json:"client_epoch"`
	Received     time.Time `json:"received"`
	Beacon       string    `json:"beacon,omitempty"` // left out for the public when a token is set
	Country      string    `json:"country"`
	CountryName  string    `json:"country_name"`
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
		resp := compatResponse{Time: compatTime{fromS, toS}, Results: []compatResult{}}
		index := map[string]int{} // installation -> row, for unique
		private := s.private(r)
		tooMany := false
		err := s.storeOf(r).Each(from, to.Add(time.Second-1), 0, func(rec *store.Record) error {
			row := toCompat(rec)
			if !private {
				row.Beacon = ""
			}
			if unique {
				k := store.InstallationKey(rec)
				if i, ok := index[k]; ok {
					resp.Results[i] = row // keep the latest report of each installation
					return nil
				}
				index[k] = len(resp.Results)
			}
			if len(resp.Results) >= MaxRows {
				tooMany = true
				return errEnough
			}
			resp.Results = append(resp.Results, row)
			return nil
		})
		if err == errEnough {
			err = nil
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "reading the store failed")
			return
		}
		if tooMany {
			writeError(w, http.StatusBadRequest, "more than "+strconv.Itoa(MaxRows)+" rows: narrow the range")
			return
		}
		resp.Amount = len(resp.Results)
		writeJSON(w, http.StatusOK, resp)
	}
}

func toCompat(rec *store.Record) compatResult {
	rep := &rec.Report
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
		ID:           rep.ID,
		Received:     rec.Received,
		Beacon:       rep.Beacon,
		Country:      rec.Geo.Country,
		CountryName:  rec.Geo.CountryName,
	}
	if rep.HasEpoch {
		e := rep.Epoch
		row.ClientEpoch = &e
	}
	row.DNSServer.City = rec.Geo.City
	if rec.Geo.HasPoint {
		row.DNSServer.Latitude = strconv.FormatFloat(rec.Geo.Lat, 'f', 4, 64)
		row.DNSServer.Longitude = strconv.FormatFloat(rec.Geo.Lon, 'f', 4, 64)
	}
	return row
}
