package store

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// genInstall is one generated installation: fixed versions, one resolver network.
type genInstall struct {
	beacon   string
	resolver netip.Addr
	geo      geo.Location
}

var genCountries = []geo.Location{
	{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.40, HasPoint: true},
	{Country: "US", CountryName: "United States", City: "Ashburn", Lat: 39.04, Lon: -77.49, HasPoint: true},
	{Country: "BR", CountryName: "Brazil"},
	{},
}

func genInstalls(r *rand.Rand, n int) []genInstall {
	modsecs := []string{"2.9.3", "2.9.7", "2.9.8", "2.9.10"}
	servers := []string{"Apache/2.4.71 (Debian)", "Apache/2.4.62", "nginx", "IIS"}
	out := make([]genInstall, n)
	for i := range out {
		beacon := fmt.Sprintf("%s,%s,1.7.2/1.7.%d,10.42/,Lua 5.1,2.9.14,%02x",
			modsecs[r.IntN(len(modsecs))], servers[r.IntN(len(servers))], r.IntN(3), r.IntN(256))
		g := genCountries[r.IntN(len(genCountries))]
		g.Source = "resolver"
		out[i] = genInstall{beacon: beacon, resolver: netip.AddrFrom4([4]byte{198, 51, byte(r.IntN(200)), 53}), geo: g}
	}
	return out
}

// genRecords makes n reports of the installations spread over [start, start+span).
func genRecords(t testing.TB, r *rand.Rand, installs []genInstall, n int, start time.Time, span time.Duration) []*record.Record {
	recs := make([]*record.Record, n)
	for i := range recs {
		in := installs[r.IntN(len(installs))]
		rep, err := codec.ParseBeacon(in.beacon)
		if err != nil {
			t.Fatal(err)
		}
		rep.Epoch, rep.HasEpoch = int64(1600000000+i), true
		recs[i] = &record.Record{
			Received: start.Add(time.Duration(r.Int64N(int64(span)))),
			Zone:     testZone,
			Resolver: in.resolver,
			Report:   rep,
			Geo:      in.geo,
		}
	}
	return recs
}

func submitAll(t testing.TB, s *Store, recs []*record.Record) {
	t.Helper()
	for len(recs) > 0 {
		n := min(len(recs), 4096)
		res, err := s.SubmitBatch(recs[:n])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Outcome != Stored {
				t.Fatalf("outcome %v: %v", r.Outcome, r.Err)
			}
		}
		recs = recs[n:]
	}
}

// bruteTotals computes what Totals must say from the raw records.
func bruteTotals(t testing.TB, s *Store, from, to time.Time) *Totals {
	from, to = DaySpan(from, to)
	dims := append([]rollup.Dimension{rollup.DimCountry}, rollup.BuildDims...)
	type bt struct {
		reports  uint64
		installs map[string]bool
		nets     map[string]bool
	}
	count := func(m map[any]*bt, k any, inst, net string) {
		c := m[k]
		if c == nil {
			c = &bt{installs: map[string]bool{}, nets: map[string]bool{}}
			m[k] = c
		}
		c.reports++
		c.installs[inst] = true
		c.nets[net] = true
	}
	counts := func(c *bt) Counts {
		return Counts{c.reports, uint64(len(c.installs)), uint64(min(len(c.nets), NetworkCap))}
	}
	byDim := map[rollup.Dimension]map[any]*bt{}
	for _, d := range dims {
		byDim[d] = map[any]*bt{}
	}
	combos, points := map[any]*bt{}, map[any]*bt{}
	all, allNets := map[string]bool{}, map[string]bool{}
	ids := map[string]bool{}
	var total uint64
	err := s.Each(from, to.Add(time.Second-1), 0, func(rec *record.Record) error {
		total++
		inst, net := record.InstallationKey(rec), record.ResolverNetwork(rec).String() // one resolver per generated installation
		all[inst], allNets[net] = true, true
		ids[rec.Report.ID] = true
		for _, d := range dims {
			count(byDim[d], rollup.DimValue(rec, d), inst, net)
		}
		count(combos, rollup.ComboOf(rec), inst, net)
		if p, ok := rollup.PointOf(&rec.Geo); ok {
			count(points, p, inst, net)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	out := &Totals{From: from, To: to, Total: Counts{total, uint64(len(all)), uint64(min(len(allNets), NetworkCap))}, DistinctIDs: uint64(len(ids)),
		Dims: map[rollup.Dimension]map[string]Counts{}, Combos: map[rollup.Combo]Counts{}, Points: map[rollup.Point]Counts{}}
	for _, d := range dims {
		out.Dims[d] = map[string]Counts{}
		for v, c := range byDim[d] {
			out.Dims[d][v.(string)] = counts(c)
		}
	}
	for v, c := range combos {
		out.Combos[v.(rollup.Combo)] = counts(c)
	}
	for v, c := range points {
		out.Points[v.(rollup.Point)] = counts(c)
	}
	return out
}

func compareTotals(t *testing.T, got, want *Totals) {
	t.Helper()
	if got.Total != want.Total || got.DistinctIDs != want.DistinctIDs {
		t.Errorf("total %+v ids %d, want %+v ids %d", got.Total, got.DistinctIDs, want.Total, want.DistinctIDs)
	}
	for d, wm := range want.Dims {
		if len(got.Dims[d]) != len(wm) {
			t.Errorf("dim %c: %d values, want %d", d, len(got.Dims[d]), len(wm))
		}
		for v, w := range wm {
			if g := got.Dims[d][v]; g != w {
				t.Errorf("dim %c value %q: %+v, want %+v", d, v, g, w)
			}
		}
	}
	if !maps.Equal(got.Combos, want.Combos) || !maps.Equal(got.Points, want.Points) {
		t.Errorf("combos %v points %v\nwant %v %v", got.Combos, got.Points, want.Combos, want.Points)
	}
}

// TestTotalsMatchRawRecords checks the rollups against a brute-force count
// over ranges that cover whole months, partial months, today and nothing;
// then again after a reopen (flushed rollups) and with a fresh cache.
func TestTotalsMatchRawRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	installs := genInstalls(r, 300)
	submitAll(t, s, genRecords(t, r, installs, 3000, now.Add(-90*24*time.Hour), 90*24*time.Hour))
	// Today's, live through Submit, as a server stores them.
	for _, rec := range genRecords(t, r, installs, 200, now.Add(-time.Minute), time.Minute) {
		rec.Report.Epoch += 1e6
		mustSubmit(t, s, rec, Stored)
	}
	ranges := [][2]time.Time{
		{now.Add(-100 * 24 * time.Hour), now},
		{now.Add(-45 * 24 * time.Hour), now.Add(-20 * 24 * time.Hour)},
		{now.Add(-24 * time.Hour), now},
		{now, now},
		{now.Add(-200 * 24 * time.Hour), now.Add(-150 * 24 * time.Hour)},
	}
	check := func(s *Store) {
		for _, rg := range ranges {
			got, err := s.Totals(rg[0], rg[1])
			if err != nil {
				t.Fatal(err)
			}
			compareTotals(t, got, bruteTotals(t, s, rg[0], rg[1]))
		}
	}
	check(s)
	check(s) // again, from the caches
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

// TestRollupsSurviveRetention: retention deletes records, summaries keep them.
func TestRollupsSurviveRetention(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	for i, age := range []time.Duration{72 * time.Hour, 49 * time.Hour, 47 * time.Hour, time.Hour} {
		rec := newRecord(t, realBeacon, now.Add(-age).Unix()+int64(i), now.Add(-age))
		if res, err := s.SubmitBatch([]*record.Record{rec}); err != nil || res[0].Outcome != Stored {
			t.Fatal(res, err)
		}
	}
	total := func() uint64 {
		tt, err := s.Totals(now.Add(-100*time.Hour), now)
		if err != nil {
			t.Fatal(err)
		}
		return tt.Total.Reports
	}
	before := total()
	s.Configure(Policy{Retention: 48 * time.Hour, SweepEvery: 10 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for s.Count() != 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Count() != 2 || len(all(t, s)) != 2 {
		t.Errorf("after the sweep: Count %d, %d records; want 2", s.Count(), len(all(t, s)))
	}
	if after := total(); after != before || before != 4 {
		t.Errorf("rollups changed by the sweep: %d reports before, %d after, want 4", before, after)
	}
}

// TestReplayAfterCrash: rollups not flushed when the process died are
// counted again at the next open from the records after the watermark.
func TestReplayAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 50 {
		mustSubmit(t, s, newRecord(t, realBeacon, int64(1700000000+i), now), Stored)
	}
	// A crash: the file is closed without the writer's last flush.
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	if s.live.Unflushed == 0 {
		t.Fatal("nothing pending: the test does not test a replay")
	}
	s.db.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tt, err := s.Totals(now, now)
	if err != nil || tt.Total.Reports != 50 || tt.Total.Installations != 1 {
		t.Fatalf("after the crash: %+v %v, want 50 reports of 1 installation", tt, err)
	}
}

// TestUnreadableRollupIsRebuilt: a stored rollup value that cannot be read
// (a hostile or damaged value in a sound file) never stops the store: it
// opens, counts on, and rebuilds the rollups from the records.
func TestUnreadableRollupIsRebuilt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := range 30 {
		mustSubmit(t, s, newRecord(t, realBeacon, int64(1700000000+i), now), Stored)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Rollups)
		c := b.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			if err := b.Put(append([]byte(nil), k...), []byte{rollup.PeriodVersion, 0xff, 0xff, 0xff, 0xff, 0x0f}); err != nil {
				return err
			}
		}
		return nil
	})
	db.Close()

	var mu sync.Mutex
	var events []string
	s, err = Open(path, Options{OnEvent: func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatalf("open with unreadable rollups: %v", err)
	}
	defer s.Close()
	mustSubmit(t, s, newRecord(t, realBeacon, 1800000000, now), Stored)
	deadline := time.Now().Add(10 * time.Second)
	for {
		tt, err := s.Totals(now, now)
		if err == nil && tt.Total.Reports == 31 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rollups not rebuilt: %+v %v", tt, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("events: %q", events)
}

func TestSeries(t *testing.T) {
	s := openTemp(t)
	now := awayFromMidnight(time.Now())
	day := time.Unix(int64(rollup.DayOf(now))*86400, 0)
	beacons := []string{realBeacon, "2.9.8,nginx,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,ab"}
	var recs []*record.Record
	for i := range 10 {
		rec := newRecord(t, beacons[i%2], int64(1700000000+i), day.Add(-time.Duration(i)*24*time.Hour+time.Hour))
		recs = append(recs, rec)
	}
	submitAll(t, s, recs)
	bs, err := s.Series(day.Add(-9*24*time.Hour), now, StepDay, rollup.DimModsec)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != 10 {
		t.Fatalf("%d buckets, want 10", len(bs))
	}
	for i, b := range bs {
		v := "2.9.7"
		if (9-i)%2 == 1 {
			v = "2.9.8"
		}
		if b.Values[v] != 1 || len(b.Values) != 1 {
			t.Errorf("bucket %d (%v): %v, want %s: 1", i, b.Start, b.Values, v)
		}
	}
	hs, err := s.Series(day.Add(-time.Hour), day.Add(3*time.Hour), StepHour, rollup.DimPlatform)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 5 || hs[2].Values["Apache"] != 1 {
		t.Errorf("hours: %+v", hs)
	}
}

// TestNetworksAreResolverNetworks: the networks a group counts (for the
// public floor) are those of the resolvers its installations first reported
// through, never their ECS subnets, which the sender chooses. A file
// written before the resolvers bucket counts the source networks.
func TestNetworksAreResolverNetworks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	// Five made-up installations, each with its own ECS /24, through one
	// resolver; then one through another resolver.
	for i := range 6 {
		rec := newRecord(t, fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", i), 1795549302, now)
		rec.ECS = netip.MustParsePrefix(fmt.Sprintf("45.%d.7.0/24", i))
		if i == 5 {
			rec.Resolver = netip.MustParseAddr("198.51.100.53")
		}
		mustSubmit(t, s, rec, Stored)
	}
	networks := func(s *Store) (uint64, uint64) {
		tot, err := s.Totals(now, now)
		if err != nil {
			t.Fatal(err)
		}
		c := tot.Dims[rollup.DimServer]["Apache/2.4.71"]
		return c.Installations, c.Networks
	}
	if n, nets := networks(s); n != 6 || nets != 2 {
		t.Errorf("6 installations through 2 resolver networks with 6 ECS subnets: counted %d installations, %d networks", n, nets)
	}
	s.Close()

	// The same file as an older statusengine left it: no resolvers bucket.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(schema.Resolvers) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if r, err := Check(path); err != nil || !r.OK() {
		t.Fatalf("Check of a file without the resolvers bucket: %v %v", r.Problems, err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, nets := networks(s); n != 6 || nets != 6 {
		t.Errorf("without the resolvers bucket: counted %d installations, %d networks; want 6 and the 6 ECS subnets", n, nets)
	}
}

// awayFromMidnight is now, or 23:00 UTC of the day before when now is in
// the first two hours of a UTC day: tests that place reports an hour from
// now and count them in one day failed from 00:00 to 01:00 UTC.
func awayFromMidnight(now time.Time) time.Time {
	day := now.UTC().Truncate(24 * time.Hour)
	if now.Sub(day) < 2*time.Hour {
		return day.Add(-time.Hour)
	}
	return now
}
