package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// Daily public snapshots: GET /api/v1/public/daily/YYYY-MM-DD.json is the
// public summary, map and adoption of that UTC day, under the public floor
// whoever asks. Once the day has been over for SnapshotGrace it is rendered
// once, kept in the store (never changed, never deleted: retention keeps
// them) and served as kept, byte for byte, across requests and restarts.
// Until then it is rendered live with a short max-age; a day to come is
// 404.
const (
	dailyPath = "/api/v1/public/daily"
	// SnapshotGrace is how long after its end a day is still rendered live:
	// reports pulled from peers and imports may still add to it.
	SnapshotGrace = time.Hour
	// dailyLiveAge is the max-age of a day not yet kept.
	dailyLiveAge = 60
)

// Daily is one day's public snapshot.
type Daily struct {
	Day       string   `json:"day"`
	From      int64    `json:"from"`
	To        int64    `json:"to"`
	PublicMin Floor    `json:"public_min"`
	Summary   Summary  `json:"summary"`
	Map       MapData  `json:"map"`
	Adoption  Adoption `json:"adoption"`
}

// DailyDay is one entry of the list of days.
type DailyDay struct {
	Day string `json:"day"`
	URL string `json:"url"`
	// Final tells that the document is kept: it never changes again.
	Final bool `json:"final"`
}

// DailyList is the answer of /api/v1/public/daily.
type DailyList struct {
	Days []DailyDay `json:"days"`
}

var dailyName = regexp.MustCompile(`^([0-9]{4}-[0-9]{2}-[0-9]{2})\.json$`)

// dailyFinal tells whether day's document may be kept (and never change).
func dailyFinal(day, now time.Time) bool { return !now.Before(day.Add(24*time.Hour + SnapshotGrace)) }

func (s *Server) daily(w http.ResponseWriter, r *http.Request) {
	m := dailyName.FindStringSubmatch(r.PathValue("file"))
	var day time.Time
	var err error
	if m != nil {
		day, err = time.Parse(time.DateOnly, m[1])
	}
	if m == nil || err != nil {
		writeError(w, http.StatusBadRequest, "a daily snapshot is named YYYY-MM-DD.json (a UTC day)")
		return
	}
	now := time.Now().UTC()
	if day.After(now) {
		writeError(w, http.StatusNotFound, "no snapshot of a day to come")
		return
	}
	st := s.storeOf(r)
	zone, err := s.zoneOf(r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if kept, ok, err := st.ZoneSnapshot(day, zone); err != nil {
		writeError(w, http.StatusInternalServerError, "reading the snapshots failed")
		return
	} else if ok {
		serveKept(w, r, kept)
		return
	}
	// A day without reports has no snapshot: nothing is rendered, nothing
	// kept (else every GET of an old day would store a document forever).
	// Today is rendered while it is empty.
	has, err := st.ZoneHasDay(day, zone) // a day of other zones' reports only has none of the zone's
	if err != nil {
		storeError(w, err)
		return
	}
	if !has && !day.Equal(dayStart(now)) {
		writeError(w, http.StatusNotFound, "no reports of that day")
		return
	}
	cfg := s.configOf(r)
	body, err := s.cache.get(fmt.Sprint("daily", day.Unix(), cfg.PublicMin, cfg.CityDatabase, zone), st, &cfg.Limits, func() ([]byte, error) {
		d, err := s.dailyOf(st, day, cfg, zone)
		if err != nil {
			return nil, err
		}
		return json.Marshal(d)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	if dailyFinal(day, now) {
		// Write-once: a concurrent request, or a copy rendered before a
		// restart, may have kept its bytes first; those are the ones served.
		if kept, err := st.SaveZoneSnapshot(day, zone, body); err == nil {
			serveKept(w, r, kept)
			return
		}
	}
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", dailyLiveAge))
	writeJSONBytes(w, body)
}

// dayStart is the start of t's UTC day.
func dayStart(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// serveKept sends a kept snapshot: the same bytes forever.
func serveKept(w http.ResponseWriter, r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	h := w.Header()
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("ETag", etag)
	if match(r, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", "application/json")
	w.Write(body)
}

// dailyOf renders the snapshot of day: everything under the public floor,
// whoever asks, since the document is the same for everybody.
func (s *Server) dailyOf(st *store.Store, day time.Time, cfg *Config, zone string) (*Daily, error) {
	from, to := store.DaySpan(day, day)
	pub := cfg.PublicMin
	v, err := s.viewZone(st, from, to, pub, pub, zone)
	if err != nil {
		return nil, err
	}
	a, err := s.adoptionZone(st, from, to, pub, pub, zone)
	if err != nil {
		return nil, err
	}
	d := &Daily{Day: day.Format(time.DateOnly), From: from.Unix(), To: to.Unix(), PublicMin: pub,
		Summary: v.summary, Map: withCity(v.mapData, cfg.CityDatabase), Adoption: *a}
	d.Summary.InstallationsEverKnown = 0 // not the day's: left out
	return d, nil
}

// dailyList lists the days with a snapshot: those kept, every day the
// store counts reports of, and today. A day without reports is left out:
// one record received in 2000 lists one day more, not every day since.
func (s *Server) dailyList(w http.ResponseWriter, r *http.Request) {
	st := s.storeOf(r)
	zone, err := s.zoneOf(r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Cached like the other answers: with custom schemas, the zone's days
	// are a year of rollup reads (store.ZoneDays).
	cfg := s.configOf(r)
	body, err := s.cache.get(fmt.Sprint("dailylist", zone), st, &cfg.Limits, func() ([]byte, error) {
		out, err := dailyListOf(st, zone)
		if err != nil {
			return nil, err
		}
		return json.Marshal(out)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the days failed")
		return
	}
	w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", dailyLiveAge))
	writeJSONBytes(w, body)
}

// dailyListOf lists the days of zone: those kept, those counted, today.
func dailyListOf(st *store.Store, zone string) (DailyList, error) {
	kept, err := st.ZoneSnapshotDays(zone)
	if err != nil {
		return DailyList{}, err
	}
	now := time.Now().UTC()
	days := map[int64]bool{} // day -> kept
	for _, d := range kept {
		days[d.Unix()] = true
	}
	counted, err := st.ZoneDays(zone) // the zone's days, not another zone's
	if err != nil {
		return DailyList{}, err
	}
	for _, d := range counted {
		if !d.After(now) {
			days[d.Unix()] = days[d.Unix()]
		}
	}
	if _, ok := st.FirstDay(); ok {
		today := dayStart(now)
		days[today.Unix()] = days[today.Unix()]
	}
	out := DailyList{Days: make([]DailyDay, 0, len(days))}
	for _, u := range slices.Sorted(maps.Keys(days)) {
		d := time.Unix(u, 0).UTC()
		name := d.Format(time.DateOnly)
		link := dailyPath + "/" + name + ".json"
		if zone != "" {
			link += "?zone=" + url.QueryEscape(zone)
		}
		out.Days = append(out.Days, DailyDay{Day: name, URL: link, Final: days[u] || dailyFinal(d, now)})
	}
	return out, nil
}
