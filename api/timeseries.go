package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// Limits of /api/v1/timeseries.
const (
	MaxBuckets = 10000 // steps in one answer of reports
	// MaxInstallSteps bounds the steps of an answer counting
	// installations (about ten years of days).
	MaxInstallSteps = 3650
	TopSeries       = 10 // named series; the rest add up to "other"
)

// SeriesStep is one step of a timeseries.
type SeriesStep struct {
	T      int64             `json:"t"`
	Total  uint64            `json:"total"`
	Series map[string]uint64 `json:"series"`
}

// Timeseries is the answer of /api/v1/timeseries.
type Timeseries struct {
	From int64  `json:"from"`
	To   int64  `json:"to"`
	Step string `json:"step"`
	By   string `json:"by"`
	// Count is what the buckets count: reports, or installations (distinct
	// installations of each step).
	Count   string       `json:"count"`
	Buckets []SeriesStep `json:"buckets"`
	// OtherValues is the number of distinct values the "other" series sums.
	OtherValues int `json:"other_values"`
	// Zone is set for a zone of a custom schema (?zone=): By is then one
	// of its fields (or country).
	Zone string `json:"zone,omitempty"`
}

var steps = map[string]store.Step{"hour": store.StepHour, "day": store.StepDay, "week": store.StepWeek, "month": store.StepMonth}

var byDims = map[string]rollup.Dimension{"": store.DimTotal, "modsec": rollup.DimModsec, "platform": rollup.DimPlatform, "country": rollup.DimCountry}

func (s *Server) timeseries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to, err := s.rangeOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stepName, err := oneOf(q, "step", "day", "hour", "day", "week", "month")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.storeOf(r)
	zone, err := s.zoneOf(r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	byChoices := []string{"modsec", "platform", "country"}
	if zone != "" { // a custom schema's: its fields but the id, and country
		byChoices = []string{"country"}
		if sc := st.Schemas().Custom(zone); sc != nil {
			for _, f := range sc.Fields() {
				if f != sc.ID() {
					byChoices = append(byChoices, f)
				}
			}
		}
	}
	by, err := oneOf(q, "by", "", byChoices...)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	count, err := oneOf(q, "count", "reports", "reports", "installations")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	step := steps[stepName]
	first := stepStart(from, step)
	n, limit := countSteps(first, to, step), MaxBuckets
	if count == "installations" {
		limit = MaxInstallSteps
		if step == store.StepHour {
			writeError(w, http.StatusBadRequest, "installations are counted per day: use step day, week or month")
			return
		}
	}
	if count == "reports" && step == store.StepMonth {
		n = countSteps(first, to, store.StepDay) // months of reports are summed from days
	}
	if n > limit {
		writeError(w, http.StatusBadRequest, "too many steps: use a longer step or a shorter range")
		return
	}
	// Kept in the answer cache like the summary's (a page's clients ask the
	// same question every few seconds); to is in the key to the second.
	key := fmt.Sprint("timeseries", first.Unix(), to.Unix(), stepName, by, count, s.floorOf(r), s.configOf(r).PublicMin, zone)
	out, err := s.cache.get(key, st, &s.configOf(r).Limits, func() ([]byte, error) {
		var buckets []store.InstallStep
		var err error
		switch {
		case count == "installations" && zone != "":
			buckets, err = st.ZoneInstalls(first, endOf(to), step, zone, by)
		case count == "installations":
			buckets, err = st.Installs(first, endOf(to), step, byDims[by])
		default:
			buckets, err = s.reportBuckets(first, endOf(to), step, func(from, to time.Time, step store.Step) ([]store.SeriesStep, error) {
				if zone != "" {
					return st.ZoneSeries(from, to, step, zone, by)
				}
				return st.Series(from, to, step, byDims[by])
			})
		}
		if err != nil {
			return nil, err
		}
		// A series is named when its value is one the summary of the range
		// names (it passes the public floor, and is among the top values).
		var allowed map[string]bool
		if by != "" {
			v, err := s.viewZone(st, from, to, s.floorOf(r), s.configOf(r).PublicMin, zone)
			if err != nil {
				return nil, err
			}
			allowed = map[string]bool{}
			for _, b := range v.summary.Breakdowns[by] {
				if !b.Other {
					allowed[b.Value] = true
				}
			}
		}
		ts := Timeseries{From: first.Unix(), To: to.Unix(), Step: stepName, By: by, Count: count, Buckets: make([]SeriesStep, 0, len(buckets)), Zone: zone}
		top := topValues(buckets, allowed, TopSeries, count == "reports")
		folded := map[string]bool{}
		for _, b := range buckets {
			sb := SeriesStep{T: b.Start.Unix(), Total: b.Total.Installations, Series: map[string]uint64{}}
			if count == "reports" {
				sb.Total = b.Total.Reports
			}
			for v, c := range b.Values {
				if by == "" {
					continue
				}
				n := c.Installations
				if count == "reports" {
					n = c.Reports
				}
				if n == 0 {
					continue
				}
				if !top[v] {
					folded[v] = true
					v = OtherName
				}
				sb.Series[v] += n
			}
			ts.Buckets = append(ts.Buckets, sb)
		}
		ts.OtherValues = len(folded)
		return json.Marshal(ts)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, out)
}

// reportBuckets counts the reports of each step in Installs' shape (months
// are summed from days).
func (s *Server) reportBuckets(from, to time.Time, step store.Step, read func(from, to time.Time, step store.Step) ([]store.SeriesStep, error)) ([]store.InstallStep, error) {
	seriesStep := step
	if step == store.StepMonth {
		seriesStep = store.StepDay
	}
	series, err := read(from, to, seriesStep)
	if err != nil {
		return nil, err
	}
	var out []store.InstallStep
	for _, b := range series {
		start := stepStart(b.Start, step)
		if len(out) == 0 || !out[len(out)-1].Start.Equal(start) {
			out = append(out, store.InstallStep{Start: start, Values: map[string]store.Counts{}})
		}
		ob := &out[len(out)-1]
		for v, n := range b.Values {
			c := ob.Values[v]
			c.Reports += n
			ob.Values[v] = c
			ob.Total.Reports += n
		}
	}
	return out, nil
}

// topValues are the n values of allowed with the most reports (or
// installations) over all buckets; nil allowed allows none.
func topValues(buckets []store.InstallStep, allowed map[string]bool, n int, reports bool) map[string]bool {
	sums := map[string]uint64{}
	for _, b := range buckets {
		for v, c := range b.Values {
			if allowed[v] {
				if reports {
					sums[v] += c.Reports
				} else {
					sums[v] += c.Installations
				}
			}
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
