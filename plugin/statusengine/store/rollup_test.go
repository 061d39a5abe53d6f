package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"

	bolt "go.etcd.io/bbolt"
)

// genInstall is one generated installation: fixed versions, one resolver network.
type genInstall struct {
	beacon   string
	resolver netip.Addr
	geo      Geo
}

var genCountries = []Geo{
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
		geo := genCountries[r.IntN(len(genCountries))]
		geo.Source = "resolver"
		out[i] = genInstall{
			beacon:   beacon,
			resolver: netip.AddrFrom4([4]byte{198, 51, byte(r.IntN(200)), 53}),
			geo:      geo,
		}
	}
	return out
}

// genRecords makes n reports of the installations spread over [start, start+span).
func genRecords(t testing.TB, r *rand.Rand, installs []genInstall, n int, start time.Time, span time.Duration) []*Record {
	recs := make([]*Record, n)
	for i := range recs {
		in := installs[r.IntN(len(installs))]
		rep, err := codec.ParseBeacon(in.beacon)
		if err != nil {
			t.Fatal(err)
		}
		rep.Epoch, rep.HasEpoch = int64(1600000000+i), true
		recs[i] = &Record{
			Received: start.Add(time.Duration(r.Int64N(int64(span)))),
			Zone:     "status.modsecurity.org.",
			Resolver: in.resolver,
			Report:   rep,
			Geo:      in.geo,
		}
	}
	return recs
}

// bulkLoad commits recs in large batches straight through the writer's
// commit, as a busy server's group commit would.
func bulkLoad(t testing.TB, s *Store, recs []*Record) {
	t.Helper()
	for len(recs) > 0 {
		n := min(len(recs), 4096)
		batch := make([]*pending, n)
		for i, rec := range recs[:n] {
			batch[i] = &pending{rec: rec, seen: seenKey(rec, s.opts.withDefaults().NoEpochWindow), res: make(chan result, 1)}
		}
		s.commit(batch)
		for _, p := range batch {
			if r := <-p.res; r.err != nil {
				t.Fatal(r.err)
			}
		}
		recs = recs[n:]
	}
}

// bruteTotals computes what Totals must say from the raw records.
func bruteTotals(s *Store, from, to time.Time, dims []Dimension) map[Dimension]map[string]Counts {
	from, to = DaySpan(from, to)
	reports := map[Dimension]map[string]uint64{}
	installs := map[Dimension]map[string]map[string]bool{}
	for _, d := range dims {
		reports[d] = map[string]uint64{}
		installs[d] = map[string]map[string]bool{}
	}
	s.Range(from, to.Add(time.Second-1), func(rec *Record) bool {
		for _, d := range dims {
			v := DimValue(rec, d)
			if d == DimPoint && v == "" {
				continue
			}
			reports[d][v]++
			if d == DimID {
				continue // ids count values only
			}
			if installs[d][v] == nil {
				installs[d][v] = map[string]bool{}
			}
			installs[d][v][InstallationKey(rec)] = true
		}
		return true
	})
	out := map[Dimension]map[string]Counts{}
	for _, d := range dims {
		out[d] = map[string]Counts{}
		for v, n := range reports[d] {
			out[d][v] = Counts{Reports: n, Installations: uint64(len(installs[d][v]))}
		}
	}
	return out
}

func compareTotals(t *testing.T, got, want map[Dimension]map[string]Counts) {
	t.Helper()
	for d, wm := range want {
		if len(got[d]) != len(wm) {
			t.Errorf("dim %c: %d values, want %d", d, len(got[d]), len(wm))
		}
		for v, w := range wm {
			if g := got[d][v]; g != w {
				t.Errorf("dim %c value %q: %+v, want %+v", d, v, g, w)
			}
		}
	}
}

func TestTotalsMatchRawRecords(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := openTemp(t)
	start := time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC)
	recs := genRecords(t, r, genInstalls(r, 300), 20000, start, 120*24*time.Hour)
	bulkLoad(t, s, recs)

	tests := []struct {
		name     string
		from, to time.Time
	}{
		{"everything (whole months inside)", start, start.Add(120 * 24 * time.Hour)},
		{"one day", start.Add(48 * time.Hour), start.Add(48 * time.Hour)},
		{"partial days widen", start.Add(50 * time.Hour), start.Add(100 * time.Hour)},
		{"month boundary", time.Date(2025, 12, 25, 0, 0, 0, 0, time.UTC), time.Date(2026, 2, 3, 0, 0, 0, 0, time.UTC)},
		{"exactly one month", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 31, 23, 0, 0, 0, time.UTC)},
		{"before any report", start.Add(-100 * 24 * time.Hour), start.Add(-50 * 24 * time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Totals(tc.from, tc.to, allDims...)
			if err != nil {
				t.Fatal(err)
			}
			compareTotals(t, got.Dims, bruteTotals(s, tc.from, tc.to, allDims))
		})
	}
}

func TestRebuildMatchesIngest(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := openTemp(t)
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	bulkLoad(t, s, genRecords(t, r, genInstalls(r, 100), 5000, start, 40*24*time.Hour))
	before, err := s.Totals(start, start.Add(40*24*time.Hour), allDims...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RebuildRollups(); err != nil {
		t.Fatal(err)
	}
	after, err := s.Totals(start, start.Add(40*24*time.Hour), allDims...)
	if err != nil {
		t.Fatal(err)
	}
	compareTotals(t, after.Dims, before.Dims)
	if before.Dims[DimTotal][""].Reports != 5000 {
		t.Errorf("total reports %d, want 5000", before.Dims[DimTotal][""].Reports)
	}
}

// TestOpenBuildsMissingRollups opens a database as the first version wrote
// it (no rollup buckets) and expects Open to build them.
func TestOpenBuildsMissingRollups(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	bulkLoad(t, s, genRecords(t, r, genInstalls(r, 50), 3000, start, 10*24*time.Hour))
	want := bruteTotals(s, start, start.Add(10*24*time.Hour), allDims)
	s.Close()

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		tx.DeleteBucket(rollupBucket)
		tx.DeleteBucket(installationBucket)
		return tx.Bucket(metaBucket).Delete(rollupVersionKey)
	})
	db.Close()

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Totals(start, start.Add(10*24*time.Hour), allDims...)
	if err != nil {
		t.Fatal(err)
	}
	compareTotals(t, got.Dims, want)
}

// TestRollupsSurviveRawDeletes deletes raw records (as retention will) and
// expects the totals to stay.
func TestRollupsSurviveRawDeletes(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	s := openTemp(t)
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	bulkLoad(t, s, genRecords(t, r, genInstalls(r, 50), 2000, start, 5*24*time.Hour))
	before, _ := s.Totals(start, start.Add(5*24*time.Hour), allDims...)
	s.DB().Update(func(tx *bolt.Tx) error {
		c := tx.Bucket(reportsBucket).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			c.Delete()
		}
		return nil
	})
	after, _ := s.Totals(start, start.Add(5*24*time.Hour), allDims...)
	compareTotals(t, after.Dims, before.Dims)
	if after.Dims[DimTotal][""].Reports != 2000 {
		t.Errorf("reports after raw deletes %d, want 2000", after.Dims[DimTotal][""].Reports)
	}
}

func TestSeries(t *testing.T) {
	s := openTemp(t)
	base := time.Date(2026, 7, 6, 0, 0, 0, 0, time.UTC) // a Monday
	var recs []*Record
	add := func(at time.Time, beacon string) {
		rec := newRecord(t, beacon, int64(len(recs)+1), at)
		recs = append(recs, rec)
	}
	add(base.Add(10*time.Minute), realBeacon)
	add(base.Add(20*time.Minute), realBeacon)
	add(base.Add(70*time.Minute), "2.9.8,nginx,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,01")
	add(base.Add(8*24*time.Hour), realBeacon)
	bulkLoad(t, s, recs)

	tests := []struct {
		name  string
		step  Step
		dim   Dimension
		from  time.Time
		to    time.Time
		want  []map[string]uint64
		first time.Time
	}{
		{"hours by modsec", StepHour, DimModsec, base.Add(5 * time.Minute), base.Add(2*time.Hour - time.Second),
			[]map[string]uint64{{"2.9.7": 2}, {"2.9.8": 1}}, base},
		{"days by platform", StepDay, DimPlatform, base, base.Add(2*24*time.Hour - time.Second),
			[]map[string]uint64{{"Apache": 2, "nginx": 1}, {}}, base},
		{"weeks total", StepWeek, DimTotal, base.Add(24 * time.Hour), base.Add(13 * 24 * time.Hour),
			[]map[string]uint64{{"": 3}, {"": 1}}, base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Series(tc.from, tc.to, tc.step, tc.dim)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("%d buckets, want %d: %+v", len(got), len(tc.want), got)
			}
			if !got[0].Start.Equal(tc.first) {
				t.Errorf("first bucket at %v, want %v", got[0].Start, tc.first)
			}
			for i, w := range tc.want {
				if fmt.Sprint(got[i].Values) != fmt.Sprint(w) {
					t.Errorf("bucket %d = %v, want %v", i, got[i].Values, w)
				}
			}
		})
	}
}

func TestDimValues(t *testing.T) {
	rep, _ := codec.ParseBeacon("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.3,10.42/,Lua 5.1,2.9.14,75")
	rec := &Record{Report: rep, Geo: Geo{Country: "DE", Lat: 52.5166, Lon: -0.04, HasPoint: true}}
	tests := map[Dimension]string{
		DimModsec: "2.9.7", DimPlatform: "Apache", DimServer: "Apache/2.4.71", DimAPR: "1.7.3", DimPCRE: "10.42",
		DimLua: "Lua 5.1", DimLibxml: "2.9.14", DimCountry: "DE", DimID: "75", DimPoint: "52.5,0.0",
		DimCombo: "2.9.7\x00Apache/2.4.71\x001.7.3\x0010.42\x00Lua 5.1\x002.9.14", DimTotal: "",
	}
	for d, want := range tests {
		if got := DimValue(rec, d); got != want {
			t.Errorf("DimValue(%c) = %q, want %q", d, got, want)
		}
	}
	for in, want := range map[string]string{"Microsoft-IIS/10.0": "IIS", "IIS": "IIS", "nginx": "nginx", "nginx/1.25.3": "nginx", "(null)": "(null)"} {
		if got := Platform(in); got != want {
			t.Errorf("Platform(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkTotalsYear measures a summary's rollup read over a year of
// records, cold: the cache of past days is dropped before each (b.N
// summaries; the load is set up once).
func BenchmarkTotalsYear(b *testing.B) {
	r := rand.New(rand.NewPCG(9, 10))
	s := openTemp(b)
	end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	start := end.Add(-365 * 24 * time.Hour)
	bulkLoad(b, s, genRecords(b, r, genInstalls(r, 5000), 100000, start, 365*24*time.Hour))
	b.ResetTimer()
	for b.Loop() {
		s.rollupCache.closed.gen.Add(1)
		if _, err := s.Totals(start, end, allDims...); err != nil {
			b.Fatal(err)
		}
	}
}

// TestFailedCommitForgetsInstallations rolls back a transaction that
// numbered new installations, then expects the numbers to be handed out
// again and counted once.
func TestFailedCommitForgetsInstallations(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	s := openTemp(t)
	start := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	installs := genInstalls(r, 40)
	bulkLoad(t, s, genRecords(t, r, installs[:20], 200, start, 24*time.Hour))
	lost := genRecords(t, r, installs[20:], 50, start, 24*time.Hour)
	s.rollupMu.Lock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		rb := newRollupBatch(tx, &s.rollupCache)
		for _, rec := range lost {
			if err := rb.add(rec); err != nil {
				return err
			}
		}
		if err := rb.flush(); err != nil {
			return err
		}
		return errors.New("disk on fire")
	})
	s.rollupMu.Unlock()
	if err == nil {
		t.Fatal("the failing transaction committed")
	}
	// Another writer in between, as retention will be.
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(metaBucket).Put([]byte("x"), []byte("y")) })
	bulkLoad(t, s, genRecords(t, r, installs, 300, start, 24*time.Hour))
	got, err := s.Totals(start, start, allDims...)
	if err != nil {
		t.Fatal(err)
	}
	compareTotals(t, got.Dims, bruteTotals(s, start, start, allDims))
	s.Close()
	s2, err := Open(s.Path(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	bulkLoad(t, s2, genRecords(t, r, installs, 100, start, 24*time.Hour))
	got, _ = s2.Totals(start, start, allDims...)
	compareTotals(t, got.Dims, bruteTotals(s2, start, start, allDims))
}

// TestTotalsCacheSeesImports asks for past days, imports more reports into
// them, and expects the next answer to include them; and a range ending
// today to include what arrives today.
func TestTotalsCacheSeesImports(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	s := openTemp(t)
	installs := genInstalls(r, 60)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, -20)
	bulkLoad(t, s, genRecords(t, r, installs, 1000, start, 10*24*time.Hour))
	past := today.Add(-time.Second)
	for round := range 3 {
		got, err := s.Totals(start, past, allDims...)
		if err != nil {
			t.Fatal(err)
		}
		compareTotals(t, got.Dims, bruteTotals(s, start, past, allDims))
		got, _ = s.Totals(start, today.Add(time.Hour), allDims...)
		compareTotals(t, got.Dims, bruteTotals(s, start, today.Add(time.Hour), allDims))
		if t.Failed() {
			t.Fatalf("round %d", round)
		}
		bulkLoad(t, s, genRecords(t, r, installs, 300, start.Add(5*24*time.Hour), 10*24*time.Hour)) // past days
		bulkLoad(t, s, genRecords(t, r, installs, 50, today, time.Hour))                            // today
	}
}
