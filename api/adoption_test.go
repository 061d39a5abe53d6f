package api

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
)

// dayInstalls is, per UTC day (Unix seconds), the installations that
// reported on it and their ModSecurity version, from the records.
func dayInstalls(t *testing.T, st *store.Store, upTo time.Time) map[int64]map[string]string {
	out := map[int64]map[string]string{}
	st.Each(time.Unix(0, 0), upTo, 0, func(rec *record.Record) error {
		d := day(rec.Received).Unix()
		if out[d] == nil {
			out[d] = map[string]string{}
		}
		out[d][record.InstallationKey(rec)] = rec.Report.Modsec
		return nil
	})
	return out
}

// wantAdoption computes /api/v1/adoption from the records.
func wantAdoption(t *testing.T, st *store.Store, now, from, to time.Time, f Floor) Adoption {
	raw := bruteTotals(t, st, from, to)
	d0, d1 := store.DaySpan(from, to)
	total := uint64(len(raw.total.installs))
	a := Adoption{From: d0.Unix(), To: d1.Unix(), Installations: total, Levels: map[string]*string{}, Versions: []AdoptionVersion{}, PublicMin: f}
	keys, other := shownOf(raw.dims[rollup.DimModsec], f, TopValues, cmp.Compare[string], nil)
	slices.SortFunc(keys, func(x, y string) int { return cmp.Or(compareVersions(y, x), cmp.Compare(x, y)) })
	share := func(n uint64) float64 {
		if total == 0 {
			return 0
		}
		return float64(n) / float64(total)
	}
	a.Other = AdoptionOther{Values: other.Values, Installations: other.Installations, Share: share(other.Installations)}
	for _, p := range []int{50, 75, 90, 95} {
		a.Levels[strconv.Itoa(p)] = nil
		for _, k := range keys {
			var at uint64
			for v, g := range raw.dims[rollup.DimModsec] {
				if compareVersions(v, k) >= 0 {
					at += uint64(len(g.installs))
				}
			}
			if total > 0 && at*100 >= uint64(p)*total {
				a.Levels[strconv.Itoa(p)] = &k
				break
			}
		}
	}
	end := d1
	if end.After(now) {
		end = now
	}
	days := dayInstalls(t, st, end)
	var order []int64
	for d := range days {
		order = append(order, d)
	}
	slices.Sort(order)
	for _, k := range keys {
		v := AdoptionVersion{Version: k, Installations: uint64(len(raw.dims[rollup.DimModsec][k].installs))}
		v.Share = share(v.Installations)
		for _, d := range order {
			seen := false
			var at uint64
			for _, ms := range days[d] {
				seen = seen || ms == k
				if compareVersions(ms, k) >= 0 {
					at++
				}
			}
			if seen && v.FirstSeen == nil {
				fs := d
				v.FirstSeen = &fs
			}
			if v.FirstSeen == nil {
				continue
			}
			s := float64(at) / float64(len(days[d]))
			n := int((d - *v.FirstSeen) / 86400)
			if s >= 0.25 && v.DaysTo25 == nil {
				v.DaysTo25 = &n
			}
			if s >= 0.5 && v.DaysTo50 == nil {
				v.DaysTo50 = &n
			}
		}
		a.Versions = append(a.Versions, v)
	}
	return a
}

// TestAdoptionMatchesRecords: /api/v1/adoption over 30, 90 and 365 days and
// everything, with and without the floor, against the records.
func TestAdoptionMatchesRecords(t *testing.T) {
	p := newPopulation(t, Config{Token: testToken})
	reached := 0
	for _, span := range []time.Duration{30 * 24 * time.Hour, 90 * 24 * time.Hour, 365 * 24 * time.Hour, 500 * 24 * time.Hour} {
		for _, tc := range []struct {
			token string
			floor Floor
		}{{"", DefaultFloor}, {testToken, NoFloor}} {
			from := p.now.Add(-span)
			var a Adoption
			if code, _ := p.get(t, "/api/v1/adoption?from="+unix(from), tc.token, &a); code != 200 {
				t.Fatalf("adoption: %d", code)
			}
			want := wantAdoption(t, p.st, p.now, clampFrom(p.st, from, p.now), p.now, tc.floor)
			if !reflect.DeepEqual(a, want) {
				t.Errorf("%v, token %q:\n%s\nwant\n%s", span, tc.token, show(a), show(want))
			}
			for _, v := range a.Versions {
				if v.DaysTo50 != nil {
					reached++
				}
			}
		}
	}
	var a Adoption
	p.get(t, "/api/v1/adoption?from=0", "", &a)
	for _, v := range a.Versions {
		if v.Version == "2.9.8" {
			if v.FirstSeen == nil || v.DaysTo25 == nil || v.DaysTo50 == nil || *v.DaysTo25 > *v.DaysTo50 || *v.DaysTo50 == 0 {
				t.Errorf("2.9.8, out on day 250: %s", show(v))
			} else {
				t.Logf("2.9.8: first seen %s, 25%% of a day's installations after %d days, 50%% after %d; levels %s",
					time.Unix(*v.FirstSeen, 0).UTC().Format(time.DateOnly), *v.DaysTo25, *v.DaysTo50, show(a.Levels))
			}
		}
	}
	if reached == 0 {
		t.Error("no version reached 50% in any range: the test shows nothing")
	}
}

// wantChurn computes /api/v1/churn from the records.
func wantChurn(t *testing.T, st *store.Store, from, to time.Time, stepName string) Churn {
	step := churnSteps[stepName]
	first := stepStart(from, step)
	c := Churn{From: first.Unix(), To: stepEnd(stepStart(to, step), step).Unix(), Step: stepName, Steps: []ChurnStep{}}
	type rec struct {
		at   time.Time
		inst string
	}
	var all []rec
	st.Each(time.Unix(0, 0), to.Add(366*24*time.Hour), 0, func(r *record.Record) error {
		all = append(all, rec{r.Received, record.InstallationKey(r)})
		return nil
	})
	in := func(a, b time.Time) map[string]bool {
		out := map[string]bool{}
		for _, r := range all {
			if !r.at.Before(a) && r.at.Before(b) {
				out[r.inst] = true
			}
		}
		return out
	}
	ever := in(time.Unix(0, 0), first)
	prevStart := stepStart(first.Add(-time.Second), step)
	prev := in(prevStart, first)
	for s := first; !s.After(to); s = stepNext(s, step) {
		cur := in(s, stepNext(s, step))
		cs := ChurnStep{Start: s.Unix(), Active: uint64(len(cur))}
		for k := range cur {
			switch {
			case !ever[k]:
				cs.New++
			case !prev[k]:
				cs.Returning++
			}
		}
		for k := range prev {
			if !cur[k] {
				cs.Gone++
			}
		}
		for k := range cur {
			ever[k] = true
		}
		prev = cur
		c.Steps = append(c.Steps, cs)
	}
	return c
}

// TestChurnMatchesRecords: /api/v1/churn per day, week and month, over 30,
// 90 and 365 days and from the first day, against the records.
func TestChurnMatchesRecords(t *testing.T) {
	p := newPopulation(t, Config{})
	for _, tc := range []struct {
		span time.Duration
		step string
	}{
		{30 * 24 * time.Hour, "day"}, {90 * 24 * time.Hour, "day"}, {90 * 24 * time.Hour, "week"},
		{365 * 24 * time.Hour, "week"}, {365 * 24 * time.Hour, "month"}, {0, "month"},
	} {
		from := p.now.Add(-tc.span)
		if tc.span == 0 {
			from = time.Unix(0, 0)
		}
		var c Churn
		if code, _ := p.get(t, fmt.Sprintf("/api/v1/churn?from=%d&step=%s", from.Unix(), tc.step), "", &c); code != 200 {
			t.Fatalf("churn: %d", code)
		}
		want := wantChurn(t, p.st, clampFrom(p.st, from, p.now), p.now, tc.step)
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%v by %s:\n%s\nwant\n%s", tc.span, tc.step, show(c), show(want))
		}
		var active, gone uint64
		for _, s := range c.Steps {
			active += s.Active
			gone += s.Gone
		}
		if active == 0 || gone == 0 {
			t.Errorf("%v by %s: %d active, %d gone: the test shows nothing", tc.span, tc.step, active, gone)
		}
	}
}

// TestTimeseriesMatchesRecords: installations and reports per step, split,
// against the records; the series named are the top ones of those the
// summary of the range names (the public floor), the rest is other.
func TestTimeseriesMatchesRecords(t *testing.T) {
	p := newPopulation(t, Config{Token: testToken})
	type key struct {
		start int64
		value string
	}
	for _, tc := range []struct {
		span              time.Duration
		step, by, count   string
		token             string
		wantOther, wantFl bool // the split folds values; the floor hides some
	}{
		{30 * 24 * time.Hour, "day", "modsec", "installations", "", true, true},
		{90 * 24 * time.Hour, "week", "country", "installations", "", true, true},
		{365 * 24 * time.Hour, "week", "platform", "installations", "", true, true},
		{365 * 24 * time.Hour, "month", "country", "reports", "", true, true},
		{90 * 24 * time.Hour, "day", "modsec", "reports", testToken, false, false},
		{7 * 24 * time.Hour, "hour", "platform", "reports", "", false, false},
	} {
		from := p.now.Add(-tc.span)
		var ts Timeseries
		path := fmt.Sprintf("/api/v1/timeseries?from=%d&step=%s&by=%s&count=%s", from.Unix(), tc.step, tc.by, tc.count)
		if code, _ := p.get(t, path, tc.token, &ts); code != 200 {
			t.Fatalf("%s: %d", path, code)
		}
		var sum Summary
		p.get(t, "/api/v1/summary?from="+unix(from), tc.token, &sum)
		named := map[string]bool{}
		for _, b := range sum.Breakdowns[tc.by] {
			if !b.Other {
				named[b.Value] = true
			}
		}
		// From the records: per step, each value's installations (or reports).
		step := steps[tc.step]
		per := map[key]map[string]bool{}
		reports := map[key]uint64{}
		totals := map[int64]map[string]bool{}
		totalReports := map[int64]uint64{}
		p.st.Each(stepStart(from, step), p.now, 0, func(rec *record.Record) error {
			s := stepStart(rec.Received, step).Unix()
			k := key{s, rollup.DimValue(rec, byDims[tc.by])}
			if per[k] == nil {
				per[k] = map[string]bool{}
			}
			per[k][record.InstallationKey(rec)] = true
			reports[k]++
			if totals[s] == nil {
				totals[s] = map[string]bool{}
			}
			totals[s][record.InstallationKey(rec)] = true
			totalReports[s]++
			return nil
		})
		count := func(k key) uint64 {
			if tc.count == "reports" {
				return reports[k]
			}
			return uint64(len(per[k]))
		}
		folded := map[string]bool{}
		for _, b := range ts.Buckets {
			want := uint64(len(totals[b.T]))
			if tc.count == "reports" {
				want = totalReports[b.T]
			}
			if b.Total != want {
				t.Errorf("%s: bucket %d total %d, want %d", path, b.T, b.Total, want)
			}
			var other uint64
			for k := range per {
				if k.start != b.T {
					continue
				}
				if _, ok := b.Series[k.value]; ok && k.value != OtherName {
					if b.Series[k.value] != count(k) {
						t.Errorf("%s: bucket %d %q: %d, want %d", path, b.T, k.value, b.Series[k.value], count(k))
					}
					if !named[k.value] {
						t.Errorf("%s: series %q is not among the summary's values", path, k.value)
					}
					continue
				}
				other += count(k)
				folded[k.value] = true
			}
			if b.Series[OtherName] != other {
				t.Errorf("%s: bucket %d other %d, want %d", path, b.T, b.Series[OtherName], other)
			}
		}
		if ts.OtherValues != len(folded) || (ts.OtherValues > 0) != tc.wantOther {
			t.Errorf("%s: other_values %d, %d values folded", path, ts.OtherValues, len(folded))
		}
		hidden := false
		for v := range folded {
			hidden = hidden || !named[v]
		}
		if hidden != tc.wantFl {
			t.Errorf("%s: values under the floor folded: %v, want %v", path, hidden, tc.wantFl)
		}
		if ts.Count != tc.count || ts.Step != tc.step || len(ts.Buckets) != countSteps(stepStart(from, step), p.now, step) {
			t.Errorf("%s: count %q step %q, %d buckets", path, ts.Count, ts.Step, len(ts.Buckets))
		}
	}
}

// TestFromBeforeTheData: a from before the first day the rollups count
// starts there, on every endpoint; before, /api/v1/timeseries?from=0&step=day
// asked for 20,000 days and got 400.
func TestFromBeforeTheData(t *testing.T) {
	p := newPopulation(t, Config{})
	first := day(p.first).Unix()
	for _, path := range []string{"/api/v1/summary?from=0", "/api/v1/map?from=0", "/api/v1/adoption?from=0",
		"/api/v1/timeseries?from=0&step=day", "/api/v1/timeseries?from=0&step=hour&by=modsec",
		"/api/v1/timeseries?from=0&step=week&count=installations", "/api/v1/churn?from=0&step=day", "/badge/installations.svg?from=0"} {
		var v struct {
			From    int64 `json:"from"`
			Buckets []struct {
				T int64 `json:"t"`
			} `json:"buckets"`
			Steps []struct {
				Start int64 `json:"start"`
			} `json:"steps"`
		}
		code, _, body := p.fetch(t, path, "")
		if code != 200 {
			t.Errorf("GET %s: %d %s", path, code, body)
			continue
		}
		if path[:6] == "/badge" {
			continue
		}
		if err := jsonUnmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		start := v.From
		if len(v.Buckets) > 0 {
			start = v.Buckets[0].T
		}
		if len(v.Steps) > 0 {
			start = v.Steps[0].Start
		}
		if start > first || start < first-7*86400 {
			t.Errorf("GET %s starts at %s, the data at %s", path, time.Unix(start, 0).UTC(), time.Unix(first, 0).UTC())
		}
	}
}
