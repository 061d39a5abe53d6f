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
	return s.series(from, to, step, by{dim: d})
}

// ZoneSeries is Series of the reports of zone, a zone of a custom schema,
// split by the values of its field field: "" for no split, "country" for
// countries (see ZoneTotals).
func (s *Store) ZoneSeries(from, to time.Time, step Step, zone, field string) ([]SeriesStep, error) {
	return s.series(from, to, step, s.byZone(zone, field))
}

// by is what a series or an installation step counts: ModSecurity's zones
// split by dim (zone ""), or a custom zone's reports, whose number in the
// zones dictionary is zoneNum, split by its field (dim DimTotal: none;
// DimCountry: countries). none counts nothing (a zone without reports).
type by struct {
	dim     rollup.Dimension
	zone    string
	zoneNum uint32
	field   string
	none    bool
}

// byZone is the by of a custom zone's field; it counts none when the zone
// has no report yet (or is not of a custom schema).
func (s *Store) byZone(zone, field string) by {
	b := by{dim: DimTotal, zone: zone, field: field}
	if field == "country" {
		b.dim, b.field = rollup.DimCountry, ""
	}
	n, ok := s.zoneNumber(zone)
	b.zoneNum, b.none = n, !ok || s.Schemas().Custom(zone) == nil
	return b
}

// value is b's value of build info, and whether the build counts.
func (b *by) value(info *buildInfo) (string, bool) {
	if info == nil {
		return "", b.zone == "" && b.dim == DimTotal
	}
	if info.zone != b.zone {
		return "", false
	}
	if b.zone == "" {
		if b.dim == DimTotal {
			return "", true
		}
		return info.values.Of(b.dim), true
	}
	if b.field == "" {
		return "", true
	}
	for i, f := range info.schema.Fields() {
		if f == b.field {
			if i < len(info.fields) {
				return info.fields[i], true
			}
			return "", true
		}
	}
	return "", true
}

func (s *Store) series(from, to time.Time, step Step, sel by) ([]SeriesStep, error) {
	d := sel.dim
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
	mixed := len(s.Schemas().Zones()) > 0 || sel.zone != ""
	if (d != DimTotal || mixed) && d != rollup.DimCountry && !sel.none {
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
		if sel.none {
			continue
		}
		if d == rollup.DimCountry {
			for v, c := range p.Countries {
				if z, value, ok := rollup.SplitGeoKey(v); ok && z == sel.zoneNum { // the zone's (0: ModSecurity's)
					vals[value] += c.Reports
				}
			}
			continue
		}
		for b, n := range p.Builds {
			v := ""
			if infos != nil {
				var ok bool
				if v, ok = sel.value(infos[b]); !ok {
					continue // another zone's build, or unreadable
				}
			}
			vals[v] += n
		}
	}
	return buckets, nil
}
