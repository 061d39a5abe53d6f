package fleet

import (
	"sync"
	"time"
)

// yielder tells the publisher and the consumer when this server's DNS
// path is busy: it stored more than busyRate reports of its own a second
// over the last busyWindow or more. They then take one batch every busyPause, and the
// rest waits (the outbox on disk, the stream in NATS) until the burst is
// over. The feed costs CPU a report (publishing, taking the report back,
// and the NATS servers' share when they run on the same machine): at full
// speed it took 60% of a burst's rate on two cores (ingest 0.40 of
// without), where yielding, the answers go first and the feed catches up
// after. At the fleet's steady rates (1,000 reports a second a server) it
// never yields.
type yielder struct {
	stored func() uint64 // store.OwnStored

	mu     sync.Mutex
	last   uint64
	at     time.Time
	busy   bool
	logged logEvery
}

// busyAt tells whether the server is busy at now, measured over the last
// busyWindow or more (short, so that a burst is met within a fraction of
// a second).
func (y *yielder) busyAt(now time.Time) bool {
	y.mu.Lock()
	defer y.mu.Unlock()
	if d := now.Sub(y.at); y.at.IsZero() || d >= busyWindow {
		n := y.stored()
		if !y.at.IsZero() {
			y.busy = float64(n-y.last)/d.Seconds() > busyRate
		}
		y.last, y.at = n, now
		if y.busy {
			y.logged.info("jetstream: storing over %d reports a second of its own, the feed yields to the DNS path: a batch every %v each way until the burst is over (reports wait in the outbox)", busyRate, busyPause)
		}
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
