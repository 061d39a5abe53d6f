package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
)

// MaxChurnSteps bounds the steps of one churn answer (about ten years of
// days).
const MaxChurnSteps = 3650

// ChurnStep is one step of /api/v1/churn.
type ChurnStep struct {
	// Start is the first second of the step (UTC; weeks start on Monday).
	Start int64 `json:"start"`
	// Active installations reported in the step; New ones never before;
	// Returning ones reported before, but not in the step before; Gone ones
	// reported in the step before and not in this one.
	Active    uint64 `json:"active"`
	New       uint64 `json:"new"`
	Returning uint64 `json:"returning"`
	Gone      uint64 `json:"gone"`
}

// Churn is the answer of /api/v1/churn.
type Churn struct {
	From  int64       `json:"from"`
	To    int64       `json:"to"`
	Step  string      `json:"step"`
	Steps []ChurnStep `json:"steps"`
	// Zone is set for a zone of a custom schema (?zone=).
	Zone string `json:"zone,omitempty"`
}

var churnSteps = map[string]store.Step{"day": store.StepDay, "week": store.StepWeek, "month": store.StepMonth}

// churn answers installations gained and lost per step. Its figures are
// totals of all the installations of a step, like a summary's, so the
// public floor has no group in it to hold back.
func (s *Server) churn(w http.ResponseWriter, r *http.Request) {
	from, to, err := s.rangeOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stepName, err := oneOf(r.URL.Query(), "step", "day", "day", "week", "month")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	step := churnSteps[stepName]
	first := stepStart(from, step)
	if n := countSteps(first, to, step); n > MaxChurnSteps {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("too many steps (%d, at most %d): use a longer step or a shorter range", n, MaxChurnSteps))
		return
	}
	st := s.storeOf(r)
	zone, err := s.zoneOf(r, st)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	last := stepStart(to, step)
	body, err := s.cache.get(fmt.Sprint("churn", first.Unix(), last.Unix(), stepName, zone), st, &s.configOf(r).Limits, func() ([]byte, error) {
		c := Churn{From: first.Unix(), To: stepEnd(last, step).Unix(), Step: stepName, Steps: []ChurnStep{}, Zone: zone}
		steps, err := st.ZoneChurn(first, to, step, zone)
		if err != nil {
			return nil, err
		}
		for _, cs := range steps {
			c.Steps = append(c.Steps, ChurnStep{Start: cs.Start.Unix(), Active: cs.Active, New: cs.New, Returning: cs.Returning, Gone: cs.Gone})
		}
		return json.Marshal(c)
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "reading the rollups failed")
		return
	}
	writeJSONBytes(w, body)
}

// stepStart aligns t to the start of its step (hour, day, Monday, month).
func stepStart(t time.Time, step store.Step) time.Time {
	if step == store.StepMonth {
		t = t.UTC()
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return store.SeriesStart(t, step)
}

// stepNext is the start of the step after the one starting at t.
func stepNext(t time.Time, step store.Step) time.Time {
	if step == store.StepMonth {
		return t.AddDate(0, 1, 0)
	}
	return t.Add(store.StepLen(step))
}

// stepEnd is the last second of the step starting at t.
func stepEnd(t time.Time, step store.Step) time.Time { return stepNext(t, step).Add(-time.Second) }

// countSteps counts the steps from first (aligned) to the one holding to.
func countSteps(first, to time.Time, step store.Step) int {
	if to.Before(first) {
		return 0
	}
	if step == store.StepMonth {
		f, t := first.UTC(), to.UTC()
		return (t.Year()-f.Year())*12 + int(t.Month()) - int(f.Month()) + 1
	}
	return int(to.Sub(first)/store.StepLen(step)) + 1
}
