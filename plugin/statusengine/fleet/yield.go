package fleet

import (
	"sync"
	"time"
)

// yielder tells the publisher and the consumer when this server's DNS
// path is busy: it stored more than busyRate reports of its own a second,
// measured over the last busyWindow (samples at least busyStep apart, so a
// burst is met within about busyStep of its start: at full speed the feed
// costs the burst most). They then take one batch every busyPause, and the
// rest waits (the outbox on disk, the stream in NATS) until the burst is
// over. The feed costs CPU a report (publishing, taking the report back,
// and the NATS servers' share when they run on the same machine): at full
// speed it took 60% of a burst's rate on two cores (ingest 0.40 of
// without), where yielding, the answers go first and the feed catches up
// after. At the fleet's steady rates (1,000 reports a second a server) it
// never yields.
type yielder struct {
	stored func() uint64 // store.OwnStored

	mu sync.Mutex
	// samples are the counts taken, oldest first: those of the last
	// busyWindow, and the newest before it (the rate since it holds across
	// the pauses of a burst, and is low across a quiet gap).
	samples []yieldSample
	busy    bool
	logged  logEvery
}

// yieldSample is store.OwnStored at a time.
type yieldSample struct {
	at time.Time
	n  uint64
}

// busyAt tells whether the server is busy at now: the rate since the
// oldest sample kept, measured anew at most every busyStep.
func (y *yielder) busyAt(now time.Time) bool {
	y.mu.Lock()
	defer y.mu.Unlock()
	if k := len(y.samples); k > 0 && now.Sub(y.samples[k-1].at) < busyStep {
		return y.busy
	}
	n := y.stored()
	drop := 0
	for drop < len(y.samples)-1 && now.Sub(y.samples[drop+1].at) >= busyWindow {
		drop++ // the one after it is old enough to measure from
	}
	y.samples = append(y.samples[:0], y.samples[drop:]...)
	if len(y.samples) > 0 {
		first := y.samples[0]
		y.busy = float64(n-first.n)/now.Sub(first.at).Seconds() > busyRate
		if now.Sub(first.at) > busyWindow && len(y.samples) == 1 && !y.busy {
			y.samples = y.samples[:0] // after a quiet gap, measure the next burst from now
		}
	}
	y.samples = append(y.samples, yieldSample{now, n})
	if y.busy {
		y.logged.info("jetstream: storing over %d reports a second of its own, the feed yields to the DNS path: a batch every %v each way until the burst is over (reports wait in the outbox)", busyRate, busyPause)
	}
	return y.busy
}

// pause is the wait after a round that took something: busyPause while
// busy, else none.
func (y *yielder) pause() time.Duration {
	if y != nil && y.busyAt(time.Now()) {
		return busyPause
	}
	return 0
}
