package store

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

const realBeacon = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"

const testZone = "status.modsecurity.org."

// newRecord is a report of beacon received at received; epoch < 0 means
// the name had no epoch label.
func newRecord(t testing.TB, beacon string, epoch int64, received time.Time) *record.Record {
	t.Helper()
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		t.Fatalf("ParseBeacon(%q): %v", beacon, err)
	}
	rep.Epoch, rep.HasEpoch = epoch, epoch >= 0
	if epoch < 0 {
		rep.Epoch = 0
	}
	return &record.Record{
		Received: received,
		Zone:     testZone,
		Resolver: netip.MustParseAddr("192.0.2.53"),
		Report:   rep,
	}
}

// openTemp opens a new store in the test's temporary directory; the test's
// cleanup closes it.
func openTemp(t testing.TB) *Store {
	t.Helper()
	return openPath(t, filepath.Join(t.TempDir(), "se.db"))
}

// openPath opens the store at path, as a (re)start does; the test's cleanup
// closes it (closing twice is harmless).
func openPath(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// all reads every record back.
func all(t testing.TB, s *Store) []*record.Record {
	t.Helper()
	var out []*record.Record
	err := s.Each(time.Unix(1, 0), time.Unix(1<<33-1, 0), 0, func(r *record.Record) error {
		c := *r
		out = append(out, &c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustSubmit(t testing.TB, s *Store, rec *record.Record, want Outcome) {
	t.Helper()
	if o, err := s.Submit(rec); o != want {
		t.Fatalf("Submit = %v (%v), want %v", o, err, want)
	}
}

func TestSubmitDedupe(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	mustSubmit(t, s, newRecord(t, realBeacon, 1795549302, now), Stored)
	mustSubmit(t, s, newRecord(t, realBeacon, 1795549302, now.Add(time.Second)), Duplicate) // a retry
	mustSubmit(t, s, newRecord(t, realBeacon, 1795549303, now), Stored)                     // the next start
	// Without an epoch label: the same beacon within the window is one report.
	mustSubmit(t, s, newRecord(t, realBeacon, -1, now), Stored)
	mustSubmit(t, s, newRecord(t, realBeacon, -1, now.Add(time.Minute)), Duplicate)
	if s.Count() != 3 {
		t.Errorf("Count = %d, want 3", s.Count())
	}
	// A duplicate the recent cache no longer knows still is one: the writer
	// finds its seen key.
	s.seenCache = &recentSeen{}
	mustSubmit(t, s, newRecord(t, realBeacon, 1795549302, now.Add(time.Hour)), Duplicate)
}

func TestRecordRoundTrip(t *testing.T) {
	s := openTemp(t)
	base := time.Unix(1795549302, 123456789)
	recs := []*record.Record{
		newRecord(t, realBeacon, 1795549302, base),
		newRecord(t, realBeacon, 1795549303, base),
		newRecord(t, realBeacon, -1, base.Add(time.Minute)),
		newRecord(t, "2.7.7,Apache/2.4.4 (Unix),1.4.6/1.4.6, 8.32 /8.32 2012-11-30,Lua 5.1/(null),2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8", 1400000000, base.Add(time.Hour)),
	}
	recs[1].ECS = netip.MustParsePrefix("198.51.100.0/24")
	recs[1].Geo = geo.Location{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405, HasPoint: true, Source: "ecs"}
	recs[2].Resolver = netip.MustParseAddr("2001:db8::53")
	recs[2].Zone = "rpc.atomicorp.com."
	recs[3].Geo = geo.Location{Country: "FR", CountryName: "France", Source: "resolver"}
	recs[3].Resolver = netip.Addr{}
	res, err := s.SubmitBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Outcome != Stored {
			t.Fatalf("record %d: %v %v", i, r.Outcome, r.Err)
		}
	}
	got := all(t, s)
	if len(got) != len(recs) {
		t.Fatalf("%d records back, want %d", len(got), len(recs))
	}
	for i, w := range recs {
		g := got[i]
		wantKey := uint64(w.Received.UnixNano())
		if i == 1 {
			wantKey++ // same nanosecond as the first: the later moves up
		}
		if g.Key != wantKey || !g.Received.Equal(time.Unix(0, int64(wantKey))) {
			t.Errorf("record %d: key %d received %v, want %d", i, g.Key, g.Received, wantKey)
		}
		if g.Zone != w.Zone || g.Resolver != w.Resolver || g.ECS != w.ECS || g.Geo != w.Geo || g.Report != w.Report {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestConcurrentSubmitAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	var wg sync.WaitGroup
	now := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// every report twice, from two "resolvers": stored once
			s.Submit(newRecord(t, realBeacon, int64(1700000000+i), now))
			s.Submit(newRecord(t, realBeacon, int64(1700000000+i), now))
		}()
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := len(all(t, s)); got != n || s.Count() != n {
		t.Errorf("after reopen: %d records, Count %d; want %d", got, s.Count(), n)
	}
}

func TestAcquireShares(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	a, err := Acquire(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A second open of a locked bbolt file would block for OpenTimeout and fail.
	b, err := Acquire(filepath.Join(filepath.Dir(path), ".", "se.db"), Options{OpenTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("Acquire of the same file returned two stores")
	}
	Release(a)
	if _, err := b.Submit(newRecord(t, realBeacon, 1, time.Now())); err != nil {
		t.Fatalf("store closed while still referenced: %v", err)
	}
	Release(b)
	if _, err := b.Submit(newRecord(t, realBeacon, 2, time.Now())); err != ErrClosed {
		t.Fatalf("Submit after last Release = %v, want ErrClosed", err)
	}
}

// TestKill9 runs a writer in a child process, kills it with SIGKILL in the
// middle of its work, and checks that every report the child saw acknowledged
// is in the file, that the file needs no repair, and that the rollups the
// next Open replays count every record.
func TestKill9(t *testing.T) {
	if path := os.Getenv("STATUSENGINE_KILL9_CHILD"); path != "" {
		kill9Child(path)
		return
	}
	path := filepath.Join(t.TempDir(), "se.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "STATUSENGINE_KILL9_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for sc.Scan() && len(acked) < 3000 && time.Now().Before(deadline) {
		if e, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			acked[e] = true
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(acked) < 100 {
		t.Fatalf("child acknowledged only %d reports", len(acked))
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	}); err != nil {
		t.Fatalf("file needs repair after kill -9: %v", err)
	}
	db.Close()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	found := map[int64]bool{}
	for _, r := range all(t, s) {
		found[r.Report.Epoch] = true
	}
	lost := 0
	for e := range acked {
		if !found[e] {
			lost++
		}
	}
	tt, err := s.Totals(time.Now().Add(-time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("acknowledged %d, on disk %d after kill -9, lost %d, count %d, rollups %d", len(acked), len(found), lost, s.Count(), tt.Total.Reports)
	if lost > 0 {
		t.Fatalf("%d acknowledged reports lost", lost)
	}
	if int64(len(found)) != s.Count() || tt.Total.Reports != uint64(len(found)) {
		t.Errorf("Count %d and rollups %d disagree with the records on disk %d", s.Count(), tt.Total.Reports, len(found))
	}
}

func kill9Child(path string) {
	s, err := Open(path, Options{AnswerWait: time.Minute})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				e := int64(1700000000 + w*1000000 + i)
				rep, _ := codec.ParseBeacon(fmt.Sprintf("2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", i%256))
				rep.Epoch, rep.HasEpoch = e, true
				rec := &record.Record{Received: time.Now(), Zone: testZone, Resolver: netip.AddrFrom4([4]byte{198, 51, byte(w), 1}), Report: rep}
				if o, err := s.Submit(rec); o == Stored && err == nil {
					mu.Lock()
					fmt.Println(e) // acknowledged: the parent may count on it now
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// TestEachDoesNotBlockWriter holds an Each consumer still while reports
// keep coming: the consumer is never called inside a transaction.
func TestEachDoesNotBlockWriter(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	for i := range 10 {
		s.Submit(newRecord(t, realBeacon, int64(1600000000+i), now.Add(-time.Hour)))
	}
	if err := s.Sync(); err != nil { // Submit may answer before the commit
		t.Fatal(err)
	}
	// The first record is held, whenever the test gets to wait for it (a
	// send that gave up when nobody waited yet let Each finish unheld, and
	// the test waited for good).
	hold, held := make(chan struct{}), make(chan struct{})
	var first sync.Once
	go s.Each(time.Unix(0, 0), now, 0, func(*record.Record) error {
		first.Do(func() {
			held <- struct{}{}
			<-hold
		})
		return nil
	})
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("Each read no record")
	}
	defer close(hold)

	done := make(chan error, 1)
	go func() {
		recs := make([]*record.Record, 20000)
		for i := range recs {
			recs[i] = newRecord(t, realBeacon, int64(1700000000+i), now)
		}
		_, err := s.SubmitBatch(recs)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("commits stalled behind a consumer of Each")
	}
}

// TestSubmitAnswersWhileTheWriterIsStuck: with the writer held inside a
// commit (a stalled disk), Submit answers within AnswerWait with Queued, the
// queue bounds what waits, and every queued report is stored once the
// writer moves again.
func TestSubmitAnswersWhileTheWriterIsStuck(t *testing.T) {
	stuck := make(chan struct{})
	release := make(chan struct{})
	hold := func(CommitInfo) {
		select {
		case stuck <- struct{}{}:
			<-release
		default:
		}
	}
	s, err := Open(filepath.Join(t.TempDir(), "se.db"), Options{AnswerWait: 50 * time.Millisecond, QueueSize: 100, OnCommit: hold})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	go s.Submit(newRecord(t, realBeacon, 1, now))
	<-stuck
	var queued, failed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, _ := s.Submit(newRecord(t, realBeacon, int64(100+i), now))
			mu.Lock()
			defer mu.Unlock()
			switch o {
			case Queued:
				queued++
			case Failed:
				failed++
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(release)
	if queued > 100 || queued+failed != 300 || took > 5*time.Second {
		t.Fatalf("with the writer stuck: %d queued, %d failed of 300 in %v; want at most the queue (100) queued, the rest failed at once", queued, failed, took)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Count() < int64(queued+1) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Count() != int64(queued+1) {
		t.Errorf("Count = %d after the writer moved, want %d (every queued report)", s.Count(), queued+1)
	}
}

func TestCountRange(t *testing.T) {
	s := openTemp(t)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 10 {
		mustSubmit(t, s, newRecord(t, realBeacon, 1795549302+int64(i), base.Add(time.Duration(i)*time.Second)), Stored)
	}
	tests := []struct {
		from, to time.Duration // after base
		limit    int
		want     int
	}{
		{0, 9 * time.Second, 100, 10},
		{0, 9 * time.Second, 4, 4},
		{2 * time.Second, 4*time.Second + time.Millisecond, 100, 3},
		{20 * time.Second, time.Hour, 100, 0},
		{-time.Hour, -time.Minute, 100, 0},
	}
	for _, tc := range tests {
		n, err := s.CountRange(base.Add(tc.from), base.Add(tc.to), tc.limit)
		if err != nil || n != tc.want {
			t.Errorf("CountRange(+%v, +%v, %d) = %d, %v; want %d", tc.from, tc.to, tc.limit, n, err, tc.want)
		}
	}
}

// TestSubmitWithoutDeadlineWaitsForDurability: with NoAnswerDeadline, a
// report submitted while the writer is held inside a commit (a stalled
// disk) is not answered Queued however long the stall lasts: it returns
// Stored once the writer moves, and is then in the file.
func TestSubmitWithoutDeadlineWaitsForDurability(t *testing.T) {
	stuck := make(chan struct{})
	release := make(chan struct{})
	hold := func(CommitInfo) {
		select {
		case stuck <- struct{}{}:
			<-release
		default:
		}
	}
	s, err := Open(filepath.Join(t.TempDir(), "se.db"), Options{AnswerWait: NoAnswerDeadline, OnCommit: hold})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	go s.Submit(newRecord(t, realBeacon, 1, now))
	<-stuck
	type answer struct {
		o   Outcome
		err error
	}
	got := make(chan answer, 2)
	for i, wait := range []time.Duration{NoAnswerDeadline, 20 * time.Millisecond} {
		go func() {
			o, err := s.SubmitWithin(newRecord(t, realBeacon, int64(100+i), now), wait)
			got <- answer{o, err}
		}()
	}
	// The one with a deadline answers Queued while the writer is held;
	// the one without does not answer at all.
	select {
	case a := <-got:
		if a.o != Queued {
			t.Fatalf("with a 20ms wait and the writer held: %v %v, want Queued", a.o, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("with a 20ms wait and the writer held: no answer in 10s")
	}
	select {
	case a := <-got:
		t.Fatalf("without a deadline, answered %v %v while the writer was held", a.o, a.err)
	case <-time.After(500 * time.Millisecond):
	}
	close(release)
	select {
	case a := <-got:
		if a.o != Stored || a.err != nil {
			t.Fatalf("without a deadline: %v %v once the writer moved, want Stored", a.o, a.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("without a deadline: no answer 10s after the writer moved")
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := s.Count(); n != 3 {
		t.Errorf("Count = %d once all three were answered, want 3", n)
	}
}
