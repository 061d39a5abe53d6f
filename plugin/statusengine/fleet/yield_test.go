package fleet

import (
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/natstest"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// TestYielder: busy only past busyRate own reports a second, measured over
// busyWindow or more; between measurements the last verdict holds.
func TestYielder(t *testing.T) {
	var n uint64
	y := &yielder{stored: func() uint64 { return n }}
	t0 := time.Unix(1_800_000_000, 0)
	steps := []struct {
		at   time.Duration // after t0
		n    uint64        // stored by then
		busy bool
	}{
		{0, 0, false},                                   // first look: nothing measured yet
		{100 * time.Millisecond, 5000, false},           // under busyWindow since: the last verdict
		{time.Second, busyRate, false},                  // busyRate a second: not past it
		{2 * time.Second, 2*busyRate + 1, true},         // past it
		{2100 * time.Millisecond, 2*busyRate + 1, true}, // holds until the next measurement
		{4 * time.Second, 3 * busyRate, false},          // 1,999 over 2 s: calm again
	}
	for i, s := range steps {
		n = s.n
		if got := y.busyAt(t0.Add(s.at)); got != s.busy {
			t.Errorf("step %d (%v, %d stored): busy %v, want %v", i, s.at, s.n, got, s.busy)
		}
	}
	var none *yielder
	if none.pause() != 0 {
		t.Errorf("a nil yielder pauses")
	}
}

// TestFeedYields: a burst of a server's own reports (an import of 8,000 a
// second for 2.5 s) makes its feed yield, and once the burst is over every
// report reaches the other server, once.
func TestFeedYields(t *testing.T) {
	ns := natstest.Start(t)
	a, b := openStore(t), openStore(t)
	fa := startFeed(t, a, "ns1", ns.URL())
	startFeed(t, b, "ns2", ns.URL())
	now := time.Now()
	yielded := false
	for i := range 10 {
		recs := make([]*record.Record, 2000)
		for j := range recs {
			recs[j] = newRecord(t, i*2000+j, now)
		}
		if _, err := a.SubmitBatch(recs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
		fa.p.yield.mu.Lock()
		yielded = yielded || fa.p.yield.busy
		fa.p.yield.mu.Unlock()
	}
	if !yielded {
		t.Errorf("8,000 reports a second for 2.5 s: the feed never yielded")
	}
	waitAll(t, 20000, a, b)
}
