package store

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"
)

// Counts are the reports and distinct installations of one value.
type Counts struct {
	Reports       uint64 `json:"reports"`
	Installations uint64 `json:"installations"`
}

// Totals is what the rollups say about a span of whole UTC days.
type Totals struct {
	// From is the first second of the first day, To the last second of the last.
	From, To time.Time
	Total    Counts
	// DistinctIDs counts the distinct raw id fields among the installations.
	DistinctIDs uint64
	// Dims holds, per dimension (BuildDims and DimCountry), the counts of
	// each value seen.
	Dims map[Dimension]map[string]Counts
	// Combos are the version combinations seen; Points the map points (with
	// a City database).
	Combos map[Combo]Counts
	Points map[Point]Counts
}

// DaySpan widens [from, to] to whole UTC days, the granularity of Totals.
func DaySpan(from, to time.Time) (time.Time, time.Time) {
	d0, d1 := dayOf(from), dayOf(to)
	return time.Unix(int64(d0)*86400, 0).UTC(), time.Unix(int64(d1+1)*86400-1, 0).UTC()
}

// acc sums periods: bitmaps are unions, reports add up.
type acc struct {
	installs  *roaring.Bitmap
	builds    map[uint32]uint64
	countries map[string]*counts
	points    map[string]*counts
}

func newAcc() *acc {
	return &acc{installs: roaring.New(), builds: map[uint32]uint64{}, countries: map[string]*counts{}, points: map[string]*counts{}}
}

// add sums p into a; a never shares p's bitmaps (Or copies containers).
func (a *acc) add(p *period) {
	if p.installs != nil {
		a.installs.Or(p.installs)
	}
	for b, n := range p.builds {
		a.builds[b] += n
	}
	addCounts(a.countries, p.countries)
	addCounts(a.points, p.points)
}

func addCounts(dst, src map[string]*counts) {
	for v, c := range src {
		d := dst[v]
		if d == nil {
			d = &counts{installs: roaring.New()}
			dst[v] = d
		}
		d.reports += c.reports
		if c.installs != nil {
			d.installs.Or(c.installs)
		}
	}
}

// readPeriods sums the periods ks into a: each from the live rollups when
// held there, else from the bucket. A stored value that cannot be read is
// skipped (and rebuilt by the writer once it touches it).
func (s *Store) readPeriods(a *acc, ks []periodKey) error {
	missing := s.live.read(ks, func(_ periodKey, p *period) { a.add(p) })
	if len(missing) == 0 {
		return nil
	}
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(rollupsBucket)
		for _, k := range missing {
			if v := b.Get(k.bytes()); v != nil {
				if p, err := decodePeriod(v, k.kind); err == nil {
					a.add(p)
				}
			}
		}
		return nil
	})
}

// part is the sum of some periods with what derives from its installations:
// how many per build, and the distinct ids among them.
type part struct {
	*acc
	perBuild map[uint32]uint64
	ids      map[uint64]struct{} // maphash of each distinct id
}

var idSeed = maphash.MakeSeed()

// derive counts the installations of set (those of a not yet counted) per
// build into p, and their ids, reading the installation rows in number order.
func (s *Store) derive(p *part, set *roaring.Bitmap) error {
	if set.IsEmpty() {
		return nil
	}
	return s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(installsBucket).Cursor()
		it := set.Iterator()
		var k, v []byte
		var at uint32
		for it.HasNext() {
			n := it.Next()
			if k == nil || n != at+1 || len(k) != 4 {
				k, v = c.Seek(numKey(n))
			} else {
				k, v = c.Next()
			}
			if len(k) != 4 || binary.BigEndian.Uint32(k) != n {
				k = nil
				continue
			}
			at = n
			build, _, id, err := decodeInstallation(v)
			if err != nil {
				continue
			}
			p.perBuild[build]++
			p.ids[maphash.String(idSeed, id)] = struct{}{}
		}
		return nil
	})
}

// Totals sums the rollups of the UTC days that [from, to] touches.
// Installations are exact: the union of per-period sets, broken down by
// build through the installation rows.
//
// Days before today change only when old records are imported, so their
// sum is computed once and kept (see closedCache); a request then reads
// today's rollups and the installations new today.
func (s *Store) Totals(from, to time.Time) (*Totals, error) {
	t := &Totals{Dims: map[Dimension]map[string]Counts{}, Combos: map[Combo]Counts{}, Points: map[Point]Counts{}}
	t.From, t.To = DaySpan(from, to)
	if to.Before(from) {
		return t, nil
	}
	d0, d1 := dayOf(from), dayOf(to)
	today := dayOf(time.Now())
	closed := &part{acc: newAcc(), perBuild: map[uint32]uint64{}, ids: map[uint64]struct{}{}}
	if d0 < today {
		var err error
		if closed, err = s.closedPart(d0, min(d1, today-1)); err != nil {
			return nil, err
		}
	}
	open := newAcc()
	if d1 >= today {
		if err := s.readPeriods(open, periods(max(d0, today), d1)); err != nil {
			return nil, err
		}
	}
	// What today adds to the closed days: its new installations.
	fresh := roaring.AndNot(open.installs, closed.installs)
	extra := &part{acc: newAcc(), perBuild: map[uint32]uint64{}, ids: map[uint64]struct{}{}}
	if err := s.derive(extra, fresh); err != nil {
		return nil, err
	}
	t.Total.Installations = closed.installs.GetCardinality() + fresh.GetCardinality()
	t.DistinctIDs = uint64(len(closed.ids))
	for id := range extra.ids {
		if _, ok := closed.ids[id]; !ok {
			t.DistinctIDs++
		}
	}
	reports := map[uint32]uint64{}
	for b, n := range closed.builds {
		reports[b] += n
	}
	for b, n := range open.builds {
		reports[b] += n
	}
	installs := map[uint32]uint64{}
	for b, n := range closed.perBuild {
		installs[b] += n
	}
	for b, n := range extra.perBuild {
		installs[b] += n
	}
	for _, d := range BuildDims {
		t.Dims[d] = map[string]Counts{}
	}
	for b := range union(reports, installs) {
		info, err := s.buildInfo(b)
		if err != nil {
			continue
		}
		t.Total.Reports += reports[b]
		add := Counts{Reports: reports[b], Installations: installs[b]}
		for i, d := range BuildDims {
			t.Dims[d][info.values[i]] = sumCounts(t.Dims[d][info.values[i]], add)
		}
		combo := info.values.combo()
		t.Combos[combo] = sumCounts(t.Combos[combo], add)
	}
	t.Dims[DimCountry] = mergeCounts(closed.countries, open.countries)
	for v, c := range mergeCounts(closed.points, open.points) {
		if p, ok := parsePoint(v); ok {
			t.Points[p] = c
		}
	}
	return t, nil
}

func sumCounts(a, b Counts) Counts {
	return Counts{Reports: a.Reports + b.Reports, Installations: a.Installations + b.Installations}
}

func union(a, b map[uint32]uint64) map[uint32]struct{} {
	out := make(map[uint32]struct{}, len(a))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}

// mergeCounts adds two sums of values: reports add, installations unite.
func mergeCounts(a, b map[string]*counts) map[string]Counts {
	out := make(map[string]Counts, len(a)+len(b))
	for v, c := range a {
		n := c.installs.GetCardinality()
		r := c.reports
		if o := b[v]; o != nil {
			n = c.installs.OrCardinality(o.installs)
			r += o.reports
		}
		out[v] = Counts{Reports: r, Installations: n}
	}
	for v, o := range b {
		if _, ok := a[v]; !ok {
			out[v] = Counts{Reports: o.reports, Installations: o.installs.GetCardinality()}
		}
	}
	return out
}

// buildInfo is build n parsed, through the readers' memo.
func (s *Store) buildInfo(n uint32) (*buildInfo, error) {
	c := &s.readers
	c.mu.Lock()
	b, ok := c.builds[n]
	c.mu.Unlock()
	if ok {
		return b, nil
	}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		b, err = s.readers.build(tx, n)
		return err
	})
	return b, err
}

// closedCache keeps the sums of past days. gen counts the flushes that
// changed a past period (imports): an entry of another generation is stale.
type closedCache struct {
	gen atomic.Uint64

	mu      sync.Mutex
	entries map[string]*closedEntry
	order   []string
}

type closedEntry struct {
	gen   uint64
	ready chan struct{}
	val   *part
	err   error
}

// maxClosedEntries bounds the ranges kept (the status page asks for a few).
const maxClosedEntries = 8

// closedPart is the part of days d0..d1 (all before today), computed once
// per generation and range; concurrent callers wait for one computation.
func (s *Store) closedPart(d0, d1 uint32) (*part, error) {
	cc := &s.readers.closed
	key := fmt.Sprint(d0, d1)
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
		p := &part{acc: newAcc(), perBuild: map[uint32]uint64{}, ids: map[uint64]struct{}{}}
		e.err = s.readPeriods(p.acc, periods(d0, d1))
		if e.err == nil {
			e.err = s.derive(p, p.installs)
		}
		e.val = p
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

// periods covers days d0..d1 with whole months where it can and days at
// the ends.
func periods(d0, d1 uint32) []periodKey {
	var ps []periodKey
	for d := d0; d <= d1; {
		t := time.Unix(int64(d)*86400, 0).UTC()
		if t.Day() == 1 {
			next := t.AddDate(0, 1, 0)
			last := dayOf(next) - 1
			if last <= d1 {
				ps = append(ps, periodKey{periodMonth, monthOf(t)})
				d = last + 1
				continue
			}
		}
		ps = append(ps, periodKey{periodDay, d})
		d++
	}
	return ps
}
