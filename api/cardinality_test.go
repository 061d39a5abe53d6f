package api

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/flight"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// maxSummary is the most a summary may weigh, however many distinct values
// were sent.
const maxSummary = 256 << 10

// manyValues is a server over a store holding n reports of today, each
// with its own server string made by server(i), all from one resolver
// network, as a flood of made-up beacons would be.
func manyValues(t *testing.T, n int, server func(i int) string) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "se.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := sameDay()
	day := dayStart(now)
	var recs []*record.Record
	for i := range n {
		at := now.Add(-time.Duration(i) * time.Millisecond)
		if at.Before(day) {
			at = day
		}
		recs = append(recs, popRecord(t, fmt.Sprintf("2.9.7,%s,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75", server(i)),
			netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), geo.Location{Country: "DE", CountryName: "Germany", Source: "resolver"},
			at, int64(1e9+i)))
	}
	for len(recs) > 0 {
		k := min(4096, len(recs))
		if _, err := st.SubmitBatch(recs[:k]); err != nil {
			t.Fatal(err)
		}
		recs = recs[k:]
	}
	s := New()
	s.SetStore(st)
	s.SetConfig(Config{Token: testToken})
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return &fixture{srv: s, st: st, http: hs, n: n}
}

// sameDay is now, for a fixture whose reports must all fall on today, as
// the tests count them from today: in the last minute of a UTC day it waits
// for the next one (the tests take seconds; run across midnight, their
// reports would fall on two days and their counts on one), and the fixture
// places no report before the day's start.
func sameDay() time.Time {
	now := time.Now().UTC()
	if next := dayStart(now).Add(24 * time.Hour); next.Sub(now) < time.Minute {
		time.Sleep(next.Sub(now) + time.Second)
		now = time.Now().UTC()
	}
	return now
}

// TestSummaryBoundedCardinality: 100,000 distinct server strings (37 s of
// queries from one source made a 10 MiB summary before) give a summary of
// at most 256 KiB, public or with the token: each breakdown names at most
// TopValues values and folds the rest into other, saying how many.
func TestSummaryBoundedCardinality(t *testing.T) {
	if testing.Short() {
		t.Skip("stores 100,000 reports")
	}
	const n = 100000
	start := time.Now()
	f := manyValues(t, n, func(i int) string { return fmt.Sprintf("Apache/2.4.%d (Debian)", i) })
	t.Logf("%d reports of distinct servers stored in %v", n, time.Since(start).Round(time.Millisecond))
	for _, token := range []string{"", testToken} {
		// The first answer computes the summary; then a page's steady
		// stream of requests, spread over 3 s and over other day spans
		// (that start before the data: the same days), never waits for it
		// again: a slow view is kept four times as long as it took, then
		// served stale while it is computed again (TestSlowViewServedStale).
		var lat []time.Duration
		for k := range 31 {
			from := time.Now().Add(-time.Duration(k%7) * 24 * time.Hour).Unix()
			t0 := time.Now()
			code, _, body := f.fetch(t, fmt.Sprintf("/api/v1/summary?from=%d", from), token)
			if k == 0 {
				t.Logf("token %q: the first summary took %v", token, time.Since(t0).Round(time.Millisecond))
			} else {
				lat = append(lat, time.Since(t0))
			}
			if code != 200 || len(body) > maxSummary {
				t.Fatalf("token %q: %d, %d bytes", token, code, len(body))
			}
			var sum Summary
			if err := json.Unmarshal(body, &sum); err != nil {
				t.Fatal(err)
			}
			rows := sum.Breakdowns["server"]
			other := rows[len(rows)-1]
			shown := len(rows) - 1
			if !other.Other || other.Values != n-shown || len(rows) > TopValues+1 || sum.Installations != n {
				t.Fatalf("token %q: %d server rows, other %+v, %d installations", token, len(rows), other, sum.Installations)
			}
			if token == "" && shown != 0 || token != "" && shown != TopValues {
				t.Errorf("token %q: %d servers named", token, shown)
			}
			if k == 0 {
				t.Logf("token %q: summary of %d bytes, %d servers named, %d in other", token, len(body), shown, other.Values)
			}
			time.Sleep(100 * time.Millisecond)
		}
		slices.Sort(lat)
		t.Logf("token %q: then 30 summaries in 3 s: p50 %v, max %v", token, lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)-1].Round(time.Millisecond))
	}
	for _, path := range []string{"/api/v1/map", "/api/v1/adoption", "/api/v1/timeseries?by=platform", "/api/v1/timeseries?by=platform&count=installations"} {
		if code, _, body := f.fetch(t, path, testToken); code != 200 || len(body) > maxSummary {
			t.Errorf("%s: %d, %d bytes", path, code, len(body))
		}
	}
}

// TestSummaryBoundedText: the longest server strings a beacon may carry
// (400 bytes, imports), all "<" (which JSON writes as six bytes), in every
// breakdown they touch: the summary, with the token, stays under 256 KiB.
func TestSummaryBoundedText(t *testing.T) {
	f := manyValues(t, 2000, func(i int) string {
		return fmt.Sprintf("%04d", i) + strings.Repeat("<", 330)
	})
	code, _, body := f.fetch(t, "/api/v1/summary", testToken)
	if code != 200 || len(body) > maxSummary {
		t.Fatalf("%d, %d bytes", code, len(body))
	}
	var sum Summary
	json.Unmarshal(body, &sum)
	for _, name := range []string{"server", "platform"} {
		rows := sum.Breakdowns[name]
		if len(rows) < 2 || !rows[len(rows)-1].Other || len(rows) > TopValues+1 {
			t.Errorf("%s: %d rows", name, len(rows))
		}
	}
	t.Logf("2000 servers of 334 bytes: summary of %d bytes, %d servers named, %d combinations", len(body), len(sum.Breakdowns["server"])-1, len(sum.TopCombinations))
}

// TestSlowViewServedStale: a view that took long to compute is served as
// it is once stale, while one goroutine computes it again; a cheap one is
// computed when asked for.
func TestSlowViewServedStale(t *testing.T) {
	f := newFixture(t, 300)
	now := time.Now()
	v1, err := f.srv.viewWith(f.st, now, now, DefaultFloor, DefaultFloor)
	if err != nil {
		t.Fatal(err)
	}
	d0, d1 := store.DaySpan(now, now)
	key := viewKey{f.st, d0.Unix(), d1.Unix(), DefaultFloor, DefaultFloor, ""}
	entry := func() (e *flight.Entry[*view]) {
		f.srv.views.c.Inspect(key, func(x *flight.Entry[*view]) { e = x })
		return e
	}
	e := entry()
	age := func(e *flight.Entry[*view], cost, ago time.Duration) {
		f.srv.views.c.Inspect(key, func(*flight.Entry[*view]) { e.Cost, e.At = cost, time.Now().Add(-ago) })
	}
	// Cheap and stale: computed again at once.
	age(e, time.Millisecond, 2*time.Second)
	if v2, _ := f.srv.viewWith(f.st, now, now, DefaultFloor, DefaultFloor); v2 == v1 {
		t.Error("a stale cheap view was served")
	}
	// Slow and within four times its cost: fresh.
	e = entry()
	age(e, time.Second, 3*time.Second)
	v2, _ := f.srv.viewWith(f.st, now, now, DefaultFloor, DefaultFloor)
	if v2 != e.Value {
		t.Error("a slow view was computed again within four times its cost")
	}
	// Slow and stale: served, then replaced in the background.
	age(e, time.Second, 5*time.Second)
	if v3, _ := f.srv.viewWith(f.st, now, now, DefaultFloor, DefaultFloor); v3 != e.Value {
		t.Error("a stale slow view was not served at once")
	}
	for deadline := time.Now().Add(5 * time.Second); entry() == e; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stale view was not computed again")
		}
	}
	if v4, _ := f.srv.viewWith(f.st, now, now, DefaultFloor, DefaultFloor); v4 == e.Value || v4 == nil {
		t.Error("the refreshed view is not served")
	}
	// Too stale (twenty times its cost): computed while the request waits.
	e = entry()
	age(e, time.Second, 21*time.Second)
	if v5, _ := f.srv.viewWith(f.st, now, now, DefaultFloor, DefaultFloor); v5 == e.Value {
		t.Error("a view older than maxStale was served")
	}
}
