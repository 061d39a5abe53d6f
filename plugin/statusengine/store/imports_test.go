package store

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// TestImportsListed: a record imported below the newest key is listed for
// peers, in import order, across a reopen; a peer's record and a duplicate
// are not; the cursor pages the list. (A record imported above the newest
// key is not listed either, since peers reach it by the record cursor; no
// case here imports one.)
func TestImportsListed(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	b := func(i int) string {
		return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
	}
	if _, err := s.Submit(newRecord(t, b(0), 1795549302, now)); err != nil {
		t.Fatal(err)
	}
	yesterday := now.Add(-24 * time.Hour)
	var old []*record.Record
	for i := 1; i <= 5; i++ {
		old = append(old, newRecord(t, b(i), 1795549302, yesterday.Add(time.Duration(i)*time.Second)))
	}
	if _, err := s.SubmitBatch(old[:3]); err != nil {
		t.Fatal(err)
	}
	// A peer's record of yesterday: the peers pull it from its origin.
	if _, err := s.SubmitPulled([]*record.Record{newRecord(t, b(9), 1795549302, yesterday)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubmitBatch(append(old[3:], newRecord(t, b(1), 1795549302, yesterday.Add(time.Second)))); err != nil {
		t.Fatal(err)
	}
	recs, last, more, err := s.ImportedAfter(0, 3)
	if err != nil || len(recs) != 3 || !more || last != 3 {
		t.Fatalf("first page: %d records, last %d, more %v, %v; want 3, 3, true", len(recs), last, more, err)
	}
	for i, r := range recs {
		if r.Report.Beacon != b(i+1) || !r.Received.Equal(old[i].Received) {
			t.Errorf("entry %d: %s at %v, want %s at %v", i, r.Report.Beacon, r.Received, b(i+1), old[i].Received)
		}
	}
	path := s.path
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, last, more, err = s.ImportedAfter(last, 3)
	if err != nil || len(recs) != 2 || more || last != 5 || recs[1].Report.Beacon != b(5) {
		t.Fatalf("second page: %d records, last %d, more %v, %v; want 2, 5, false", len(recs), last, more, err)
	}
	if recs, last, more, _ = s.ImportedAfter(5, 3); len(recs) != 0 || last != 5 || more {
		t.Errorf("after the end: %d records, last %d, more %v", len(recs), last, more)
	}
}

// TestImportsListedOnReplay: an imported record that a crash left in the
// write-ahead log only is listed when the log is replayed at open, as it
// was when first applied; a live record replayed beside it is not.
func TestImportsListedOnReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	now := time.Now()
	b := func(i int) string {
		return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
	}
	stored := []*record.Record{newRecord(t, b(0), 1795549302, now)}
	live := newRecord(t, b(1), 1795549302, now.Add(time.Millisecond))
	imported := newRecord(t, b(2), 1795549302, now.Add(-24*time.Hour))
	live.Key, imported.Key = uint64(live.Received.UnixNano()), uint64(imported.Received.UnixNano())
	fileWithLog(t, path, stored, []*record.Record{live, imported})
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Count() != 3 {
		t.Fatalf("%d records after the replay, want 3", s.Count())
	}
	recs, _, _, err := s.ImportedAfter(0, 10)
	if err != nil || len(recs) != 1 || recs[0].Report.Beacon != b(2) {
		t.Errorf("listed after the replay: %d records (%v), want the imported one", len(recs), err)
	}
}

// TestImportsPrunedByRetention: retention deletes an old imported record
// and its entry in bucket imports, so the list never outgrows retention;
// the entry of a kept import stays, with its sequence number.
func TestImportsPrunedByRetention(t *testing.T) {
	s := openTemp(t)
	entries := func() (n int) {
		count := func(tx *bolt.Tx) error {
			n = tx.Bucket(schema.Imports).Stats().KeyN
			return nil
		}
		if err := s.view(count); err != nil {
			t.Fatal(err)
		}
		return n
	}
	now := time.Now()
	b := func(i int) string {
		return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
	}
	var recs []*record.Record
	for i := range 5 {
		recs = append(recs, newRecord(t, b(i), 1795549302, now.Add(-50*time.Hour+time.Duration(i)*time.Second)))
	}
	// A live report first: imports below its key are listed.
	if _, err := s.Submit(newRecord(t, b(10), 1795549302, now)); err != nil {
		t.Fatal(err)
	}
	kept := newRecord(t, b(9), 1795549302, now.Add(-time.Hour))
	if _, err := s.SubmitBatch(append(recs, kept)); err != nil {
		t.Fatal(err)
	}
	if n := entries(); n != 6 {
		t.Fatalf("%d import entries before the sweep, want 6", n)
	}
	s.Configure(Policy{Retention: 48 * time.Hour, SweepEvery: 10 * time.Millisecond})
	deadline := time.Now().Add(10 * time.Second)
	for (s.Count() != 2 || entries() != 1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Count() != 2 || entries() != 1 {
		t.Fatalf("after the sweep: %d records, %d import entries; want 2 and 1", s.Count(), entries())
	}
	got, last, more, err := s.ImportedAfter(0, 10)
	if err != nil || len(got) != 1 || got[0].Report.Beacon != b(9) || last != 6 || more {
		t.Fatalf("ImportedAfter(0) = %d records, last %d, more %v, %v; want the kept one, 6, false", len(got), last, more, err)
	}
}
