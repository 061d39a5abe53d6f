package store

import (
	"errors"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

// TestNoSpaceFailsFast: once a commit fails for space, reports fail at once
// (no commit to wait for) until spaceRetry has passed; then a commit is
// tried again, and a new policy tries at once.
func TestNoSpaceFailsFast(t *testing.T) {
	s := openTemp(t)
	s.Configure(Policy{MaxSize: 1 << 20})
	now := time.Now()
	var err error
	for i := 0; err == nil && i < 200; i++ {
		recs := make([]*Record, 500)
		for j := range recs {
			recs[j] = newRecord(t, realBeacon, int64(1700000000+i*500+j), now)
		}
		_, err = s.SubmitBatch(recs)
	}
	if !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatalf("store not full: %v", err)
	}

	start := time.Now()
	o, err := s.Submit(newRecord(t, realBeacon, 1600000000, now))
	if took := time.Since(start); o != Failed || !errors.Is(err, ErrNoSpace) || !errors.Is(err, berrors.ErrMaxSizeReached) || took > 50*time.Millisecond {
		t.Fatalf("right after the failure: %v %v in %v, want Failed with ErrNoSpace at once", o, err, took)
	}

	// After spaceRetry a commit is tried again (and fails again here).
	time.Sleep(spaceRetry + 100*time.Millisecond)
	recs := make([]*Record, 2000)
	for j := range recs {
		recs[j] = newRecord(t, realBeacon, int64(1600000001+j), now)
	}
	if _, err := s.SubmitBatch(recs); !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatalf("after spaceRetry: %v, want a commit that fails on max_size", err)
	}

	// A bigger max_size makes room: the next report is stored at once.
	s.Configure(Policy{MaxSize: 64 << 20})
	if o, err := s.Submit(newRecord(t, realBeacon, 1500000000, now)); o != Stored {
		t.Fatalf("after raising max_size: %v %v", o, err)
	}
}
