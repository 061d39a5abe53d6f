package store

import (
	"maps"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DimTotal is the dimension of Series without a split: one value, "".
const DimTotal Dimension = '0'

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
		return time.Unix(int64(hourOf(t))*3600, 0).UTC()
	case StepDay:
		return time.Unix(int64(dayOf(t))*86400, 0).UTC()
	}
	d := int64(dayOf(t))
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
func (s *Store) Series(from, to time.Time, step Step, d Dimension) ([]SeriesStep, error) {
	if to.Before(from) {
		return nil, nil
	}
	var buckets []SeriesStep
	first := SeriesStart(from, step)
	for t := first; !t.After(to); t = t.Add(StepLen(step)) {
		buckets = append(buckets, SeriesStep{Start: t, Values: map[string]uint64{}})
	}
	kind, n0, n1 := byte(periodDay), dayOf(first), dayOf(to)
	if step == StepHour {
		kind, n0, n1 = periodHour, hourOf(first), hourOf(to)
	}
	var keys []periodKey
	for n := n0; n <= n1 && n >= n0; n++ {
		keys = append(keys, periodKey{kind, n})
	}
	// Copies of what each period holds, taken under the live lock or from
	// the bucket; resolved into values afterwards.
	got := map[periodKey]*period{}
	keep := func(k periodKey, p *period) {
		q := &period{builds: maps.Clone(p.builds), countries: map[string]*counts{}}
		if d == DimCountry {
			for v, c := range p.countries {
				q.countries[v] = &counts{reports: c.reports}
			}
		}
		got[k] = q
	}
	missing := s.live.read(keys, keep)
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(rollupsBucket)
		for _, k := range missing {
			if v := b.Get(k.bytes()); v != nil {
				if p, err := decodeReports(v, k.kind); err == nil {
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
	if d != DimTotal && d != DimCountry {
		nums := map[uint32]struct{}{}
		for _, p := range got {
			for b := range p.builds {
				nums[b] = struct{}{}
			}
		}
		if infos, err = s.buildInfos(slices.Collect(maps.Keys(nums))); err != nil {
			return nil, err
		}
	}
	for k, p := range got {
		i := int(k.start().Sub(first) / StepLen(step))
		if i < 0 || i >= len(buckets) {
			continue
		}
		vals := buckets[i].Values
		if d == DimCountry {
			for v, c := range p.countries {
				vals[v] += c.reports
			}
			continue
		}
		for b, n := range p.builds {
			v := ""
			if d != DimTotal {
				info := infos[b]
				if info == nil {
					continue
				}
				v = info.values.of(d)
			}
			vals[v] += n
		}
	}
	return buckets, nil
}
