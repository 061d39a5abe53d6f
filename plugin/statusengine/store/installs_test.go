package store

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// TestInstallsAndChurn checks Installs and Churn against the raw records,
// per day, week and month, by modsec and country.
func TestInstallsAndChurn(t *testing.T) {
	s := openTemp(t)
	r := rand.New(rand.NewPCG(5, 6))
	now := time.Now()
	installs := genInstalls(r, 200)
	submitAll(t, s, genRecords(t, r, installs, 2000, now.Add(-70*24*time.Hour), 70*24*time.Hour))
	from := now.Add(-50 * 24 * time.Hour)
	all := all(t, s)
	for _, step := range []Step{StepDay, StepWeek, StepMonth} {
		bs, err := s.Installs(from, now, step, rollup.DimModsec)
		if err != nil {
			t.Fatal(err)
		}
		churn, err := s.Churn(from, now, step)
		if err != nil {
			t.Fatal(err)
		}
		if len(bs) != len(churn) || len(bs) == 0 {
			t.Fatalf("step %d: %d buckets, %d churn steps", step, len(bs), len(churn))
		}
		var prev map[string]bool
		seen := map[string]bool{}
		for _, rec := range all { // everything before the first step
			if rec.Received.Before(bs[0].Start) {
				seen[record.InstallationKey(rec)] = true
			}
		}
		if first := bs[0].Start; true {
			prev = map[string]bool{}
			p0 := stepStart(first.Add(-time.Second), step)
			for _, rec := range all {
				if !rec.Received.Before(p0) && rec.Received.Before(first) {
					prev[record.InstallationKey(rec)] = true
				}
			}
		}
		for i, b := range bs {
			end := stepNext(b.Start, step)
			cur := map[string]bool{}
			byModsec := map[string]map[string]bool{}
			for _, rec := range all {
				if rec.Received.Before(b.Start) || !rec.Received.Before(end) {
					continue
				}
				k := record.InstallationKey(rec)
				cur[k] = true
				if byModsec[rec.Report.Modsec] == nil {
					byModsec[rec.Report.Modsec] = map[string]bool{}
				}
				byModsec[rec.Report.Modsec][k] = true
			}
			if b.Total.Installations != uint64(len(cur)) {
				t.Errorf("step %d %v: %d installations, want %d", step, b.Start, b.Total.Installations, len(cur))
			}
			for v, set := range byModsec {
				if b.Values[v].Installations != uint64(len(set)) {
					t.Errorf("step %d %v %s: %d, want %d", step, b.Start, v, b.Values[v].Installations, len(set))
				}
			}
			var nw, ret, gone uint64
			for k := range cur {
				switch {
				case !seen[k]:
					nw++
				case !prev[k]:
					ret++
				}
			}
			for k := range prev {
				if !cur[k] {
					gone++
				}
			}
			c := churn[i]
			if c.Active != uint64(len(cur)) || c.New != nw || c.Returning != ret || c.Gone != gone || !c.Start.Equal(b.Start) {
				t.Errorf("step %d %v: churn %+v, want active %d new %d returning %d gone %d", step, b.Start, c, len(cur), nw, ret, gone)
			}
			for k := range cur {
				seen[k] = true
			}
			prev = cur
		}
	}
	fd, ok := s.FirstDay()
	if want := SeriesStart(all[0].Received, StepDay); !ok || !fd.Equal(want) {
		t.Errorf("FirstDay %v %v, want %v", fd, ok, want)
	}
}

// TestPastCachesSeeImports: sums of past days are kept; an import into
// those days makes them stale at once.
func TestPastCachesSeeImports(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	old := now.Add(-10 * 24 * time.Hour)
	submitAll(t, s, []*record.Record{newRecord(t, realBeacon, old.Unix(), old)})
	for range 2 {
		tt, _ := s.Totals(old, now)
		bs, _ := s.Installs(old, old, StepDay, DimTotal)
		if tt.Total.Reports != 1 || bs[0].Total.Installations != 1 {
			t.Fatalf("before: %+v %+v", tt.Total, bs[0].Total)
		}
	}
	later := newRecord(t, beaconOf(7), old.Unix()+5, old.Add(time.Minute))
	submitAll(t, s, []*record.Record{later})
	tt, _ := s.Totals(old, now)
	bs, _ := s.Installs(old, old, StepDay, DimTotal)
	if tt.Total.Reports != 2 || tt.Total.Installations != 2 || bs[0].Total.Installations != 2 {
		t.Errorf("after an import into a past day: %+v %+v", tt.Total, bs[0].Total)
	}
}

func TestSnapshots(t *testing.T) {
	s := openTemp(t)
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	if _, ok, _ := s.Snapshot(day); ok {
		t.Fatal("a snapshot before any was saved")
	}
	kept, err := s.SaveSnapshot(day, []byte(`{"a":1}`))
	if err != nil || string(kept) != `{"a":1}` {
		t.Fatalf("save: %q %v", kept, err)
	}
	// Never changed once kept.
	kept, err = s.SaveSnapshot(day, []byte(`{"a":2}`))
	got, ok, _ := s.Snapshot(day)
	if err != nil || string(kept) != `{"a":1}` || !ok || string(got) != `{"a":1}` {
		t.Errorf("second save: %q %v; kept %q", kept, err, got)
	}
	days, _ := s.SnapshotDays()
	if len(days) != 1 || !days[0].Equal(day) {
		t.Errorf("days %v", days)
	}
	if _, err := s.SaveSnapshot(day.AddDate(0, 0, 1), make([]byte, maxSnapshot+1)); err == nil {
		t.Error("an oversized snapshot was kept")
	}
}

// TestBefore1970: a range before 1970 (the API's default span before to=0)
// is day 0, not a uint32 wrapped to about 4.3 billion days: Churn,
// Installs, Series and Totals of it read a few periods and answer what the
// store holds (nothing), where Churn read every month to the year 11 million.
func TestBefore1970(t *testing.T) {
	if got := rollup.DayOf(time.Unix(-30*86400, 0)); got != 0 {
		t.Errorf("dayOf 30 days before 1970 = %d, want 0", got)
	}
	if got := rollup.HourOf(time.Unix(-1, 0)); got != 0 {
		t.Errorf("hourOf a second before 1970 = %d, want 0", got)
	}
	if n := len(periods(rollup.DayOf(time.Unix(0, 0)), rollup.DayOf(time.Unix(-86400, 0)))); n != 1 {
		t.Errorf("%d periods from day 0 to the day before 1970, want 1", n)
	}
	s := openTemp(t)
	r := rand.New(rand.NewPCG(7, 8))
	now := time.Now()
	submitAll(t, s, genRecords(t, r, genInstalls(r, 20), 100, now.Add(-5*24*time.Hour), 5*24*time.Hour))
	from, to := time.Unix(-30*86400, 0).UTC(), time.Unix(0, 0).UTC()
	for _, step := range []Step{StepDay, StepWeek, StepMonth} {
		churn, err := s.Churn(from, to, step)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range churn {
			if c.Active != 0 || c.New != 0 {
				t.Errorf("step %d: churn before 1970 counts %+v", step, c)
			}
		}
	}
	tot, err := s.Totals(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if tot.Total.Reports != 0 {
		t.Errorf("totals before 1970: %d reports", tot.Total.Reports)
	}
}

// TestStepPathsAgree holds installStep's ways to the same answers: the
// installation table's (countStep, buildStep) and the members' rows
// (memberStep), for every step and dimension; and members the same with
// the table bounded below the installations (the rest read from the
// bucket).
func TestStepPathsAgree(t *testing.T) {
	s := openTemp(t)
	r := rand.New(rand.NewPCG(7, 8))
	now := time.Now()
	submitAll(t, s, genRecords(t, r, genInstalls(r, 300), 3000, now.Add(-40*24*time.Hour), 40*24*time.Hour))
	dims := append([]rollup.Dimension{DimTotal, rollup.DimCountry}, rollup.BuildDims...)
	for _, step := range []Step{StepDay, StepWeek, StepMonth} {
		for t0 := stepStart(now.Add(-41*24*time.Hour), step); !t0.After(now); t0 = stepNext(t0, step) {
			a := newAcc()
			if err := s.readPeriods(a, stepPeriods(t0, step)); err != nil {
				t.Fatal(err)
			}
			for _, d := range dims {
				tableStep := s.buildStep
				if d == DimTotal || d == rollup.DimCountry {
					tableStep = s.countStep
				}
				fast, ok, err := tableStep(InstallStep{Start: t0, Values: map[string]Counts{}}, a, by{dim: d})
				if err != nil || !ok {
					t.Fatalf("step %d %v dim %v: the table's way not taken (%v, %v)", step, t0, d, ok, err)
				}
				slow, err := s.memberStep(InstallStep{Start: t0, Values: map[string]Counts{}}, a, by{dim: d})
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(fast, slow) {
					t.Errorf("step %d %v dim %v: table %+v, rows %+v", step, t0, d, fast, slow)
				}
			}
		}
	}
	a := newAcc()
	if err := s.readPeriods(a, periods(rollup.DayOf(now.Add(-41*24*time.Hour)), rollup.DayOf(now))); err != nil {
		t.Fatal(err)
	}
	want, err := s.members(a.installs)
	if err != nil {
		t.Fatal(err)
	}
	if len(want.nums) < 200 {
		t.Fatalf("%d members", len(want.nums))
	}
	defer func(n uint32) { maxTableRows = n }(maxTableRows)
	maxTableRows = 100
	s.readers.table = installTable{}
	got, err := s.members(a.installs)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("members with the table bounded at 100 rows differ from the table's")
	}
	if v, _ := s.readers.table.view(s, a.installs); len(v.rows) != 100 {
		t.Errorf("table bounded at 100 holds %d rows", len(v.rows))
	}

	// A row missing (a damaged file): a hole, counted by no way.
	maxTableRows = 4 << 20
	if err := s.do(func(tx *bolt.Tx) error { return tx.Bucket(schema.Installations).Delete(numKey(7)) }); err != nil {
		t.Fatal(err)
	}
	s.readers.table = installTable{}
	for _, d := range dims {
		tableStep := s.buildStep
		if d == DimTotal || d == rollup.DimCountry {
			tableStep = s.countStep
		}
		fast, ok, err := tableStep(InstallStep{Values: map[string]Counts{}}, a, by{dim: d})
		if err != nil || !ok {
			t.Fatalf("dim %v with a hole: the table's way not taken (%v, %v)", d, ok, err)
		}
		slow, err := s.memberStep(InstallStep{Values: map[string]Counts{}}, a, by{dim: d})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fast, slow) || fast.Total.Installations != uint64(len(want.nums)-1) {
			t.Errorf("dim %v with row 7 missing: table %+v, rows %+v (want %d installations)", d, fast.Total, slow.Total, len(want.nums)-1)
		}
	}
}

// TestInstallTableGrowsUnderReaders: readers count today's installations
// (which extends the installation table on each new number) while writers
// number new installations; run with -race (.ci/run does). Each reader's
// count never goes down, and the last one is every installation.
func TestInstallTableGrowsUnderReaders(t *testing.T) {
	s := openTemp(t)
	const writers, each = 4, 500
	now := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				rec := newRecord(t, fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", w*each+i), 1795549302, now)
				rec.Resolver = netip.AddrFrom4([4]byte{198, 51, byte(w), byte(i)})
				if o, err := s.Submit(rec); o != Stored {
					t.Errorf("report %d of writer %d: %v, %v", i, w, o, err)
					return
				}
			}
		}()
	}
	count := func(d rollup.Dimension) uint64 {
		steps, err := s.Installs(now, now, StepDay, d)
		if err != nil || len(steps) != 1 {
			t.Errorf("Installs: %d steps, %v", len(steps), err)
			return 0
		}
		return steps[0].Total.Installations // by country or build too: the split takes the table's other paths
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for _, d := range []rollup.Dimension{DimTotal, rollup.DimCountry, rollup.BuildDims[0]} {
		readers.Add(1)
		go func() {
			defer readers.Done()
			last := uint64(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := count(d)
				if n < last {
					t.Errorf("dimension %v: %d installations after %d", d, n, last)
					return
				}
				last = n
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := count(DimTotal); n != writers*each {
		t.Errorf("at the end: %d installations, want %d", n, writers*each)
	}
}
