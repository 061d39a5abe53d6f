package store

import (
	"testing"
	"time"
)

// The same report twice in one group commit (two resolvers at the same
// instant, or a log with a retry) is stored once.
func TestSubmitBatchDuplicatesInOneCommit(t *testing.T) {
	s := openTemp(t)
	now := time.Unix(1795549302, 0)
	recs := []*Record{
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
		if got[i] != want[i] {
			t.Errorf("record %d: %v, want %v", i, got[i], want[i])
		}
	}
	if s.Count() != 3 {
		t.Errorf("Count = %d, want 3", s.Count())
	}
}
