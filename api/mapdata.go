package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// MapCountry is one country of the map.
type MapCountry struct {
	Code          string `json:"code"`
	Name          string `json:"name"`
	Installations uint64 `json:"installations"`
	Reports       uint64 `json:"reports"`
}

// MapPoint is one rounded coordinate of the map.
type MapPoint struct {
	Lat           float64 `json:"lat"`
	Lon           float64 `json:"lon"`
	Installations uint64  `json:"installations"`
	Reports       uint64  `json:"reports"`
}

// MapData is the answer of /api/v1/map.
type MapData struct {
	From         int64        `json:"from"`
	To           int64        `json:"to"`
	CityDatabase bool         `json:"city_database"`
	Countries    []MapCountry `json:"countries"`
	Points       []MapPoint   `json:"points"`
	// Unknown counts the reports no country was found for (private or
	// unlisted addresses).
	Unknown store.Counts `json:"unknown"`
}

func (s *Server) mapData(w http.ResponseWriter, r *http.Request) {
	from, to, err := timeRange(r.URL.Query(), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	city := s.configOf(r).CityDatabase
	st := s.storeOf(r)
	d0, d1 := store.DaySpan(from, to)
	body, err := s.cache.get(fmt.Sprint("map", d0.Unix(), d1.Unix(), city), st, &s.configOf(r).Limits, func() ([]byte, error) {
		m, err := computeMap(st, from, to, city)
		if err != nil {
			return nil, err
		}
		return json.Marshal(m)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}

func computeMap(st *store.Store, from, to time.Time, city bool) (*MapData, error) {
	t, err := st.Totals(from, to)
	if err != nil {
		return nil, err
	}
	m := MapData{From: t.From.Unix(), To: t.To.Unix(), CityDatabase: city, Countries: []MapCountry{}, Points: []MapPoint{}}
	for _, b := range breakdown(t.Dims[store.DimCountry], true) {
		if b.Value == "" {
			m.Unknown = store.Counts{Reports: b.Reports, Installations: b.Installations}
			continue
		}
		m.Countries = append(m.Countries, MapCountry{Code: b.Value, Name: geo.CountryName(b.Value), Installations: b.Installations, Reports: b.Reports})
	}
	if city {
		for p, c := range t.Points {
			m.Points = append(m.Points, MapPoint{Lat: p.Lat, Lon: p.Lon, Installations: c.Installations, Reports: c.Reports})
		}
	}
	sort.Slice(m.Points, func(i, j int) bool {
		a, b := m.Points[i], m.Points[j]
		if a.Installations != b.Installations {
			return a.Installations > b.Installations
		}
		if a.Lat != b.Lat {
			return a.Lat < b.Lat
		}
		return a.Lon < b.Lon
	})
	return &m, nil
}
