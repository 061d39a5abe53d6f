package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
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
//
// Days before today only change when old records are imported or rollups
// rebuilt, so their union is computed once and kept (see closedTotals); a
// request then reads only today's rollups and adds them.
func (s *Store) Totals(from, to time.Time, dims ...Dimension) (*Totals, error) {
	t := &Totals{Dims: map[Dimension]map[string]Counts{}}
	t.From, t.To = DaySpan(from, to)
	if to.Before(from) {
		return t, nil
	}
	d0, d1 := dayOf(from), dayOf(to)
	today := dayOf(time.Now())
	var closed *unionTotals
	if d0 < today {
		var err error
		if closed, err = s.closedTotals(d0, min(d1, today-1), dims); err != nil {
			return nil, err
		}
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		var open *unionTotals
		if d1 >= today {
			// Zero-copy: the bitmaps are used only inside this transaction.
			open = readTotals(tx, periods(max(d0, today), d1), dims, true)
			open = addPendingTotals(open, s.pendingFor(tx), periods(max(d0, today), d1), dims)
		}
		for _, d := range dims {
			out := map[string]Counts{}
			var cm, om map[string]*union
			if closed != nil {
				cm = closed.dims[d]
			}
			if open != nil {
				om = open.dims[d]
			}
			for v, c := range cm {
				n := c.card
				o := om[v]
				if o != nil && c.ids != nil && o.ids != nil {
					n = c.ids.OrCardinality(o.ids)
				}
				out[v] = Counts{Reports: c.reports, Installations: n}
				if o != nil {
					out[v] = Counts{Reports: c.reports + o.reports, Installations: n}
				}
			}
			for v, o := range om {
				if _, ok := cm[v]; !ok {
					out[v] = Counts{Reports: o.reports, Installations: o.card}
				}
			}
			t.Dims[d] = out
		}
		return nil
	})
	return t, err
}

// union is one dimension value summed over periods.
type union struct {
	reports uint64
	ids     *roaring.Bitmap // nil for dimensions without installations
	card    uint64
}

// unionTotals is every value of some dimensions summed over periods.
type unionTotals struct {
	dims map[Dimension]map[string]*union
}

// readTotals sums periods ps. With zeroCopy the bitmaps point into the
// mapped file and must not outlive tx.
func readTotals(tx *bolt.Tx, ps []period, dims []Dimension, zeroCopy bool) *unionTotals {
	type agg struct {
		reports uint64
		ids     []*roaring.Bitmap
	}
	acc := map[Dimension]map[string]*agg{}
	for _, d := range dims {
		acc[d] = map[string]*agg{}
	}
	c := tx.Bucket(rollupBucket).Cursor()
	prefix := make([]byte, 6, 64)
	for _, p := range ps {
		prefix[0] = p.kind
		binary.BigEndian.PutUint32(prefix[1:], p.n)
		for _, d := range dims {
			prefix[5] = byte(d)
			m := acc[d]
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				reports, ids, err := decodeRollup(v, d != DimID, zeroCopy)
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
	out := &unionTotals{dims: map[Dimension]map[string]*union{}}
	for d, m := range acc {
		um := make(map[string]*union, len(m))
		for v, a := range m {
			u := &union{reports: a.reports}
			switch len(a.ids) {
			case 0: // ids keep no installations
			case 1:
				u.ids = a.ids[0]
			default:
				u.ids = roaring.FastOr(a.ids...)
			}
			if u.ids != nil {
				u.card = u.ids.GetCardinality()
			}
			um[v] = u
		}
		out.dims[d] = um
	}
	return out
}

// closedCache keeps the unions of past days. gen counts the commits that
// changed a past day (imports, rebuilds): an entry of another generation is
// stale.
type closedCache struct {
	gen atomic.Uint64

	mu      sync.Mutex
	entries map[string]*closedEntry
	order   []string
}

type closedEntry struct {
	gen   uint64
	ready chan struct{}
	val   *unionTotals
	err   error
}

// maxClosedEntries bounds the ranges kept (the status page asks for a few).
const maxClosedEntries = 8

// closedTotals is readTotals of days d0..d1 (all before today), computed
// once per generation and range; concurrent callers wait for one computation.
func (s *Store) closedTotals(d0, d1 uint32, dims []Dimension) (*unionTotals, error) {
	cc := &s.rollupCache.closed
	key := fmt.Sprint(d0, d1, dims)
	gen := cc.gen.Load()
	cc.mu.Lock()
	if cc.entries == nil {
		cc.entries = map[string]*closedEntry{}
	}
	e := cc.entries[key]
	if e == nil || e.gen != gen {
		e = &closedEntry{gen: gen, ready: make(chan struct{})}
		if _, had := cc.entries[key]; !had {
			cc.order = append(cc.order, key)
			if len(cc.order) > maxClosedEntries {
				delete(cc.entries, cc.order[0])
				cc.order = cc.order[1:]
			}
		}
		cc.entries[key] = e
		cc.mu.Unlock()
		e.err = s.db.View(func(tx *bolt.Tx) error {
			e.val = readTotals(tx, periods(d0, d1), dims, true)
			// Keep copies: the zero-copy bitmaps die with the transaction.
			for _, m := range e.val.dims {
				for _, u := range m {
					if u.ids != nil {
						u.ids = u.ids.Clone()
					}
				}
			}
			return nil
		})
		if e.err != nil {
			cc.mu.Lock()
			if cc.entries[key] == e {
				delete(cc.entries, key)
			}
			cc.mu.Unlock()
		}
		close(e.ready)
	} else {
		cc.mu.Unlock()
		<-e.ready
	}
	return e.val, e.err
}

type period struct {
	kind byte
	n    uint32
}

// periods covers days d0..d1 with whole months where it can and days at the ends.
func periods(d0, d1 uint32) []period {
	var ps []period
	for d := d0; d <= d1; {
		t := time.Unix(int64(d)*86400, 0).UTC()
		if t.Day() == 1 {
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
// the values of d (DimTotal for no split). Hour steps need a dimension in
// hourly. Steps without reports are there, empty.
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
		eachPending(s.pendingFor(tx), func(k rollupKey, pd pendingDelta) {
			if k.period != kind || k.dim != d || k.n < n0 || k.n > n1 {
				return
			}
			i := int(k.n - n0)
			if step != StepHour {
				i = int(time.Unix(int64(k.n)*86400, 0).Sub(first) / stepLen(step))
			}
			if i < len(buckets) {
				buckets[i].Values[k.value] += pd.reports
			}
		})
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
