package store

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

func TestSourceLimit(t *testing.T) {
	s := openTemp(t)
	s.Configure(Policy{LimitPerMinute: 60, LimitBurst: 5})
	now := time.Now()
	tests := []struct {
		src  string
		n    int
		want int // stored
	}{
		{"198.51.100.0/24", 20, 5}, // a burst of 5, then one a second
		{"203.0.113.0/24", 3, 3},   // another network has its own bucket
		{"", 10, 10},               // no source (loopback): never limited
	}
	epoch := int64(1700000000)
	for _, tc := range tests {
		var src netip.Prefix
		if tc.src != "" {
			src = netip.MustParsePrefix(tc.src)
		}
		stored, limited := 0, 0
		for range tc.n {
			epoch++
			rec := newRecord(t, realBeacon, epoch, now)
			rec.LimitNet = src
			switch o, _ := s.Submit(rec); o {
			case Stored:
				stored++
			case Limited:
				limited++
			}
		}
		// The test runs in well under a second, so at most one token refills.
		if stored < tc.want || stored > tc.want+1 || stored+limited != tc.n {
			t.Errorf("%q: stored %d limited %d, want %d stored", tc.src, stored, limited, tc.want)
		}
	}
}

// TestLimiterKeepsBusySources floods the limiter with more distinct sources
// than it keeps buckets for, as spoofed IPv6 /48s would: a source that is
// being limited stays limited (it gets its refill, never a fresh burst),
// memory stays bounded, and new sources are refused only while every bucket
// is still refilling.
func TestLimiterKeepsBusySources(t *testing.T) {
	p := &Policy{LimitPerMinute: 60, LimitBurst: 5} // full again 5 s after emptying
	busy := netip.MustParsePrefix("198.51.100.0/24")
	flood := func(i int) netip.Prefix {
		return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x3f, 0xff, 0, byte(i >> 16), byte(i >> 8), byte(i)}), 48)
	}
	tests := []struct {
		name        string
		before      int           // sources seen before the busy source, at the same time
		after       time.Duration // between the busy source's burst and the flood
		sources     int           // distinct flooding sources
		wantRefused int           // flooding sources refused
		wantBusy    int           // busy source's reports allowed right after the flood
	}{
		// At one instant no bucket has refilled: the sources past the cap are
		// refused and the busy source is still empty.
		{"same instant", 0, 0, maxSources + 1000, 1001, 0},
		// Two seconds on, the buckets seen before (one token spent, full again
		// after a second) are idle and make room; the busy source has
		// refilled 2 tokens, not a fresh burst.
		{"two seconds later", maxSources - 1, 2 * time.Second, maxSources + 1000, 1001, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l sourceLimiter
			t0 := time.Unix(1700000000, 0)
			for i := range tc.before {
				l.allow(p, flood(1<<22+i), t0)
			}
			for i := range 10 {
				if got, want := l.allow(p, busy, t0), i < 5; got != want {
					t.Fatalf("busy source report %d: allowed %v, want %v", i, got, want)
				}
			}
			now := t0.Add(tc.after)
			refused := 0
			for i := range tc.sources {
				if !l.allow(p, flood(i), now) {
					refused++
				}
				if len(l.buckets) > maxSources || len(l.byFull) != len(l.buckets) {
					t.Fatalf("after %d sources: %d buckets, %d in the heap, cap %d", i+1, len(l.buckets), len(l.byFull), maxSources)
				}
			}
			allowed := 0
			for range 10 {
				if l.allow(p, busy, now) {
					allowed++
				}
			}
			if refused != tc.wantRefused || allowed != tc.wantBusy {
				t.Errorf("refused %d flooding sources (want %d); busy source allowed %d of 10 (want %d)", refused, tc.wantRefused, allowed, tc.wantBusy)
			}
		})
	}
}

// TestLimiterEvictsOnlyFullBuckets checks evictIdle against a raised burst:
// a bucket that was full under the old policy is not under the new one.
func TestLimiterEvictsOnlyFullBuckets(t *testing.T) {
	var l sourceLimiter
	t0 := time.Unix(1700000000, 0)
	old := &Policy{LimitPerMinute: 60, LimitBurst: 2}
	l.allow(old, netip.MustParsePrefix("198.51.100.0/24"), t0) // full again at t0+1s
	raised := &Policy{LimitPerMinute: 60, LimitBurst: 100}
	if l.evictIdle(raised, t0.Add(2*time.Second)) {
		t.Error("evicted a bucket that is still refilling under the new burst")
	}
	if !l.evictIdle(raised, t0.Add(100*time.Second)) || len(l.buckets) != 0 {
		t.Error("did not evict a bucket full under the new burst")
	}
}

func TestDuplicatesAreNotCharged(t *testing.T) {
	s := openTemp(t)
	s.Configure(Policy{LimitPerMinute: 1, LimitBurst: 1})
	src := netip.MustParsePrefix("198.51.100.0/24")
	for i := range 5 {
		rec := newRecord(t, realBeacon, 1700000000, time.Now())
		rec.LimitNet = src
		o, _ := s.Submit(rec)
		if want := map[bool]Outcome{true: Stored, false: Duplicate}[i == 0]; o != want {
			t.Fatalf("submit %d: %v, want %v", i, o, want)
		}
	}
}

func fillUntilFull(t *testing.T, s *Store) (stored int, err error) {
	now := time.Now()
	for i := 0; i < 200000 && err == nil; i += 500 {
		recs := make([]*record.Record, 500)
		for j := range recs {
			recs[j] = newRecord(t, realBeacon, int64(1700000000+i+j), now)
		}
		var res []Result
		res, err = s.SubmitBatch(recs)
		for _, r := range res {
			if r.Outcome == Stored {
				stored++
			}
		}
	}
	return stored, err
}

func TestMaxSize(t *testing.T) {
	s := openTemp(t)
	s.Configure(Policy{MaxSize: 1 << 20})
	stored, err := fillUntilFull(t, s)
	if !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatalf("after %d reports: %v, want ErrMaxSizeReached", stored, err)
	}
	t.Logf("1 MiB cap reached after %d reports", stored)
	// Right after, reports fail at once: no commit to wait for.
	start := time.Now()
	o, err := s.Submit(newRecord(t, realBeacon, 1600000000, time.Now()))
	if took := time.Since(start); o != Failed || !errors.Is(err, ErrNoSpace) || took > 50*time.Millisecond {
		t.Fatalf("right after the failure: %v %v in %v, want Failed with ErrNoSpace at once", o, err, took)
	}
	// Lifting the cap lets storing resume without a restart.
	s.Configure(Policy{MaxSize: 64 << 20})
	if o, err := s.Submit(newRecord(t, realBeacon, 1600000001, time.Now())); o != Stored {
		t.Fatalf("after raising max_size: %v %v", o, err)
	}
	if s.Count() != int64(stored+1) || len(all(t, s)) != stored+1 {
		t.Errorf("Count = %d, want %d", s.Count(), stored+1)
	}
}

// TestRetentionKeepsSeenOfKeptRecords: a client clock hours behind sends an
// epoch older than the retention. The sweep deletes de-duplication keys
// with their records only, so a retry of a report still stored stays a
// duplicate, and a report whose record was swept is forgotten.
func TestRetentionKeepsSeenOfKeptRecords(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	skewed := newRecord(t, realBeacon, now.Add(-72*time.Hour).Unix(), now.Add(-time.Hour))
	old := newRecord(t, realBeacon, now.Add(-96*time.Hour).Unix(), now.Add(-50*time.Hour))
	submitAll(t, s, []*record.Record{skewed, old})
	s.Configure(Policy{Retention: 48 * time.Hour, SweepEvery: 10 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for s.Count() != 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Count() != 1 {
		t.Fatalf("sweep left %d records, want the one received an hour ago", s.Count())
	}
	s.seenCache = &recentSeen{} // the writer must decide, from the seen bucket
	if o, _ := s.Submit(newRecord(t, realBeacon, skewed.Report.Epoch, now)); o != Duplicate {
		t.Errorf("retry of a kept report with an old epoch: %v, want Duplicate", o)
	}
	if o, _ := s.Submit(newRecord(t, realBeacon, old.Report.Epoch, now)); o != Stored {
		t.Errorf("replay of a swept report: %v, want Stored (its key went with it)", o)
	}
}

// The same report twice in one group commit (two resolvers at the same
// instant, or a log with a retry) is stored once.
func TestSubmitBatchDuplicatesInOneCommit(t *testing.T) {
	s := openTemp(t)
	now := time.Unix(1795549302, 0)
	recs := []*record.Record{
		newRecord(t, realBeacon, 1795549302, now),
		newRecord(t, realBeacon, 1795549302, now.Add(time.Millisecond)),
		newRecord(t, realBeacon, -1, now),
		newRecord(t, realBeacon, -1, now.Add(time.Second)),
		newRecord(t, realBeacon, 1795549303, now),
	}
	got, err := s.SubmitBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Outcome{Stored, Duplicate, Stored, Duplicate, Stored}
	for i := range want {
		if got[i].Outcome != want[i] {
			t.Errorf("record %d: %v, want %v", i, got[i].Outcome, want[i])
		}
	}
	if s.Count() != 3 {
		t.Errorf("Count = %d, want 3", s.Count())
	}
}
