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

func beaconOf(i int) string {
	return fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%040x", i)
}

func rowCount(t *testing.T, path string, bucket []byte) (rows, indexed int) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		rows = tx.Bucket(bucket).Stats().KeyN
		indexed = tx.Bucket(schema.Index).Stats().KeyN
		return nil
	})
	return rows, indexed
}

// TestDictionaryIndex: rows past the index are held in memory and written
// to the index at close; after a reopen every value finds its number (no
// second row for a known installation), after a crash too (the rows past
// the watermark are read back into memory).
func TestDictionaryIndex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	var recs []*record.Record
	for i := range 3000 {
		recs = append(recs, newRecord(t, beaconOf(i), int64(1700000000+i), now))
	}
	submitAll(t, s, recs)
	if n := len(s.w.installs.recent); n != 3000 {
		t.Errorf("%d installations held in memory, want 3000", n)
	}
	s.Close()
	rows, indexed := rowCount(t, path, schema.Installations)
	if rows != 3000 || indexed < 3000 {
		t.Fatalf("after close: %d rows, %d index entries; want every row indexed", rows, indexed)
	}

	// The same installations again (new starts): no new rows.
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.w.installs.recent); n != 0 {
		t.Errorf("after a clean close %d rows are held, want 0", n)
	}
	for i := range recs {
		recs[i] = newRecord(t, beaconOf(i), int64(1800000000+i), now)
	}
	submitAll(t, s, recs)
	// A crash: closed without the writer's close.
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.db.Close()
	if rows, _ := rowCount(t, path, schema.Installations); rows != 3000 {
		t.Fatalf("%d installation rows after the second round, want 3000", rows)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 10 {
		mustSubmit(t, s, newRecord(t, beaconOf(i), int64(1900000000+i), now), Stored)
	}
	mustSubmit(t, s, newRecord(t, beaconOf(5000), 1900000100, now), Stored)
	tt, err := s.Totals(now, now)
	if err != nil || tt.Total.Installations != 3001 || tt.Total.Reports != 6011 {
		t.Errorf("totals %+v %v, want 3001 installations, 6011 reports", tt.Total, err)
	}
}

// TestFailedCommitForgetsRows: a commit that fails (max_size) takes its
// new dictionary rows with it; the numbers they had go to other values
// later, and every record still reads back its own beacon.
func TestFailedCommitForgetsRows(t *testing.T) {
	s := openTemp(t)
	s.Configure(Policy{MaxSize: 1 << 20})
	stored, err := fillUntilFull(t, s)
	if err == nil {
		t.Fatal("never full")
	}
	// New installations fail with the full store.
	time.Sleep(spaceRetry + 50*time.Millisecond)
	var failed []*record.Record
	for i := range 2000 {
		failed = append(failed, newRecord(t, beaconOf(i), int64(1500000000+i), time.Now()))
	}
	s.SubmitBatch(failed)
	s.Configure(Policy{MaxSize: 256 << 20})
	var later []*record.Record
	for i := range 50 {
		later = append(later, newRecord(t, beaconOf(100000+i), int64(1400000000+i), time.Now()))
	}
	submitAll(t, s, later)
	for _, r := range all(t, s) {
		if r.Report.Epoch >= 1400000000 && r.Report.Epoch < 1400000050 && r.Report.Beacon != beaconOf(100000+int(r.Report.Epoch-1400000000)) {
			t.Fatalf("record of epoch %d reads beacon %q", r.Report.Epoch, r.Report.Beacon)
		}
	}
	t.Logf("%d stored before full", stored)
}
