package store

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
)

// Rollups are kept per UTC hour, day and month (bucket rollups, key
// periodKey.bytes(), value period.encode()), so summaries never scan raw
// records, which retention may delete. A period holds:
//
//	installs   the installations seen (a roaring bitmap of installation numbers; not for hours)
//	builds     reports per build
//	countries  reports per country code, and its installations (not for hours)
//	points     reports and installations per rounded map point (not for hours)
//
// Installations per version, platform, server... derive from installs: an
// installation has one build (see Summary). Only countries and points, which
// can differ between the reports of one installation, need sets of their own.
const (
	periodHour  = 'h'
	periodDay   = 'd'
	periodMonth = 'm'
)

type periodKey struct {
	kind byte
	n    uint32
}

func (k periodKey) bytes() []byte {
	return binary.BigEndian.AppendUint32([]byte{k.kind}, k.n)
}

// dayOf and hourOf number the UTC days and hours since 1970. A time before
// 1970 (a range the API derives from to=0) is day or hour 0: as a uint32 it
// would wrap to about 4.3 billion, and a range from day 0 to there took a
// minute and gigabytes to read (FuzzAPIParams: /api/v1/churn?to=0).
func dayOf(t time.Time) uint32  { return uint32(max(t.Unix(), 0) / 86400) }
func hourOf(t time.Time) uint32 { return uint32(max(t.Unix(), 0) / 3600) }
func monthOf(t time.Time) uint32 {
	t = t.UTC()
	return uint32(t.Year()*12 + int(t.Month()) - 1)
}

// periodsOf are the hour, day and month of t.
func periodsOf(t time.Time) [3]periodKey {
	return [3]periodKey{{periodHour, hourOf(t)}, {periodDay, dayOf(t)}, {periodMonth, monthOf(t)}}
}

// start is the first instant of the period.
func (k periodKey) start() time.Time {
	switch k.kind {
	case periodHour:
		return time.Unix(int64(k.n)*3600, 0).UTC()
	case periodDay:
		return time.Unix(int64(k.n)*86400, 0).UTC()
	}
	return time.Date(int(k.n/12), time.Month(k.n%12+1), 1, 0, 0, 0, 0, time.UTC)
}

// fact is what one stored record adds to the rollups.
type fact struct {
	received time.Time
	install  uint32
	build    uint32
	country  string
	point    string
}

// counts are the reports of one value and, but for hours, its installations.
type counts struct {
	reports  uint64
	installs *roaring.Bitmap
}

type period struct {
	installs  *roaring.Bitmap
	builds    map[uint32]uint64
	countries map[string]*counts
	points    map[string]*counts
}

func newPeriod(kind byte) *period {
	p := &period{builds: map[uint32]uint64{}, countries: map[string]*counts{}, points: map[string]*counts{}}
	if kind != periodHour {
		p.installs = roaring.New()
	}
	return p
}

func (p *period) add(f *fact) {
	p.builds[f.build]++
	p.bump(p.countries, f.country, f.install)
	if f.point != "" && p.installs != nil {
		p.bump(p.points, f.point, f.install)
	}
	if p.installs != nil {
		p.installs.Add(f.install)
	}
}

func (p *period) bump(m map[string]*counts, v string, install uint32) {
	c := m[v]
	if c == nil {
		c = &counts{}
		if p.installs != nil {
			c.installs = roaring.New()
		}
		m[v] = c
	}
	c.reports++
	if c.installs != nil {
		c.installs.Add(install)
	}
}

func (p *period) clone() *period {
	q := &period{builds: maps.Clone(p.builds), countries: cloneCounts(p.countries), points: cloneCounts(p.points)}
	if p.installs != nil {
		q.installs = p.installs.Clone()
	}
	return q
}

func cloneCounts(m map[string]*counts) map[string]*counts {
	out := make(map[string]*counts, len(m))
	for v, c := range m {
		cc := &counts{reports: c.reports}
		if c.installs != nil {
			cc.installs = c.installs.Clone()
		}
		out[v] = cc
	}
	return out
}

// A stored period:
//
//	version    byte, periodVersion
//	installs   uvarint length, roaring bitmap (length 0 for hours)
//	builds     uvarint count, then per build (ascending): uvarint gap, uvarint reports
//	countries  uvarint count, then per value: string, uvarint reports, uvarint length, bitmap
//	points     the same
const periodVersion = 1

func (p *period) encode() ([]byte, error) {
	buf := []byte{periodVersion}
	var err error
	if buf, err = appendBitmap(buf, p.installs); err != nil {
		return nil, err
	}
	ids := slices.Sorted(maps.Keys(p.builds))
	buf = binary.AppendUvarint(buf, uint64(len(ids)))
	var prev uint32
	for _, b := range ids {
		buf = binary.AppendUvarint(buf, uint64(b-prev))
		buf = binary.AppendUvarint(buf, p.builds[b])
		prev = b
	}
	for _, m := range []map[string]*counts{p.countries, p.points} {
		vals := slices.Sorted(maps.Keys(m))
		buf = binary.AppendUvarint(buf, uint64(len(vals)))
		for _, v := range vals {
			c := m[v]
			buf = appendString(buf, v)
			buf = binary.AppendUvarint(buf, c.reports)
			if buf, err = appendBitmap(buf, c.installs); err != nil {
				return nil, err
			}
		}
	}
	return buf, nil
}

func appendBitmap(buf []byte, b *roaring.Bitmap) ([]byte, error) {
	if b == nil {
		return append(buf, 0), nil
	}
	b.RunOptimize()
	bs, err := b.ToBytes()
	if err != nil {
		return nil, err
	}
	buf = binary.AppendUvarint(buf, uint64(len(bs)))
	return append(buf, bs...), nil
}

var errBadPeriod = errors.New("unreadable rollup value")

// decodePeriod reads what encode wrote. Hostile bytes give an error, never
// a large allocation: every count is held to the bytes that remain.
func decodePeriod(v []byte, kind byte) (*period, error) {
	return decodePeriodWith(decoder{b: v}, kind)
}

// decodeReports reads the report counts of a period, passing over its
// installation bitmaps: a timeseries of reports over a year reads 366 days
// and needs no installations (parsing and validating the bitmaps was 90% of
// its time). The bitmaps of the answer are nil.
func decodeReports(v []byte, kind byte) (*period, error) {
	return decodePeriodWith(decoder{b: v, skipBitmaps: true}, kind)
}

func decodePeriodWith(d decoder, kind byte) (*period, error) {
	p := newPeriod(kind)
	if d.byte() != periodVersion {
		return nil, errBadPeriod
	}
	var err error
	if p.installs, err = d.bitmap(kind != periodHour); err != nil {
		return nil, err
	}
	n := d.uvarint()
	if n > uint64(len(d.b))/2 {
		return nil, errBadPeriod
	}
	var b uint64
	for range n {
		b += d.uvarint()
		if b > 1<<32-1 {
			return nil, errBadPeriod
		}
		p.builds[uint32(b)] += d.uvarint()
	}
	for _, m := range []map[string]*counts{p.countries, p.points} {
		n := d.uvarint()
		if n > uint64(len(d.b))/3 {
			return nil, errBadPeriod
		}
		for range n {
			v := d.string()
			c := &counts{reports: d.uvarint()}
			if c.installs, err = d.bitmap(kind != periodHour); err != nil {
				return nil, err
			}
			if len(v) > maxValue {
				return nil, errBadPeriod
			}
			m[v] = c
		}
	}
	if d.err != nil || len(d.b) != 0 {
		return nil, errBadPeriod
	}
	return p, nil
}

// maxValue bounds a country or point value ("-89.9,-179.9").
const maxValue = 16

// bitmap reads a length-prefixed bitmap; want says whether one belongs
// here (hours have none: length 0).
func (d *decoder) bitmap(want bool) (*roaring.Bitmap, error) {
	l := d.uvarint()
	if l > uint64(len(d.b)) {
		d.err = errShort
	}
	if d.err != nil {
		return nil, d.err
	}
	if l == 0 {
		if want {
			return roaring.New(), nil
		}
		return nil, nil
	}
	if !want {
		return nil, errBadPeriod
	}
	if d.skipBitmaps {
		d.take(int(l))
		return nil, d.err
	}
	raw := d.take(int(l))
	// checkBitmap, not roaring's Validate, which is quadratic in the runs
	// of a container: what it accepts, roaring reads and Validate accepts
	// (FuzzCheckBitmap).
	if err := checkBitmap(raw); err != nil {
		return nil, errBadPeriod
	}
	b := roaring.New()
	if err := b.UnmarshalBinary(raw); err != nil {
		return nil, errBadPeriod
	}
	return b, nil
}
