package store

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/internal/flight"
	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// Counts are the reports and distinct installations of one value, and the
// distinct source networks those installations reported from.
type Counts struct {
	Reports       uint64 `json:"reports"`
	Installations uint64 `json:"installations"`
	// Networks counts the distinct resolver networks (/24 or /48) the
	// installations first reported through, up to NetworkCap: enough to
	// tell whether a group is corroborated by several networks, and cheap
	// for any number. Not the ECS subnet, which the sender chooses.
	// (Installations stored before the resolvers bucket count their source
	// network, the ECS subnet when there was one.)
	Networks uint64 `json:"networks"`
}

// NetworkCap bounds Counts.Networks.
const NetworkCap = 64

// Totals is what the rollups say about a span of whole UTC days.
type Totals struct {
	// From is the first second of the first day, To the last second of the last.
	From, To time.Time
	Total    Counts
	// DistinctIDs counts the distinct raw id fields among the installations.
	DistinctIDs uint64
	// Dims holds, per dimension (BuildDims and DimCountry), the counts of
	// each value seen.
	Dims map[rollup.Dimension]map[string]Counts
	// Combos are the version combinations seen; Points the map points (with
	// a City database).
	Combos map[rollup.Combo]Counts
	Points map[rollup.Point]Counts

	// Zone is the zone of a custom schema these totals are of ("" for
	// ModSecurity's zones), Schema its schema; Fields then holds, per
	// field of the schema but the id, the counts of each value (a value a
	// beacon left out, past min_fields, is ""), and Dims only DimCountry.
	Zone   string
	Schema *codec.Schema
	Fields map[string]map[string]Counts
}

// DaySpan widens [from, to] to whole UTC days, the granularity of Totals.
func DaySpan(from, to time.Time) (time.Time, time.Time) {
	d0, d1 := rollup.DayOf(from), rollup.DayOf(to)
	return time.Unix(int64(d0)*86400, 0).UTC(), time.Unix(int64(d1+1)*86400-1, 0).UTC()
}

// acc sums periods: bitmaps are unions, reports add up.
type acc struct {
	installs  *roaring.Bitmap
	builds    map[uint32]uint64
	countries map[string]*rollup.Group
	points    map[string]*rollup.Group
}

func newAcc() *acc {
	return &acc{installs: roaring.New(), builds: map[uint32]uint64{}, countries: map[string]*rollup.Group{}, points: map[string]*rollup.Group{}}
}

// add sums p into a; a never shares p's bitmaps (Or copies containers).
func (a *acc) add(p *rollup.Period) {
	if p.Installs != nil {
		a.installs.Or(p.Installs)
	}
	for b, n := range p.Builds {
		a.builds[b] += n
	}
	addCounts(a.countries, p.Countries)
	addCounts(a.points, p.Points)
}

func addCounts(dst, src map[string]*rollup.Group) {
	for v, c := range src {
		d := dst[v]
		if d == nil {
			d = &rollup.Group{Installs: roaring.New()}
			dst[v] = d
		}
		d.Reports += c.Reports
		if c.Installs != nil {
			d.Installs.Or(c.Installs)
		}
	}
}

// readPeriods sums the periods ks into a: each from the live rollups when
// held there, else from the bucket. A stored value that cannot be read is
// skipped (and rebuilt by the writer once it touches it).
func (s *Store) readPeriods(a *acc, ks []rollup.Key) error {
	missing := s.live.Read(ks, func(_ rollup.Key, p *rollup.Period) { a.add(p) })
	if len(missing) == 0 {
		return nil
	}
	return s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Rollups)
		for _, k := range missing {
			if v := b.Get(k.Bytes()); v != nil {
				if p, err := rollup.DecodePeriod(v, k.Kind); err == nil {
					a.add(p)
				}
			}
		}
		return nil
	})
}

// members is what summaries need of a set of installations, read from
// their rows: parallel slices in number order (24 bytes an installation).
type members struct {
	nums   []uint32
	builds []uint32
	nets   []uint64 // maphash of the resolver network (else the source network)
	ids    []uint64 // maphash of the id field
}

var hashSeed = maphash.MakeSeed()

func (m *members) size() int { return 24 * len(m.nums) }

// members reads the rows of the installations of set, in number order:
// from the installation table (installtable.go), and past its bound from
// the bucket.
func (s *Store) members(set *roaring.Bitmap) (*members, error) {
	m := &members{}
	if set.IsEmpty() {
		return m, nil
	}
	n := int(set.GetCardinality())
	m.nums, m.builds, m.nets, m.ids = make([]uint32, 0, n), make([]uint32, 0, n), make([]uint64, 0, n), make([]uint64, 0, n)
	v, err := s.readers.table.view(s, set)
	if err != nil {
		return nil, err
	}
	rows := v.rows
	it := set.Iterator()
	for it.HasNext() {
		n := it.Next()
		if n == 0 || n > uint32(len(rows)) {
			if n > maxTableRows {
				return m, s.membersPast(it, n, m)
			}
			continue // not committed yet, or no such row
		}
		if r := &rows[n-1]; r.build != 0 {
			m.nums = append(m.nums, n)
			m.builds = append(m.builds, r.build)
			m.nets = append(m.nets, r.net)
			m.ids = append(m.ids, r.id)
		}
	}
	return m, nil
}

// membersPast reads the rows of n and the numbers after it in it from the
// bucket: those past the installation table's bound.
func (s *Store) membersPast(it roaring.IntPeekable, n uint32, m *members) error {
	return s.view(func(tx *bolt.Tx) error {
		rows := &inOrder{c: tx.Bucket(schema.Installations).Cursor()}
		var resolvers *inOrder
		if b := tx.Bucket(schema.Resolvers); b != nil {
			resolvers = &inOrder{c: b.Cursor()}
		}
		var r memberRow
		for {
			if r.read(n, rows, resolvers) {
				m.nums = append(m.nums, n)
				m.builds = append(m.builds, r.build)
				m.nets = append(m.nets, r.net)
				m.ids = append(m.ids, r.id)
			}
			if !it.HasNext() {
				return nil
			}
			n = it.Next()
		}
	})
}

// inOrder reads rows keyed by number, asked for in increasing order: the
// next number is most often the cursor's next row, not worth a search from
// the root.
type inOrder struct {
	c    *bolt.Cursor
	k, v []byte
}

// get is the value of row n, or nil.
func (o *inOrder) get(n uint32) []byte {
	switch {
	case len(o.k) == 4 && binary.BigEndian.Uint32(o.k) == n:
	case len(o.k) == 4 && binary.BigEndian.Uint32(o.k)+1 == n:
		o.k, o.v = o.c.Next()
	case len(o.k) == 4 && binary.BigEndian.Uint32(o.k) > n:
		return nil // asked again for a missing row below the cursor
	default:
		o.k, o.v = o.c.Seek(numKey(n))
	}
	if len(o.k) != 4 || binary.BigEndian.Uint32(o.k) != n {
		return nil
	}
	return o.v
}

// distinct counts the distinct values of ids, sorting a copy: for a
// year's million installations faster than a set (a map) of them.
func distinct(ids []uint64) uint64 {
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	return uint64(len(slices.Compact(sorted)))
}

// buildSet is the builds of a members' list, each once.
func buildSet(builds []uint32) map[uint32]struct{} {
	out := map[uint32]struct{}{}
	for _, b := range builds {
		out[b] = struct{}{}
	}
	return out
}

// only is m's installations whose build in keeps, in number order.
func (m *members) only(in func(uint32) bool) *members {
	out := &members{}
	for i, b := range m.builds {
		if in(b) {
			out.nums = append(out.nums, m.nums[i])
			out.builds = append(out.builds, b)
			out.nets = append(out.nets, m.nets[i])
			out.ids = append(out.ids, m.ids[i])
		}
	}
	return out
}

// netsOf is the networks of the members in set, up to NetworkCap.
func (m *members) netsOf(set *roaring.Bitmap) netSet {
	var ns netSet
	j := 0
	it := set.Iterator()
	for it.HasNext() && len(ns) < NetworkCap {
		n := it.Next()
		for j < len(m.nums) && m.nums[j] < n {
			j++
		}
		if j < len(m.nums) && m.nums[j] == n {
			ns.add(m.nets[j])
		}
	}
	return ns
}

// merged is a ∪ b, both in number order and disjoint.
func merged(a, b *members) *members {
	if len(b.nums) == 0 {
		return a
	}
	n := len(a.nums) + len(b.nums)
	m := &members{make([]uint32, 0, n), make([]uint32, 0, n), make([]uint64, 0, n), make([]uint64, 0, n)}
	i, j := 0, 0
	for i < len(a.nums) || j < len(b.nums) {
		src, k := a, i
		if i == len(a.nums) || (j < len(b.nums) && b.nums[j] < a.nums[i]) {
			src, k = b, j
			j++
		} else {
			i++
		}
		m.nums = append(m.nums, src.nums[k])
		m.builds = append(m.builds, src.builds[k])
		m.nets = append(m.nets, src.nets[k])
		m.ids = append(m.ids, src.ids[k])
	}
	return m
}

// netSet holds distinct networks (their hashes), up to NetworkCap. It
// grows as needed: most values come from one or two networks, and a summary
// of 100,000 distinct values holds one per value and dimension.
type netSet []uint64

func (ns *netSet) add(h uint64) {
	if len(*ns) == NetworkCap || slices.Contains(*ns, h) {
		return
	}
	*ns = append(*ns, h)
}

// tally builds Counts: reports, installations, networks.
type tally struct {
	c    Counts
	nets netSet
}

func (t *tally) install(net uint64) {
	t.c.Installations++
	t.nets.add(net)
}

func (t *tally) counts() Counts {
	c := t.c
	c.Networks = uint64(len(t.nets))
	return c
}

// part is the sum of some periods and the members of its installations.
type part struct {
	*acc
	m *members
}

// Totals sums the rollups of the UTC days that [from, to] touches.
// Installations are exact: the union of per-period sets, broken down by
// build through the installation rows (an installation has one build).
//
// Days before today change only when old records are imported, so their
// sum is computed once and kept (see closedCache); a request then reads
// today's rollups and the rows of the installations new today.
func (s *Store) Totals(from, to time.Time) (*Totals, error) {
	return s.ZoneTotals(from, to, "")
}

// ZoneTotals is Totals of the reports of one schema's zones: zone "" is
// every zone of ModSecurity's schema (its breakdowns in Dims, as Totals),
// any other a zone of a custom schema, whose breakdowns are its fields,
// parsed from its builds' heads with the schema the file keeps (Fields).
// Which build belongs to which zone is in its row (schemas.go), so the
// rollups serve every zone as they are.
func (s *Store) ZoneTotals(from, to time.Time, zone string) (*Totals, error) {
	t := &Totals{Dims: map[rollup.Dimension]map[string]Counts{}, Combos: map[rollup.Combo]Counts{}, Points: map[rollup.Point]Counts{}}
	t.From, t.To = DaySpan(from, to)
	if to.Before(from) {
		return t, nil
	}
	d0, d1 := rollup.DayOf(from), rollup.DayOf(to)
	today := rollup.DayOf(time.Now())
	closed := &part{acc: newAcc(), m: &members{}}
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
	fresh, err := s.members(roaring.AndNot(open.installs, closed.installs))
	if err != nil {
		return nil, err
	}
	m := merged(closed.m, fresh)

	reports := maps.Clone(closed.builds)
	for b, n := range open.builds {
		reports[b] += n
	}
	var zoneNum uint32 // the rollups' geo keys of the zone (rollup.ZoneGeoKey); 0: ModSecurity's
	if zone != "" {
		t.Zone, t.Schema, t.Fields = zone, s.Schemas().Custom(zone), map[string]map[string]Counts{}
		var ok bool
		if zoneNum, ok = s.zoneNumber(zone); t.Schema == nil || !ok {
			return t, nil // no report of the zone yet
		}
	}
	// Which builds are the zone's: parsed once, the reading below reuses
	// them. A store without custom schemas has ModSecurity's builds only,
	// and reads as it did before schemas.
	var infos map[uint32]*buildInfo
	if zone != "" || len(s.Schemas().Zones()) > 0 {
		var err error
		if infos, err = s.buildInfos(unionKeys(reports, buildSet(m.builds))); err != nil {
			return nil, err
		}
		in := func(b uint32) bool { return infos[b].inZone(zone) }
		for b := range infos {
			if !in(b) { // other zones' builds in the range: their installations out
				m = m.only(in)
				for b := range reports {
					if !in(b) {
						delete(reports, b)
					}
				}
				break
			}
		}
	}
	perBuild := map[uint32]*tally{}
	var total tally
	for i, b := range m.builds {
		tb := perBuild[b]
		if tb == nil {
			tb = &tally{}
			perBuild[b] = tb
		}
		tb.install(m.nets[i])
		total.install(m.nets[i])
	}
	t.DistinctIDs = distinct(m.ids)

	dims := map[rollup.Dimension]map[string]*tally{}
	for _, d := range rollup.BuildDims {
		dims[d] = map[string]*tally{}
	}
	combos := map[rollup.Combo]*tally{}
	fields := map[string]map[string]*tally{}
	nums := unionKeys(reports, perBuild)
	if infos == nil {
		if infos, err = s.buildInfos(nums); err != nil {
			return nil, err
		}
	}
	for _, b := range nums {
		info := infos[b]
		if info == nil {
			continue
		}
		tb := perBuild[b]
		if tb == nil {
			tb = &tally{}
		}
		tb.c.Reports = reports[b]
		total.c.Reports += reports[b]
		if info.schema != nil {
			for i, f := range info.schema.Fields() {
				if f == info.schema.ID() {
					continue
				}
				v := ""
				if i < len(info.fields) {
					v = info.fields[i]
				}
				if fields[f] == nil {
					fields[f] = map[string]*tally{}
				}
				into(fields[f], v, tb)
			}
			continue
		}
		for i, d := range rollup.BuildDims {
			into(dims[d], info.values[i], tb)
		}
		into(combos, info.values.Combo(), tb)
	}
	t.Total = total.counts()
	for d, vs := range dims {
		t.Dims[d] = map[string]Counts{}
		for v, tv := range vs {
			t.Dims[d][v] = tv.counts()
		}
	}
	for v, tv := range combos {
		t.Combos[v] = tv.counts()
	}
	for f, vs := range fields {
		t.Fields[f] = map[string]Counts{}
		for v, tv := range vs {
			t.Fields[f][v] = tv.counts()
		}
	}
	if zone != "" {
		for _, d := range rollup.BuildDims {
			delete(t.Dims, d)
		}
	}
	t.Dims[rollup.DimCountry] = geoCounts(closed.countries, open.countries, m.netsOf, zoneNum)
	for v, c := range geoCounts(closed.points, open.points, m.netsOf, zoneNum) {
		if p, ok := rollup.ParsePoint(v); ok {
			t.Points[p] = c
		}
	}
	return t, nil
}

// into adds a build's tally to the tally of its value k.
func into[K comparable](m map[K]*tally, k K, tb *tally) {
	tv := m[k]
	if tv == nil {
		tv = &tally{}
		m[k] = tv
	}
	tv.c.Reports += tb.c.Reports
	tv.c.Installations += tb.c.Installations
	for _, h := range tb.nets {
		tv.nets.add(h)
	}
}

// unionKeys lists the keys of a and b, each once.
func unionKeys[V any](a map[uint32]uint64, b map[uint32]V) []uint32 {
	out := make([]uint32, 0, len(a))
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// geoCounts adds two sums of countries (or points): reports add,
// installations unite, and nets tells their networks (members.netsOf,
// tableView.netsOf).
// Only the keys of zone number zone count (0: ModSecurity's zones; see
// rollup.ZoneGeoKey), under their value.
func geoCounts(a, b map[string]*rollup.Group, nets func(*roaring.Bitmap) netSet, zone uint32) map[string]Counts {
	out := make(map[string]Counts, len(a)+len(b))
	vals := make(map[string]struct{}, len(a)+len(b))
	for v := range a {
		vals[v] = struct{}{}
	}
	for v := range b {
		vals[v] = struct{}{}
	}
	for v := range vals {
		if z, _, ok := rollup.SplitGeoKey(v); !ok || z != zone {
			continue // another zone's (rollup.ZoneGeoKey)
		}
		set := roaring.New()
		var c Counts
		for _, x := range []*rollup.Group{a[v], b[v]} {
			if x != nil {
				c.Reports += x.Reports
				if x.Installs != nil {
					set.Or(x.Installs)
				}
			}
		}
		c.Installations = set.GetCardinality()
		c.Networks = uint64(len(nets(set)))
		if z, value, ok := rollup.SplitGeoKey(v); ok && z == zone {
			out[value] = c
		}
	}
	return out
}

// buildInfos is builds nums parsed, through the readers' memo; the builds
// it misses are read in one transaction, in number order (a summary of a
// day of 100,000 distinct builds otherwise paid a transaction per build).
// A build that cannot be read is left out.
func (s *Store) buildInfos(nums []uint32) (map[uint32]*buildInfo, error) {
	out := make(map[uint32]*buildInfo, len(nums))
	var missing []uint32
	c := &s.readers
	c.mu.Lock()
	for _, n := range nums {
		if b, ok := c.builds[n]; ok {
			out[n] = b
		} else {
			missing = append(missing, n)
		}
	}
	c.mu.Unlock()
	if len(missing) == 0 {
		return out, nil
	}
	slices.Sort(missing)
	sc := s.Schemas()
	read := make([]*buildInfo, len(missing))
	err := s.view(func(tx *bolt.Tx) error {
		rows := &inOrder{c: tx.Bucket(schema.Builds).Cursor()}
		for i, n := range missing {
			if v := rows.get(n); v != nil {
				read[i], _ = parseBuild(v, sc)
			}
		}
		return nil
	})
	c.mu.Lock()
	for i, b := range read {
		if b != nil {
			out[missing[i]] = b
			remember(&c.builds, missing[i], b)
		}
	}
	c.mu.Unlock()
	return out, err
}

// closedCache keeps the sums of past days, the newest range whatever its
// size, the rest while they hold at most maxClosedBytes. gen counts the
// flushes that changed a past period (imports): it is part of the key, so
// a range of another generation is never served again and ages out.
type closedCache struct {
	gen atomic.Uint64

	once sync.Once // sets c's policy: the zero closedCache works
	c    flight.Cache[closedKey, *part]
}

type closedKey struct {
	d0, d1 uint32
	gen    uint64
}

// Bounds of the ranges kept (the status page asks for a few): entries, and
// bytes (members 24 bytes an installation, and the bitmaps).
const (
	maxClosedEntries = 8
	maxClosedBytes   = 64 << 20
)

func (p *part) size() int {
	n := p.m.size() + int(p.installs.GetSizeInBytes())
	for _, m := range []map[string]*rollup.Group{p.countries, p.points} {
		for _, c := range m {
			n += int(c.Installs.GetSizeInBytes())
		}
	}
	return n
}

// closedPart is the part of days d0..d1 (all before today), computed once
// per generation and range; concurrent callers wait for one computation.
func (s *Store) closedPart(d0, d1 uint32) (*part, error) {
	cc := &s.readers.closed
	cc.once.Do(func() { cc.c.Size = func(p *part) int64 { return int64(p.size()) } })
	k := closedKey{d0, d1, cc.gen.Load()}
	return cc.c.Get(k, flight.Bounds{Entries: maxClosedEntries, Bytes: maxClosedBytes, KeepLarge: true}, func() (*part, error) {
		p := &part{acc: newAcc(), m: &members{}}
		if err := s.readPeriods(p.acc, periods(d0, d1)); err != nil {
			return nil, err
		}
		var err error
		p.m, err = s.members(p.installs)
		return p, err
	})
}

// periods covers days d0..d1 with whole months where it can and days at
// the ends.
func periods(d0, d1 uint32) []rollup.Key {
	var ps []rollup.Key
	for d := d0; d <= d1; {
		t := time.Unix(int64(d)*86400, 0).UTC()
		if t.Day() == 1 {
			next := t.AddDate(0, 1, 0)
			last := rollup.DayOf(next) - 1
			if last <= d1 {
				ps = append(ps, rollup.Key{Kind: rollup.Month, N: rollup.MonthOf(t)})
				d = last + 1
				continue
			}
		}
		ps = append(ps, rollup.Key{Kind: rollup.Day, N: d})
		d++
	}
	return ps
}
