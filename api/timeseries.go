package api

import (
	"net/http"
	"sort"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// Limits of /api/v1/timeseries.
const (
	MaxBuckets = 10000 // steps in one answer
	TopSeries  = 10    // named series; the rest add up to "other"
	OtherName  = "other"
)

// SeriesBucket is one step of a timeseries.
type SeriesBucket struct {
	T      int64             `json:"t"`
	Total  uint64            `json:"total"`
	Series map[string]uint64 `json:"series"`
}

// Timeseries is the answer of /api/v1/timeseries.
type Timeseries struct {
	From    int64          `json:"from"`
	To      int64          `json:"to"`
	Step    string         `json:"step"`
	By      string         `json:"by"`
	Buckets []SeriesBucket `json:"buckets"`
}

var steps = map[string]store.Step{"hour": store.StepHour, "day": store.StepDay, "week": store.StepWeek}

var byDims = map[string]store.Dimension{"": store.DimTotal, "modsec": store.DimModsec, "platform": store.DimPlatform, "country": store.DimCountry}

func (s *Server) timeseries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := timeRange(q, time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stepName, err := oneOf(q, "step", "day", "hour", "day", "week")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	by, err := oneOf(q, "by", "", "modsec", "platform", "country")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	step := steps[stepName]
	first := store.SeriesStart(from, step)
	if n := to.Sub(first) / stepDuration(step); n >= MaxBuckets {
		writeError(w, http.StatusBadRequest, "too many steps: use a longer step or a shorter range")
		return
	}
	buckets, err := s.storeOf(r).Series(from, endOf(to), step, byDims[by])
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	ts := Timeseries{From: first.Unix(), To: to.Unix(), Step: stepName, By: by, Buckets: make([]SeriesBucket, 0, len(buckets))}
	top := topValues(buckets, TopSeries)
	for _, b := range buckets {
		sb := SeriesBucket{T: b.Start.Unix(), Series: map[string]uint64{}}
		for v, n := range b.Values {
			sb.Total += n
			if by == "" {
				continue
			}
			if !top[v] {
				v = OtherName
			}
			sb.Series[v] += n
		}
		ts.Buckets = append(ts.Buckets, sb)
	}
	writeJSON(w, http.StatusOK, ts)
}

func stepDuration(s store.Step) time.Duration {
	switch s {
	case store.StepHour:
		return time.Hour
	case store.StepDay:
		return 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

// topValues are the n values with the most reports over all buckets.
func topValues(buckets []store.Bucket, n int) map[string]bool {
	sums := map[string]uint64{}
	for _, b := range buckets {
		for v, c := range b.Values {
			sums[v] += c
		}
	}
	vals := make([]string, 0, len(sums))
	for v := range sums {
		vals = append(vals, v)
	}
	sort.Slice(vals, func(i, j int) bool {
		if sums[vals[i]] != sums[vals[j]] {
			return sums[vals[i]] > sums[vals[j]]
		}
		return vals[i] < vals[j]
	})
	top := map[string]bool{}
	for _, v := range vals[:min(n, len(vals))] {
		top[v] = true
	}
	return top
}
