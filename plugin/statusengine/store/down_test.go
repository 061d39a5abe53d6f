package store

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// damageMeta writes garbage over both meta pages of the file at path, under
// a store that has it open (bbolt maps it shared: its next look at a meta
// page sees the garbage), as a log written through a symlink to the
// database did.
func damageMeta(t testing.TB, path string) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	junk := make([]byte, 2*os.Getpagesize())
	for i := range junk {
		junk[i] = 0xa5
	}
	if _, err := f.WriteAt(junk, 0); err != nil {
		t.Error(err)
	}
}

// readAll runs n reads at once and returns their errors, failing the test
// when one has not returned within limit.
func readAll(t *testing.T, s *Store, n int, limit time.Duration) []error {
	t.Helper()
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- s.Each(time.Unix(1, 0), time.Unix(1<<33-1, 0), 0, func(*record.Record) error { return nil })
		}()
	}
	var out []error
	deadline := time.After(limit)
	for range n {
		select {
		case err := <-errs:
			out = append(out, err)
		case <-deadline:
			t.Fatalf("%d of %d reads still wait after %v", n-len(out), n, limit)
		}
	}
	return out
}

// closeBounded closes s, failing the test when Close has not returned
// within limit, and checks that the file's lock is released (a reload, a
// new Open or salvage can lock it).
func closeBounded(t *testing.T, s *Store, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(limit):
		t.Fatalf("Close still waits after %v", limit)
	}
	took := time.Since(start)
	f, err := os.Open(s.path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Errorf("the file is still locked after Close: %v", err)
	}
	return took
}

// TestPanicInsideBbolt: the file is damaged under a running store and
// bbolt panics inside the writer's transaction; rolling it back panics
// again (the meta pages are garbage), so bbolt's writer lock stays held,
// and a read that begins then panics holding bbolt's meta lock. Before,
// every later read waited in bolt.DB.Begin and Close in bolt.DB.Close for
// good (a server that could not stop). Now the store goes down, every read
// answers the DamagedError at once, Close returns within seconds and the
// file's lock is released.
func TestPanicInsideBbolt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	recs := logRecords(t, 20, time.Now().Add(-time.Minute))
	submitAll(t, s, recs[:10])
	var once sync.Once
	testHookInTx = func() {
		once.Do(func() {
			damageMeta(t, path)
			panic("test: bbolt read a damaged page")
		})
	}
	defer func() { testHookInTx = nil }()
	if o, err := s.Submit(recs[10]); o != Failed {
		t.Fatalf("submit into the panicking transaction: %v %v, want failed", o, err)
	}
	var damaged *DamagedError
	if !errors.As(s.Down(), &damaged) {
		t.Fatalf("store not down: %v", s.Down())
	}
	start := time.Now()
	for _, err := range readAll(t, s, 20, 5*time.Second) {
		if !errors.As(err, &damaged) {
			t.Errorf("read: %v, want the DamagedError", err)
		}
	}
	t.Logf("20 reads answered in %v", time.Since(start))
	if o, err := s.Submit(recs[11]); o != Failed || !errors.As(err, &damaged) {
		t.Errorf("submit after: %v %v", o, err)
	}
	if err := s.Sync(); !errors.As(err, &damaged) {
		t.Errorf("sync after: %v", err)
	}
	t.Logf("Close took %v", closeBounded(t, s, 10*time.Second))
}

// TestReadersWhenBboltPanics: the meta pages are damaged under readers; the
// first read to begin panics inside bolt.DB.Begin with bbolt's meta lock
// held, and the others wait for that lock. Before, those waited for good.
// Now each answers the DamagedError within seconds, and Close too.
func TestReadersWhenBboltPanics(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	submitAll(t, s, logRecords(t, 20, time.Now().Add(-time.Minute)))
	damageMeta(t, path)
	start := time.Now()
	for _, err := range readAll(t, s, 20, 5*time.Second) {
		var damaged *DamagedError
		if !errors.As(err, &damaged) {
			t.Errorf("read: %v, want the DamagedError", err)
		}
	}
	t.Logf("20 reads answered in %v", time.Since(start))
	if s.Down() == nil {
		t.Fatal("store not down")
	}
	t.Logf("Close took %v", closeBounded(t, s, 10*time.Second))
}
