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

	"github.com/statusengine/statusengine/plugin/statusengine/codec"

	bolt "go.etcd.io/bbolt"
)

const realBeacon = "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,75"

func newRecord(t testing.TB, beacon string, epoch int64, received time.Time) *Record {
	t.Helper()
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		t.Fatalf("ParseBeacon(%q): %v", beacon, err)
	}
	rep.Epoch, rep.HasEpoch = epoch, epoch >= 0
	if epoch < 0 {
		rep.Epoch = 0
	}
	return &Record{
		Received: received,
		Zone:     "status.modsecurity.org.",
		Resolver: netip.MustParseAddr("192.0.2.53"),
		Report:   rep,
	}
}

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "se.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSubmitDedupe(t *testing.T) {
	now := time.Unix(1795549302, 0)
	tests := []struct {
		name  string
		first *Record
		then  *Record
		want  Outcome
	}{
		{"same beacon and epoch", newRecord(t, realBeacon, 1795549302, now), newRecord(t, realBeacon, 1795549302, now.Add(time.Minute)), Duplicate},
		{"same beacon, next start", newRecord(t, realBeacon, 1795549302, now), newRecord(t, realBeacon, 1795549303, now), Stored},
		{"other installation, same epoch", newRecord(t, realBeacon, 1795549302, now), newRecord(t, realBeacon[:len(realBeacon)-2]+"99", 1795549302, now), Stored},
		{"no epoch, inside the window", newRecord(t, realBeacon, -1, now), newRecord(t, realBeacon, -1, now.Add(2*time.Minute)), Duplicate},
		{"no epoch, across a window boundary", newRecord(t, realBeacon, -1, now.Truncate(10*time.Minute).Add(-time.Second)), newRecord(t, realBeacon, -1, now.Truncate(10*time.Minute).Add(time.Second)), Duplicate},
		{"no epoch, much later", newRecord(t, realBeacon, -1, now), newRecord(t, realBeacon, -1, now.Add(time.Hour)), Stored},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTemp(t)
			if got, err := s.Submit(tc.first); got != Stored || err != nil {
				t.Fatalf("first Submit = %v, %v; want Stored", got, err)
			}
			if got, err := s.Submit(tc.then); got != tc.want || err != nil {
				t.Fatalf("second Submit = %v, %v; want %v", got, err, tc.want)
			}
			want := int64(1)
			if tc.want == Stored {
				want = 2
			}
			if s.Count() != want {
				t.Errorf("Count = %d, want %d", s.Count(), want)
			}
		})
	}
}

func TestRangeOrderAndFields(t *testing.T) {
	s := openTemp(t)
	base := time.Unix(1700000000, 0)
	// Submitted out of order, with one duplicate: the range comes out ordered.
	for _, i := range []int{3, 1, 2, 2, 0} {
		rec := newRecord(t, realBeacon, int64(1700000000+i), base.Add(time.Duration(i)*time.Hour))
		rec.ECS = netip.MustParsePrefix("198.51.100.0/24")
		rec.Geo = Geo{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.4, HasPoint: true, Source: "ecs"}
		if _, err := s.Submit(rec); err != nil {
			t.Fatal(err)
		}
	}
	var got []*Record
	s.Range(base.Add(time.Hour), base.Add(2*time.Hour), func(r *Record) bool { got = append(got, r); return true })
	if len(got) != 2 {
		t.Fatalf("Range returned %d records, want 2 (both at +1h and +2h; one of the +2h pair was a duplicate)", len(got))
	}
	if !(got[0].Key < got[1].Key) {
		t.Errorf("keys not ordered: %d, %d", got[0].Key, got[1].Key)
	}
	r := got[0]
	if r.Report.Modsec != "2.9.7" || r.Report.Server != "Apache/2.4.71 (Debian)" || r.Report.ID != "75" || r.Report.Beacon != realBeacon {
		t.Errorf("decoded fields lost: %+v", r.Report)
	}
	if r.Resolver != netip.MustParseAddr("192.0.2.53") || r.ECS != netip.MustParsePrefix("198.51.100.0/24") {
		t.Errorf("addresses lost: %v %v", r.Resolver, r.ECS)
	}
	if r.Geo.City != "Berlin" || r.Geo.Country != "DE" || !r.Geo.HasPoint || r.Geo.Lat < 52.5 || r.Geo.Lat > 52.53 {
		t.Errorf("geo lost: %+v", r.Geo)
	}
	if !r.Report.HasEpoch || r.Zone != "status.modsecurity.org." {
		t.Errorf("epoch or zone lost: %+v", r)
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
			rec := newRecord(t, realBeacon, int64(1700000000+i), now)
			dup := newRecord(t, realBeacon, int64(1700000000+i), now)
			s.Submit(rec)
			s.Submit(dup)
		}()
	}
	wg.Wait()
	if s.Count() != n {
		t.Fatalf("Count = %d, want %d", s.Count(), n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := 0
	s.Range(time.Unix(0, 0), now.Add(time.Hour), func(*Record) bool { got++; return true })
	if got != n || s.Count() != n {
		t.Errorf("after reopen: Range saw %d, Count %d; want %d", got, s.Count(), n)
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
// is in the file, and that the file needs no repair.
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
	s.Range(time.Unix(0, 0), time.Now().Add(time.Hour), func(r *Record) bool { found[r.Report.Epoch] = true; return true })
	lost := 0
	for e := range acked {
		if !found[e] {
			lost++
		}
	}
	t.Logf("acknowledged %d, on disk %d after kill -9, lost %d, count %d", len(acked), len(found), lost, s.Count())
	if lost > 0 {
		t.Fatalf("%d acknowledged reports lost", lost)
	}
	if int64(len(found)) != s.Count() {
		t.Errorf("Count %d disagrees with the records on disk %d", s.Count(), len(found))
	}
}

func kill9Child(path string) {
	s, err := Open(path, Options{})
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
				rep, _ := codec.ParseBeacon(realBeacon)
				rep.Epoch, rep.HasEpoch = e, true
				if o, err := s.Submit(&Record{Received: time.Now(), Report: rep}); o == Stored && err == nil {
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

// TestEachDoesNotBlockWriter holds an Each consumer still while the file has
// to grow: bbolt remaps under a lock that an open read transaction holds, so a
// consumer called inside one would stall every commit behind it.
func TestEachDoesNotBlockWriter(t *testing.T) {
	s := openTemp(t)
	now := time.Now()
	for i := range 10 {
		s.Submit(newRecord(t, realBeacon, int64(1600000000+i), now.Add(-time.Hour)))
	}
	hold, held := make(chan struct{}), make(chan struct{})
	go s.Each(time.Unix(0, 0), now, func(*Record) error {
		select {
		case held <- struct{}{}:
			<-hold
		default:
		}
		return nil
	})
	<-held
	defer close(hold)

	done := make(chan error, 1)
	go func() {
		recs := make([]*Record, 20000) // several MiB: the file grows and bbolt remaps
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
