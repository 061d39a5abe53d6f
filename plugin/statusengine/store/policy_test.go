package store

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
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
			rec.Source = src
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

func TestDuplicatesAreNotCharged(t *testing.T) {
	s := openTemp(t)
	s.Configure(Policy{LimitPerMinute: 1, LimitBurst: 1})
	src := netip.MustParsePrefix("198.51.100.0/24")
	for i := range 5 {
		rec := newRecord(t, realBeacon, 1700000000, time.Now())
		rec.Source = src
		o, _ := s.Submit(rec)
		if want := map[bool]Outcome{true: Stored, false: Duplicate}[i == 0]; o != want {
			t.Fatalf("submit %d: %v, want %v", i, o, want)
		}
	}
}

func TestRetentionSweep(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	for i, age := range []time.Duration{72 * time.Hour, 49 * time.Hour, 47 * time.Hour, time.Hour} {
		rec := newRecord(t, realBeacon, now.Add(-age).Unix()+int64(i), now.Add(-age))
		if _, err := s.Submit(rec); err != nil {
			t.Fatal(err)
		}
	}
	total := func() uint64 {
		tt, err := s.Totals(now.Add(-100*time.Hour), now, DimTotal)
		if err != nil {
			t.Fatal(err)
		}
		return tt.Dims[DimTotal][""].Reports
	}
	before := total()
	n, err := s.sweep(&Policy{Retention: 48 * time.Hour}, now)
	if err != nil || n != 2 {
		t.Fatalf("sweep deleted %d (%v), want 2", n, err)
	}
	if s.Count() != 2 {
		t.Errorf("Count = %d after sweep, want 2", s.Count())
	}
	left := 0
	s.Range(time.Unix(0, 0), now, func(*Record) bool { left++; return true })
	if left != 2 {
		t.Errorf("%d records left, want 2", left)
	}
	if after := total(); after != before || before != 4 {
		t.Errorf("rollups changed by the sweep: %d reports before, %d after, want 4", before, after)
	}
	if n, _ := s.sweep(&Policy{Retention: 48 * time.Hour}, now); n != 0 {
		t.Errorf("second sweep deleted %d", n)
	}
}

func TestMaxSize(t *testing.T) {
	s := openTemp(t)
	s.Configure(Policy{MaxSize: 1 << 20})
	now := time.Now()
	var failed error
	stored := 0
	for i := 0; i < 100000 && failed == nil; i += 500 {
		recs := make([]*Record, 500)
		for j := range recs {
			recs[j] = newRecord(t, realBeacon, int64(1700000000+i+j), now)
		}
		outcomes, err := s.SubmitBatch(recs)
		for _, o := range outcomes {
			if o == Stored {
				stored++
			}
		}
		failed = err
	}
	if !errors.Is(failed, berrors.ErrMaxSizeReached) {
		t.Fatalf("after %d reports: %v, want ErrMaxSizeReached", stored, failed)
	}
	t.Logf("1 MiB cap reached after %d reports", stored)
	// Lifting the cap lets storing resume without a restart.
	s.Configure(Policy{MaxSize: 64 << 20})
	if o, err := s.Submit(newRecord(t, realBeacon, 1600000000, now)); o != Stored {
		t.Fatalf("after raising max_size: %v %v", o, err)
	}
	if s.Count() != int64(stored+1) {
		t.Errorf("Count = %d, want %d", s.Count(), stored+1)
	}
}
