package rollup

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/statusengine/statusengine/plugin/statusengine/store/internal/bin"
)

// Rollups are kept per UTC hour, day and month (bucket rollups, key
// Key.bytes(), value period.encode()), so summaries never scan raw
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
	Hour  = 'h'
	Day   = 'd'
	Month = 'm'
)

// Key names a period: its kind (Hour, Day, Month) and its number since
// 1970 (HourOf, DayOf, MonthOf). Its bytes are the period's key in bucket
// rollups, so the bucket sorts by kind, then time.
type Key struct {
	Kind byte
	N    uint32
}

// Bytes is k as a key of bucket rollups: the kind, then N big-endian.
func (k Key) Bytes() []byte {
	return binary.BigEndian.AppendUint32([]byte{k.Kind}, k.N)
}

// DayOf and HourOf number the UTC days and hours since 1970. A time before
// 1970 (a range the API derives from to=0) is day or hour 0: as a uint32 it
// would wrap to about 4.3 billion, and a range from day 0 to there took a
// minute and gigabytes to read (FuzzAPIParams: /api/v1/churn?to=0).
func DayOf(t time.Time) uint32 { return uint32(max(t.Unix(), 0) / 86400) }

// HourOf: see DayOf.
func HourOf(t time.Time) uint32 { return uint32(max(t.Unix(), 0) / 3600) }

// MonthOf numbers the UTC months since year 0.
func MonthOf(t time.Time) uint32 {
	t = t.UTC()
	return uint32(t.Year()*12 + int(t.Month()) - 1)
}

// KeysOf are the hour, day and month of t.
func KeysOf(t time.Time) [3]Key {
	return [3]Key{{Hour, HourOf(t)}, {Day, DayOf(t)}, {Month, MonthOf(t)}}
}

// Start is the first instant of the period.
func (k Key) Start() time.Time {
	switch k.Kind {
	case Hour:
		return time.Unix(int64(k.N)*3600, 0).UTC()
	case Day:
		return time.Unix(int64(k.N)*86400, 0).UTC()
	}
	return time.Date(int(k.N/12), time.Month(k.N%12+1), 1, 0, 0, 0, 0, time.UTC)
}

// Fact is what one stored record adds to the rollups.
type Fact struct {
	Received time.Time
	Install  uint32
	Build    uint32
	Country  string
	Point    string
}

// counts are the reports of one value and, but for hours, its installations.
type Group struct {
	Reports  uint64
	Installs *roaring.Bitmap
}

// Period is one period's sums, the value of bucket rollups (its layout
// above).
type Period struct {
	Installs  *roaring.Bitmap
	Builds    map[uint32]uint64
	Countries map[string]*Group
	Points    map[string]*Group
}

func newPeriod(kind byte) *Period {
	p := &Period{Builds: map[uint32]uint64{}, Countries: map[string]*Group{}, Points: map[string]*Group{}}
	if kind != Hour {
		p.Installs = roaring.New()
	}
	return p
}

func (p *Period) add(f *Fact) {
	p.Builds[f.Build]++
	p.bump(p.Countries, f.Country, f.Install)
	if f.Point != "" && p.Installs != nil {
		p.bump(p.Points, f.Point, f.Install)
	}
	if p.Installs != nil {
		p.Installs.Add(f.Install)
	}
}

func (p *Period) bump(m map[string]*Group, v string, install uint32) {
	c := m[v]
	if c == nil {
		c = &Group{}
		if p.Installs != nil {
			c.Installs = roaring.New()
		}
		m[v] = c
	}
	c.Reports++
	if c.Installs != nil {
		c.Installs.Add(install)
	}
}

func (p *Period) clone() *Period {
	q := &Period{Builds: maps.Clone(p.Builds), Countries: cloneCounts(p.Countries), Points: cloneCounts(p.Points)}
	if p.Installs != nil {
		q.Installs = p.Installs.Clone()
	}
	return q
}

func cloneCounts(m map[string]*Group) map[string]*Group {
	out := make(map[string]*Group, len(m))
	for v, c := range m {
		cc := &Group{Reports: c.Reports}
		if c.Installs != nil {
			cc.Installs = c.Installs.Clone()
		}
		out[v] = cc
	}
	return out
}

// A stored period:
//
//	version    byte, PeriodVersion
//	installs   uvarint length, roaring bitmap (length 0 for hours)
//	builds     uvarint count, then per build (ascending): uvarint gap, uvarint reports
//	countries  uvarint count, then per value: string, uvarint reports, uvarint length, bitmap
//	points     the same
const PeriodVersion = 1

func (p *Period) encode() ([]byte, error) {
	buf := []byte{PeriodVersion}
	var err error
	if buf, err = appendBitmap(buf, p.Installs); err != nil {
		return nil, err
	}
	ids := slices.Sorted(maps.Keys(p.Builds))
	buf = binary.AppendUvarint(buf, uint64(len(ids)))
	var prev uint32
	for _, b := range ids {
		buf = binary.AppendUvarint(buf, uint64(b-prev))
		buf = binary.AppendUvarint(buf, p.Builds[b])
		prev = b
	}
	for _, m := range []map[string]*Group{p.Countries, p.Points} {
		vals := slices.Sorted(maps.Keys(m))
		buf = binary.AppendUvarint(buf, uint64(len(vals)))
		for _, v := range vals {
			c := m[v]
			buf = bin.AppendString(buf, v)
			buf = binary.AppendUvarint(buf, c.Reports)
			if buf, err = appendBitmap(buf, c.Installs); err != nil {
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

// DecodePeriod reads what encode wrote. Hostile bytes give an error, never
// a large allocation: every count is held to the bytes that remain.
func DecodePeriod(v []byte, kind byte) (*Period, error) {
	return decodePeriodWith(bin.Decoder{B: v}, kind)
}

// DecodeReports reads the report counts of a period, passing over its
// installation bitmaps: a timeseries of reports over a year reads 366 days
// and needs no installations (parsing and validating the bitmaps was 90% of
// its time). The bitmaps of the answer are nil.
func DecodeReports(v []byte, kind byte) (*Period, error) {
	return decodePeriodWith(bin.Decoder{B: v, SkipBitmaps: true}, kind)
}

func decodePeriodWith(d bin.Decoder, kind byte) (*Period, error) {
	p := newPeriod(kind)
	if d.Byte() != PeriodVersion {
		return nil, errBadPeriod
	}
	var err error
	if p.Installs, err = readBitmap(&d, kind != Hour); err != nil {
		return nil, err
	}
	n := d.Uvarint()
	if n > uint64(len(d.B))/2 {
		return nil, errBadPeriod
	}
	var b uint64
	for range n {
		b += d.Uvarint()
		if b > 1<<32-1 {
			return nil, errBadPeriod
		}
		p.Builds[uint32(b)] += d.Uvarint()
	}
	for _, m := range []map[string]*Group{p.Countries, p.Points} {
		n := d.Uvarint()
		if n > uint64(len(d.B))/3 {
			return nil, errBadPeriod
		}
		for range n {
			v := d.Str()
			c := &Group{Reports: d.Uvarint()}
			if c.Installs, err = readBitmap(&d, kind != Hour); err != nil {
				return nil, err
			}
			if len(v) > maxValue {
				return nil, errBadPeriod
			}
			m[v] = c
		}
	}
	if d.Err != nil || len(d.B) != 0 {
		return nil, errBadPeriod
	}
	return p, nil
}

// maxValue bounds a country or point value ("-89.9,-179.9").
const maxValue = 16

// bitmap reads a length-prefixed bitmap; want says whether one belongs
// here (hours have none: length 0).
func readBitmap(d *bin.Decoder, want bool) (*roaring.Bitmap, error) {
	l := d.Uvarint()
	if l > uint64(len(d.B)) {
		d.Err = bin.ErrShort
	}
	if d.Err != nil {
		return nil, d.Err
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
	if d.SkipBitmaps {
		d.Take(int(l))
		return nil, d.Err
	}
	raw := d.Take(int(l))
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
