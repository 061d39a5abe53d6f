package api

import (
	"encoding/json"
	"fmt"
	"net/http"

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
	// Other sums the countries under the public floor, PointsOther the
	// points under it or past MaxPoints.
	Other       Folded `json:"other"`
	PointsOther Folded `json:"points_other"`
}

func (s *Server) mapData(w http.ResponseWriter, r *http.Request) {
	from, to, err := s.rangeOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	city := s.configOf(r).CityDatabase
	st := s.storeOf(r)
	zone, err := s.zoneOf(r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d0, d1 := store.DaySpan(from, to)
	f, pub := s.floorOf(r), s.configOf(r).PublicMin
	body, err := s.cache.get(fmt.Sprint("map", d0.Unix(), d1.Unix(), city, f, pub, zone), st, &s.configOf(r).Limits, func() ([]byte, error) {
		v, err := s.viewZone(st, from, to, f, pub, zone)
		if err != nil {
			return nil, err
		}
		return json.Marshal(withCity(v.mapData, city))
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}

// withCity is m as the configuration shows it: points only with a City
// database.
func withCity(m MapData, city bool) MapData {
	m.CityDatabase = city
	if !city {
		m.Points, m.PointsOther = []MapPoint{}, Folded{}
	}
	return m
}
