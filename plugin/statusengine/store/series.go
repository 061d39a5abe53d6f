package store

import (
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// DimTotal is the dimension of Series without a split: one value, "".
const DimTotal rollup.Dimension = '0'

// Step is the bucket width of a Series.
type Step int

// Steps of a Series. Weeks start on Monday, UTC.
const (
	StepHour Step = iota
	StepDay
	StepWeek
)

// SeriesStep is one step of a Series: reports per value of the dimension.
type SeriesStep struct {
	Start  time.Time
	Values map[string]uint64
}

// SeriesStart aligns t down to the start of its step.
func SeriesStart(t time.Time, step Step) time.Time {
	switch step {
	case StepHour:
		return time.Unix(int64(rollup.HourOf(t))*3600, 0).UTC()
	case StepDay:
		return time.Unix(int64(rollup.DayOf(t))*86400, 0).UTC()
	}
	d := int64(rollup.DayOf(t))
	d -= (d + 3) % 7 // day 0 was a Thursday
	return time.Unix(d*86400, 0).UTC()
}

// StepLen is the length of a step.
func StepLen(step Step) time.Duration {
	switch step {
	case StepHour:
		return time.Hour
	case StepDay:
		return 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

// Series counts the reports of each step that [from, to] touches, split by
// the values of d: DimTotal, DimCountry or one of BuildDims. Steps without
// reports are there, empty.
func (s *Store) Series(from, to time.Time, step Step, d rollup.Dimension) ([]SeriesStep, error) {
	if to.Before(from) {
		return nil, nil
	}
	var buckets []SeriesStep
	first := SeriesStart(from, step)
	for t := first; !t.After(to); t = t.Add(StepLen(step)) {
		buckets = append(buckets, SeriesStep{Start: t, Values: map[string]uint64{}})
	}
	kind, n0, n1 := byte(rollup.Day), rollup.DayOf(first), rollup.DayOf(to)
	if step == StepHour {
		kind, n0, n1 = rollup.Hour, rollup.HourOf(first), rollup.HourOf(to)
	}
	var keys []rollup.Key
	for n := n0; n <= n1 && n >= n0; n++ {
		keys = append(keys, rollup.Key{Kind: kind, N: n})
	}
	// Copies of what each period holds, taken under the live lock or from
	// the bucket; resolved into values afterwards.
	got := map[rollup.Key]*rollup.Period{}
	keep := func(k rollup.Key, p *rollup.Period) {
		q := &rollup.Period{Builds: maps.Clone(p.Builds), Countries: map[string]*rollup.Group{}}
		if d == rollup.DimCountry {
			for v, c := range p.Countries {
				q.Countries[v] = &rollup.Group{Reports: c.Reports}
			}
		}
		got[k] = q
	}
	missing := s.live.Read(keys, keep)
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Rollups)
		for _, k := range missing {
			if v := b.Get(k.Bytes()); v != nil {
				if p, err := rollup.DecodeReports(v, k.Kind); err == nil {
					got[k] = p
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var infos map[uint32]*buildInfo
	// With zones of custom schemas, the series is of ModSecurity's zones:
	// each build's row says its zone (by country, the rollups' reports are
	// every zone's: see Totals.GeoReportsMixed).
	mixed := len(s.Schemas().Zones()) > 0
	if (d != DimTotal || mixed) && d != rollup.DimCountry {
		nums := map[uint32]struct{}{}
		for _, p := range got {
			for b := range p.Builds {
				nums[b] = struct{}{}
			}
		}
		if infos, err = s.buildInfos(slices.Collect(maps.Keys(nums))); err != nil {
			return nil, err
		}
	}
	for k, p := range got {
		i := int(k.Start().Sub(first) / StepLen(step))
		if i < 0 || i >= len(buckets) {
			continue
		}
		vals := buckets[i].Values
		if d == rollup.DimCountry {
			for v, c := range p.Countries {
				if z, value, ok := rollup.SplitGeoKey(v); ok && z == 0 { // ModSecurity's zones'
					vals[value] += c.Reports
				}
			}
			continue
		}
		for b, n := range p.Builds {
			v := ""
			if infos != nil {
				info := infos[b]
				if info == nil && d != DimTotal {
					continue
				}
				if info != nil && info.zone != "" {
					continue // a custom schema's build
				}
				if d != DimTotal {
					v = info.values.Of(d)
				}
			}
			vals[v] += n
		}
	}
	return buckets, nil
}
