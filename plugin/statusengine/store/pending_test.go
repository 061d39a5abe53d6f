package store

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestPendingRollups: rollups not yet merged are read, survive a crash (a
// copy of the file taken before the merge) and are merged on Close.
func TestPendingRollups(t *testing.T) {
	old := rollupDelay
	rollupDelay = time.Hour
	t.Cleanup(func() { rollupDelay = old })

	now := time.Now().UTC()
	start := now.Truncate(24 * time.Hour)
	if now.Sub(start) > time.Hour {
		start = now.Add(-time.Hour)
	}
	r := rand.New(rand.NewPCG(7, 7))
	recs := genRecords(t, r, genInstalls(r, 300), 3000, start, max(now.Sub(start), time.Second))

	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "se.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	bulkLoad(t, s, recs)
	if p := s.rollupPending.Load(); len(p.batches) == 0 || p.records != len(recs) {
		t.Fatalf("pending: %d batches, %d records; want all %d reports pending", len(p.batches), p.records, len(recs))
	}
	check := func(name string, s *Store) {
		t.Helper()
		got, err := s.Totals(start, now, allDims...)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name, func(t *testing.T) { compareTotals(t, got.Dims, bruteTotals(s, start, now, allDims)) })
		series, err := s.Series(start, now, StepHour, DimTotal)
		if err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, b := range series {
			sum += b.Values[""]
		}
		if sum != uint64(len(recs)) {
			t.Errorf("%s: hourly series sums to %d, want %d", name, sum, len(recs))
		}
	}
	check("pending", s)

	crashed := filepath.Join(dir, "crashed.db")
	if err := s.DB().View(func(tx *bolt.Tx) error { return tx.CopyFile(crashed, 0o600) }); err != nil {
		t.Fatal(err)
	}
	c, err := Open(crashed, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.rollupPending.Load(); len(p.batches) != 0 {
		t.Errorf("replayed store has %d pending batches", len(p.batches))
	}
	check("replayed", c)
	c.Close()

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(filepath.Join(dir, "se.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.DB().View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(unrolledBucket).Cursor().First(); k != nil {
			t.Error("Close left reports unmerged")
		}
		return nil
	})
	check("closed and reopened", s)
}
