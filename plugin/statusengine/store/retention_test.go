package store

import (
	"testing"
	"time"
)

// TestRetentionKeepsSeenOfKeptRecords: a client clock hours behind sends an
// epoch older than the retention. The sweep deletes de-duplication entries
// with their records only, so a retry of a report still stored stays a
// duplicate, and a report whose record was swept is forgotten.
func TestRetentionKeepsSeenOfKeptRecords(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	skewed := newRecord(t, realBeacon, now.Add(-72*time.Hour).Unix(), now.Add(-time.Hour))
	old := newRecord(t, realBeacon, now.Add(-96*time.Hour).Unix(), now.Add(-50*time.Hour))
	for _, r := range []*Record{skewed, old} {
		if o, err := s.Submit(r); o != Stored {
			t.Fatalf("submit: %v %v", o, err)
		}
	}
	if n, err := s.sweep(&Policy{Retention: 48 * time.Hour}, now); err != nil || n != 1 {
		t.Fatalf("sweep deleted %d (%v), want the one record received 50h ago", n, err)
	}
	if o, _ := s.Submit(newRecord(t, realBeacon, skewed.Report.Epoch, now)); o != Duplicate {
		t.Errorf("retry of a kept report with an old epoch: %v, want Duplicate", o)
	}
	if o, _ := s.Submit(newRecord(t, realBeacon, old.Report.Epoch, now)); o != Stored {
		t.Errorf("replay of a swept report: %v, want Stored (its entry went with it)", o)
	}
}
