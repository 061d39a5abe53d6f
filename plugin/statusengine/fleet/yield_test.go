package fleet

import (
	"testing"
	"time"

	"github.com/statusengine/statusengine/internal/natstest"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// TestYielder: busy only past busyRate own reports a second, measured
// anew at most every busyStep, over the last busyWindow, or since the last
// sample across a pause; a burst after a quiet gap is met after busyStep.
func TestYielder(t *testing.T) {
	var n uint64
	y := &yielder{stored: func() uint64 { return n }}
	t0 := time.Unix(1_800_000_000, 0)
	const ms = time.Millisecond
	steps := []struct {
		at   time.Duration // after t0
		n    uint64        // stored by then
		busy bool
	}{
		{0, 0, false},                                       // first look: nothing measured yet
		{20 * ms, 5000, false},                              // under busyStep since: the last verdict
		{100 * ms, 5000, true},                              // 5,000 in 0.1 s
		{1100 * ms, 5000 + busyRate, false},                 // busyRate over the second since: not past it
		{2100 * ms, 5000 + 3*busyRate + 1, true},            // past it, across a 1-s pause
		{2120 * ms, 5000 + 3*busyRate + 1, true},            // holds until the next measurement
		{4100 * ms, 5000 + 5*busyRate - 1, false},           // 3,999 over 2 s: calm again
		{60 * time.Second, 5000 + 5*busyRate, false},        // after a quiet minute: measured from now on
		{60*time.Second + 60*ms, 5000 + 6*busyRate, true},   // a burst met 60 ms into it
		{60*time.Second + 400*ms, 5000 + 6*busyRate, false}, // over: nothing in the last 340 ms
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
