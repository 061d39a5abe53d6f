package store

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"
)

// Counts are the reports and distinct installations of one dimension value.
type Counts struct {
	Reports       uint64 `json:"reports"`
	Installations uint64 `json:"installations"`
}

// Totals is what the rollups say about a span of whole UTC days.
type Totals struct {
	// From is the first second of the first day, To the last second of the last.
	From, To time.Time
	// Dims holds, per dimension asked for, the counts of each value seen.
	Dims map[Dimension]map[string]Counts
}

// DaySpan widens [from, to] to whole UTC days, the granularity of Totals.
func DaySpan(from, to time.Time) (time.Time, time.Time) {
	d0, d1 := dayOf(from), dayOf(to)
	return time.Unix(int64(d0)*86400, 0).UTC(), time.Unix(int64(d1+1)*86400-1, 0).UTC()
}

// Totals sums the rollups of the UTC days that [from, to] touches, for the
// dimensions dims. Installations are exact: the union of per-period sets.
func (s *Store) Totals(from, to time.Time, dims ...Dimension) (*Totals, error) {
	t := &Totals{Dims: map[Dimension]map[string]Counts{}}
	t.From, t.To = DaySpan(from, to)
	if to.Before(from) {
		return t, nil
	}
	type agg struct {
		reports uint64
		ids     []*roaring.Bitmap
	}
	acc := map[Dimension]map[string]*agg{}
	for _, d := range dims {
		acc[d] = map[string]*agg{}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(rollupBucket).Cursor()
		for _, p := range periods(dayOf(from), dayOf(to)) {
			prefix := make([]byte, 6, 64)
			prefix[0] = p.kind
			binary.BigEndian.PutUint32(prefix[1:], p.n)
			for _, d := range dims {
				prefix[5] = byte(d)
				m := acc[d]
				for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
					reports, ids, err := decodeRollup(v, d != DimID, true)
					if err != nil {
						continue // one bad value must not hide the rest
					}
					a := m[string(k[6:])]
					if a == nil {
						a = &agg{}
						m[string(k[6:])] = a
					}
					a.reports += reports
					if ids != nil {
						a.ids = append(a.ids, ids)
					}
				}
			}
		}
		// The bitmaps point into the mapped file: union them inside the transaction.
		for d, m := range acc {
			out := make(map[string]Counts, len(m))
			for v, a := range m {
				var n uint64
				switch len(a.ids) {
				case 0: // ids keep no installations
				case 1:
					n = a.ids[0].GetCardinality()
				default:
					n = roaring.FastOr(a.ids...).GetCardinality()
				}
				out[v] = Counts{Reports: a.reports, Installations: n}
			}
			t.Dims[d] = out
		}
		return nil
	})
	return t, err
}

var useMonths = true

type period struct {
	kind byte
	n    uint32
}

// periods covers days d0..d1 with whole months where it can and days at the ends.
func periods(d0, d1 uint32) []period {
	var ps []period
	for d := d0; d <= d1; {
		t := time.Unix(int64(d)*86400, 0).UTC()
		if useMonths && t.Day() == 1 {
			next := t.AddDate(0, 1, 0)
			last := dayOf(next) - 1
			if last <= d1 {
				ps = append(ps, period{periodMonth, monthOf(t)})
				d = last + 1
				continue
			}
		}
		ps = append(ps, period{periodDay, d})
		d++
	}
	return ps
}

// Step is the bucket width of a Series.
type Step int

// Steps of a Series. Weeks start on Monday, UTC.
const (
	StepHour Step = iota
	StepDay
	StepWeek
)

// Bucket is one step of a Series: reports per value of the dimension.
type Bucket struct {
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

// Series counts the reports of each step that [from, to] touches, split by
// the values of d (DimTotal for no split). Hour steps need a dimension that
// Hourly accepts. Steps without reports are there, empty.
func (s *Store) Series(from, to time.Time, step Step, d Dimension) ([]Bucket, error) {
	if to.Before(from) {
		return nil, nil
	}
	var buckets []Bucket
	first := SeriesStart(from, step)
	for t := first; !t.After(to); t = advance(t, step) {
		buckets = append(buckets, Bucket{Start: t, Values: map[string]uint64{}})
	}
	kind, n0, n1 := byte(periodDay), dayOf(first), dayOf(to)
	if step == StepHour {
		kind, n0, n1 = periodHour, hourOf(first), hourOf(to)
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(rollupBucket).Cursor()
		prefix := make([]byte, 6)
		prefix[0], prefix[5] = kind, byte(d)
		for n := n0; n <= n1; n++ {
			binary.BigEndian.PutUint32(prefix[1:], n)
			var i int
			if step == StepHour {
				i = int(n - n0)
			} else {
				i = int(time.Unix(int64(n)*86400, 0).Sub(first) / stepLen(step))
			}
			if i >= len(buckets) {
				break
			}
			vals := buckets[i].Values
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				if r, n := binary.Uvarint(v); n > 0 {
					vals[string(k[6:])] += r
				}
			}
		}
		return nil
	})
	return buckets, err
}

func stepLen(step Step) time.Duration {
	switch step {
	case StepHour:
		return time.Hour
	case StepDay:
		return 24 * time.Hour
	}
	return 7 * 24 * time.Hour
}

func advance(t time.Time, step Step) time.Time { return t.Add(stepLen(step)) }

// InstallationCount is the number of distinct installations ever stored.
func (s *Store) InstallationCount() uint64 {
	var n uint64
	s.db.View(func(tx *bolt.Tx) error {
		n = getUint(tx.Bucket(metaBucket), nextInstallKey)
		return nil
	})
	return n
}
