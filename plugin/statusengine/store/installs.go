package store

import (
	"encoding/binary"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// StepMonth is a Series or Installs step of one UTC month.
const StepMonth Step = 3

// InstallStep is one step of Installs: the installations seen in it, and
// per value of the dimension asked.
type InstallStep struct {
	Start  time.Time
	Total  Counts
	Values map[string]Counts
}

// stepPeriods are the periods that make up the step starting at t: a day, a
// week of days, a month.
func stepPeriods(t time.Time, step Step) []rollup.Key {
	switch step {
	case StepMonth:
		return []rollup.Key{{Kind: rollup.Month, N: rollup.MonthOf(t)}}
	case StepWeek:
		d := rollup.DayOf(t)
		return periods(d, d+6)
	}
	return []rollup.Key{{Kind: rollup.Day, N: rollup.DayOf(t)}}
}

// stepStart aligns t to its step; stepNext is the start of the next step.
func stepStart(t time.Time, step Step) time.Time {
	if step == StepMonth {
		t = t.UTC()
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return SeriesStart(t, step)
}

func stepNext(t time.Time, step Step) time.Time {
	if step == StepMonth {
		return t.AddDate(0, 1, 0)
	}
	return t.Add(StepLen(step))
}

// stepInstalls is the installations of each step of [from, to].
func (s *Store) stepInstalls(from, to time.Time, step Step) ([]time.Time, []*acc, error) {
	var starts []time.Time
	var sums []*acc
	for t := stepStart(from, step); !t.After(to); t = stepNext(t, step) {
		a := newAcc()
		if err := s.readPeriods(a, stepPeriods(t, step)); err != nil {
			return nil, nil, err
		}
		starts, sums = append(starts, t), append(sums, a)
	}
	return starts, sums, nil
}

// maxInstallSteps bounds the steps of one Installs or Churn call.
const maxInstallSteps = 3700

// Installs counts the installations of each step (StepDay, StepWeek,
// StepMonth) that [from, to] touches, and per value of d: DimTotal (none),
// DimCountry, or one of BuildDims. Closed steps are computed once (see
// stepCache).
func (s *Store) Installs(from, to time.Time, step Step, d rollup.Dimension) ([]InstallStep, error) {
	return s.installSteps(from, to, step, by{dim: d})
}

// ZoneInstalls is Installs of the installations of zone, a zone of a
// custom schema, split by its field field ("" none, "country" countries).
func (s *Store) ZoneInstalls(from, to time.Time, step Step, zone, field string) ([]InstallStep, error) {
	return s.installSteps(from, to, step, s.byZone(zone, field))
}

func (s *Store) installSteps(from, to time.Time, step Step, sel by) ([]InstallStep, error) {
	if step == StepHour {
		return nil, fmt.Errorf("installations are kept per day: no hour steps")
	}
	var starts []time.Time
	for t := stepStart(from, step); !t.After(to); t = stepNext(t, step) {
		if len(starts) >= maxInstallSteps {
			return nil, fmt.Errorf("more than %d steps", maxInstallSteps)
		}
		starts = append(starts, t)
	}
	out := make([]InstallStep, len(starts))
	today := rollup.DayOf(time.Now())
	// The steps are independent: computed side by side, one goroutine a
	// core, so a year of days not yet in stepCache (the first request
	// after a start) takes a share of the time. Each reads in its own
	// transactions; none holds one across steps.
	var g errgroup.Group
	g.SetLimit(min(runtime.GOMAXPROCS(0), maxStepWorkers))
	for i, t := range starts {
		g.Go(func() error {
			closed := rollup.DayOf(stepNext(t, step)) <= today
			b, err := s.readers.steps.get(s, t, step, sel, closed, func() (InstallStep, error) {
				a := newAcc()
				if err := s.readPeriods(a, stepPeriods(t, step)); err != nil {
					return InstallStep{}, err
				}
				return s.installStep(t, a, sel)
			})
			out[i] = b
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// maxStepWorkers bounds the goroutines one installSteps call computes
// steps with at once.
const maxStepWorkers = 4

// installStep breaks the installations of a down by sel: through the
// installation table when it can (countStep, buildStep), else through the
// members' rows (memberStep), which also serves zones of custom schemas.
// TestStepPathsAgree holds the paths to the same answers.
func (s *Store) installStep(start time.Time, a *acc, sel by) (InstallStep, error) {
	b := InstallStep{Start: start, Values: map[string]Counts{}}
	if sel.none {
		return b, nil
	}
	if sel.zone == "" && len(s.Schemas().Zones()) == 0 {
		step := s.buildStep
		if sel.dim == DimTotal || sel.dim == rollup.DimCountry {
			step = s.countStep
		}
		if b, ok, err := step(b, a, sel); ok || err != nil {
			return b, err
		}
	}
	return s.memberStep(b, a, sel)
}

// memberStep is installStep from the members' rows.
func (s *Store) memberStep(b InstallStep, a *acc, sel by) (InstallStep, error) {
	d := sel.dim
	m, err := s.members(a.installs)
	if err != nil {
		return b, err
	}
	// With zones of custom schemas, the step is of sel's zone (ModSecurity's: "").
	inZone := func(uint32) bool { return true }
	var infos map[uint32]*buildInfo
	if len(s.Schemas().Zones()) > 0 || sel.zone != "" {
		if infos, err = s.buildInfos(unionKeys(a.builds, buildSet(m.builds))); err != nil {
			return b, err
		}
		inZone = func(bn uint32) bool { return infos[bn].inZone(sel.zone) }
		m = m.only(inZone)
	}
	var total tally
	perBuild := map[uint32]*tally{}
	for i, bn := range m.builds {
		total.install(m.nets[i])
		tb := perBuild[bn]
		if tb == nil {
			tb = &tally{}
			perBuild[bn] = tb
		}
		tb.install(m.nets[i])
	}
	for bn, n := range a.builds {
		if !inZone(bn) {
			continue
		}
		tb := perBuild[bn]
		total.c.Reports += n
		if tb != nil {
			tb.c.Reports = n
		}
	}
	b.Total = total.counts()
	switch {
	case d == DimTotal && (sel.zone == "" || sel.field == ""):
	case d == rollup.DimCountry:
		b.Values = geoCounts(a.countries, nil, m.netsOf, sel.zoneNum)
	default:
		vals := map[string]*tally{}
		if infos == nil {
			if infos, err = s.buildInfos(slices.Collect(maps.Keys(perBuild))); err != nil {
				return b, err
			}
		}
		for bn, tb := range perBuild {
			if v, ok := sel.value(infos[bn]); ok && infos[bn] != nil {
				into(vals, v, tb)
			}
		}
		for v, tv := range vals {
			b.Values[v] = tv.counts()
		}
	}
	return b, nil
}

// countStep is installStep of the total, or by country, when no zone has
// a custom schema and the installation table holds every installation of
// the step: the installations are the bitmaps' cardinalities (less the
// table's holes), and only the networks, at most NetworkCap, need rows,
// read until the cap is reached. A day of a year of 1,000,000
// installations otherwise read all its 55,000 rows. ok is false when the
// table does not hold them all.
func (s *Store) countStep(b InstallStep, a *acc, sel by) (_ InstallStep, ok bool, err error) {
	v, err := s.readers.table.view(s, a.installs)
	if err != nil || !v.holds(a.installs) {
		return b, false, err
	}
	b.Total.Installations = a.installs.GetCardinality()
	if !v.holes.IsEmpty() {
		b.Total.Installations = roaring.AndNot(a.installs, v.holes).GetCardinality()
	}
	b.Total.Networks = uint64(len(v.netsOf(a.installs)))
	for _, n := range a.builds {
		b.Total.Reports += n
	}
	if sel.dim == rollup.DimCountry {
		b.Values = geoCounts(a.countries, nil, v.netsOf, 0)
	}
	return b, true, nil
}

// maxDenseBuilds bounds the build numbers buildStep tallies in a slice
// (32 bytes each); past it, installStep tallies in a map.
const maxDenseBuilds = 1 << 16

// buildStep is installStep by a dimension of the builds (BuildDims) when
// no zone has a custom schema and the installation table holds every
// installation of the step: each installation's build and network from
// the table, tallied in a slice indexed by build number (a map and the
// members' copy of the rows cost twice as much). ok is false when not so.
func (s *Store) buildStep(b InstallStep, a *acc, sel by) (_ InstallStep, ok bool, err error) {
	var maxBuild uint32
	for bn := range a.builds {
		maxBuild = max(maxBuild, bn)
	}
	if maxBuild >= maxDenseBuilds {
		return b, false, nil
	}
	v, err := s.readers.table.view(s, a.installs)
	if err != nil || !v.holds(a.installs) {
		return b, false, err
	}
	per := make([]tally, maxBuild+1)
	var total tally
	buf := make([]uint32, 1024)
	it := a.installs.ManyIterator()
	for k := it.NextMany(buf); k > 0; k = it.NextMany(buf) {
		for _, n := range buf[:k] {
			if n == 0 || v.rows[n-1].build == 0 {
				continue // a hole: counted nowhere, as memberStep does
			}
			r := &v.rows[n-1]
			if r.build > maxBuild {
				// An installation reported in the step has reports of its
				// build in it; a rollup that says otherwise is read the
				// long way, which counts it all the same.
				return b, false, nil
			}
			total.install(r.net)
			per[r.build].install(r.net)
		}
	}
	var nums []uint32
	for bn, n := range a.builds {
		total.c.Reports += n
		if per[bn].c.Installations > 0 {
			per[bn].c.Reports = n
			nums = append(nums, bn)
		}
	}
	b.Total = total.counts()
	infos, err := s.buildInfos(nums)
	if err != nil {
		return b, true, err
	}
	vals := map[string]*tally{}
	for _, bn := range nums {
		if v, ok := sel.value(infos[bn]); ok && infos[bn] != nil {
			into(vals, v, &per[bn])
		}
	}
	for v, tv := range vals {
		b.Values[v] = tv.counts()
	}
	return b, true, nil
}

// ChurnStep is one step of Churn.
type ChurnStep struct {
	Start time.Time
	// Active installations reported in the step; New ones never before;
	// Returning ones reported before, but not in the step before; Gone ones
	// reported in the step before and not in this one.
	Active, New, Returning, Gone uint64
}

// Churn follows the installations from step to step over [from, to]. An
// installation is new the first step it is seen in since the first record
// stored.
func (s *Store) Churn(from, to time.Time, step Step) ([]ChurnStep, error) {
	return s.ZoneChurn(from, to, step, "")
}

// ZoneChurn is Churn of the installations of zone: "" for ModSecurity's
// zones, else a zone of a custom schema.
func (s *Store) ZoneChurn(from, to time.Time, step Step, zone string) ([]ChurnStep, error) {
	if step == StepHour {
		return nil, fmt.Errorf("installations are kept per day: no hour steps")
	}
	first := stepStart(from, step)
	if int(to.Sub(first)/StepLen(step)) > maxInstallSteps {
		return nil, fmt.Errorf("more than %d steps", maxInstallSteps)
	}
	// Everything seen before the first step, and the step before it.
	ever := roaring.New()
	if fd, ok := s.FirstDay(); ok && rollup.DayOf(fd) < rollup.DayOf(first) {
		a := newAcc()
		if err := s.readPeriods(a, periods(rollup.DayOf(fd), rollup.DayOf(first)-1)); err != nil {
			return nil, err
		}
		ever = a.installs
	}
	prevStart := stepStart(first.Add(-time.Second), step)
	_, prevSums, err := s.stepInstalls(prevStart, prevStart, step)
	if err != nil {
		return nil, err
	}
	prev := prevSums[0].installs
	starts, sums, err := s.stepInstalls(first, to, step)
	if err != nil {
		return nil, err
	}
	// With zones of custom schemas, the churn is of zone's installations
	// (ModSecurity's: all but the custom zones').
	if zone != "" {
		mine, err := s.zoneInstalls(zone)
		if err != nil {
			return nil, err
		}
		ever.And(mine)
		prev = roaring.And(prev, mine)
		for _, a := range sums {
			a.installs.And(mine)
		}
	} else if len(s.Schemas().Zones()) > 0 {
		other, err := s.customInstalls()
		if err != nil {
			return nil, err
		}
		ever.AndNot(other)
		prev = roaring.AndNot(prev, other)
		for _, a := range sums {
			a.installs.AndNot(other)
		}
	}
	out := make([]ChurnStep, len(starts))
	for i, a := range sums {
		cur := a.installs
		fresh := roaring.AndNot(cur, ever)
		out[i] = ChurnStep{
			Start:     starts[i],
			Active:    cur.GetCardinality(),
			New:       fresh.GetCardinality(),
			Returning: roaring.AndNot(roaring.AndNot(cur, fresh), prev).GetCardinality(),
			Gone:      roaring.AndNot(prev, cur).GetCardinality(),
		}
		ever.Or(cur)
		prev = cur
	}
	return out, nil
}

// FirstDay is the first UTC day the rollups count reports of (retention
// deletes records, not rollups); false for an empty store.
func (s *Store) FirstDay() (time.Time, bool) {
	var day uint32
	ok := false
	s.view(func(tx *bolt.Tx) error {
		k, _ := tx.Bucket(schema.Rollups).Cursor().Seek([]byte{rollup.Day})
		if len(k) == 5 && k[0] == rollup.Day {
			day, ok = binary.BigEndian.Uint32(k[1:]), true
		}
		return nil
	})
	held := s.live.HeldDays()
	for _, d := range held {
		if !ok || d < day {
			day, ok = d, true
		}
	}
	return time.Unix(int64(day)*86400, 0).UTC(), ok
}

// Days are the UTC days the rollups count reports of, oldest first: a
// store's days are as many as it has days with reports, whatever their
// spread (a record of 2000 adds one day, not 9,000).
func (s *Store) Days() ([]time.Time, error) {
	seen := map[uint32]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.Rollups).Cursor()
		for k, _ := c.Seek([]byte{rollup.Day}); len(k) > 0 && k[0] == rollup.Day; k, _ = c.Next() {
			if len(k) == 5 {
				seen[binary.BigEndian.Uint32(k[1:])] = true
			}
		}
		return nil
	})
	for _, d := range s.live.HeldDays() {
		seen[d] = true
	}
	out := make([]time.Time, 0, len(seen))
	for _, d := range slices.Sorted(maps.Keys(seen)) {
		out = append(out, time.Unix(int64(d)*86400, 0).UTC())
	}
	return out, err
}

// ZoneDays are the Days with reports of zone: "" for ModSecurity's zones,
// else a zone of a custom schema (ZoneHasDay: with custom schemas, a year
// costs a year of period reads).
func (s *Store) ZoneDays(zone string) ([]time.Time, error) {
	days, err := s.Days()
	if err != nil || (zone == "" && len(s.Schemas().Zones()) == 0) {
		return days, err
	}
	var out []time.Time
	for _, d := range days {
		has, err := s.zoneHasDay(d, zone)
		if err != nil {
			return nil, err
		}
		if has {
			out = append(out, d)
		}
	}
	return out, nil
}

// ZoneHasDay tells whether the rollups count reports of zone ("" for
// ModSecurity's zones) on the UTC day of t.
func (s *Store) ZoneHasDay(t time.Time, zone string) (bool, error) {
	if has, err := s.hasDay(t); !has || err != nil || (zone == "" && len(s.Schemas().Zones()) == 0) {
		return has, err
	}
	return s.zoneHasDay(t, zone)
}

// zoneHasDay reads the day's rollup whole: its builds say their zone.
func (s *Store) zoneHasDay(t time.Time, zone string) (bool, error) {
	a := newAcc()
	if err := s.readPeriods(a, []rollup.Key{{Kind: rollup.Day, N: rollup.DayOf(t)}}); err != nil {
		return false, err
	}
	infos, err := s.buildInfos(slices.Collect(maps.Keys(a.builds)))
	if err != nil {
		return false, err
	}
	for bn := range a.builds {
		if infos[bn].inZone(zone) {
			return true, nil
		}
	}
	return false, nil
}

// hasDay tells whether the rollups count reports of any zone on the UTC
// day of t.
func (s *Store) hasDay(t time.Time) (bool, error) {
	d := rollup.DayOf(t)
	for _, h := range s.live.HeldDays() {
		if h == d {
			return true, nil
		}
	}
	found := false
	err := s.view(func(tx *bolt.Tx) error {
		found = tx.Bucket(schema.Rollups).Get(binary.BigEndian.AppendUint32([]byte{rollup.Day}, d)) != nil
		return nil
	})
	return found, err
}

// stepCache keeps the InstallSteps of closed steps: they change only by
// imports (closedCache.gen). It is no single-flight cache (flight.Cache):
// a step is cheap and one timeseries asks for each once, so callers that
// miss compute it side by side rather than wait.
type stepCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[stepKey]InstallStep
}

type stepKey struct {
	start int64
	step  Step
	sel   by
}

const maxStepEntries = 1 << 14

func (c *stepCache) get(s *Store, t time.Time, step Step, sel by, closed bool, compute func() (InstallStep, error)) (InstallStep, error) {
	if !closed {
		return compute()
	}
	k := stepKey{t.Unix(), step, sel}
	gen := s.readers.closed.gen.Load()
	c.mu.Lock()
	if c.gen != gen || c.entries == nil || len(c.entries) >= maxStepEntries {
		c.entries, c.gen = map[stepKey]InstallStep{}, gen
	}
	b, ok := c.entries[k]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := compute()
	if err != nil {
		return b, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.entries[k] = b
	}
	c.mu.Unlock()
	return b, nil
}
