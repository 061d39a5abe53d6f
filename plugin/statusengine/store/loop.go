package store

import (
	"time"
)

// The writer goroutine: it takes reports from the queue in batches and
// commits each batch in one transaction (group commit), and between batches
// it runs the retention sweep, flushes the live rollups, writes the
// dictionaries' index and steps a rollup rebuild.
func (s *Store) writer() {
	w := s.w
	defer close(s.done)
	batch := make([]*pending, 0, s.opts.MaxBatch)
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastBusy := time.Now()
	quiet := time.NewTimer(time.Hour)
	defer quiet.Stop()
	for {
		var busy, settle <-chan time.Time
		if w.rebuild != nil || w.rebuildNeeded != "" {
			busy = closedTimeChan // keep stepping the rebuild while nothing is queued
		}
		if w.held != nil {
			quiet.Reset(quietCommit)
			settle = quiet.C
		}
		select {
		case p := <-s.queue:
			batch = append(batch[:0], p)
		case <-settle:
			w.settle()
			continue
		case <-s.policyChanged:
			if p := s.policy.Load(); p != nil {
				sweep.Reset(p.SweepEvery)
			}
			continue
		case <-sweep.C:
			w.sweep(time.Now())
			continue
		case now := <-tick.C:
			w.idle(now, now.Sub(lastBusy) > idleAfter)
			continue
		case <-busy:
			w.stepRebuild(time.Now())
			continue
		case j := <-s.jobs:
			if j.fill == nil { // Sync
				j.done <- w.sync()
				continue
			}
			_, err := w.transact(time.Now(), false, false, indexPerCommit, func(t *txn) {
				t.err = j.fill(t.tx)
				t.changed = true
			})
			j.done <- err
			continue
		case <-s.quit:
			w.close(batch)
			return
		}
	fill:
		for len(batch) < s.opts.MaxBatch {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		batch = w.linger(batch)
		w.commit(batch)
		lastBusy = time.Now()
	}
}

// idleAfter is how long the writer must have had no reports before it
// writes a dictionary's rows into the index without being pressed to.
const idleAfter = 2 * time.Second

// indexPerIdle bounds the index entries of one transaction while idle.
const indexPerIdle = 1 << 16

var closedTimeChan = func() chan time.Time { c := make(chan time.Time); close(c); return c }()

// idle is the writer's work while reports are few: a due flush of the live
// rollups, and the dictionaries' index once nothing came for idleAfter.
func (w *writer) idle(now time.Time, idle bool) {
	if w.s.Down() != nil {
		return
	}
	if w.unstored() > 0 && w.held == nil && w.s.noSpace() == nil {
		w.sync() // logged records a failed commit rolled back
	}
	if w.s.live.Unflushed > 0 && w.s.live.Due(now) {
		w.transact(now, false, true, indexPerCommit, nil)
	}
	if !idle {
		return
	}
	// A bounded burst of index transactions, then back to the queue.
	deadline := now.Add(200 * time.Millisecond)
	for w.indexing(true) && time.Now().Before(deadline) && len(w.s.queue) == 0 {
		if _, err := w.transact(time.Now(), true, false, indexPerIdle, nil); err != nil {
			return
		}
	}
}

// indexing tells whether a dictionary has index work (a round under way,
// or, when idle, rows to index).
func (w *writer) indexing(idle bool) bool {
	for _, d := range w.dicts() {
		if d.flushing != nil || d.wantsIndexing(idle) {
			return true
		}
	}
	return false
}

// close commits what is queued, flushes the live rollups and indexes every
// dictionary row, so that the next Open replays and loads nothing.
func (w *writer) close(batch []*pending) {
	s := w.s
	for {
		batch = batch[:0]
	drain:
		for len(batch) < s.opts.MaxBatch {
			select {
			case p := <-s.queue:
				batch = append(batch, p)
			default:
				break drain
			}
		}
		if len(batch) == 0 {
			break
		}
		w.commit(batch)
	}
	if s.Down() != nil {
		w.drop()
		return
	}
	if _, err := w.transact(time.Now(), false, true, indexPerCommit, nil); err != nil {
		return
	}
	for w.indexing(true) {
		if _, err := w.transact(time.Now(), true, false, indexPerIdle, nil); err != nil {
			return
		}
	}
}

// A log append costs one fdatasync, whose kernel work (an ext4 journal
// commit) is about the same for 20 reports as for 200. While reports keep
// coming (the last batch was not small) a small batch waits up to
// lingerWait for company; a lone report is stored at once. Measured with
// dnsperf -q 500 against stock CoreDNS (3 rounds each): without lingering
// 0.98-1.03 of stock's rate, 11,500 fdatasyncs a second of 27 reports; 200
// us for 64: 1.08-1.11; 500 us for 128: 1.12-1.14; 1 ms for 256: 0.97-1.18.
const (
	lingerBatch = 128
	lingerBusy  = 16
	lingerWait  = 500 * time.Microsecond
)

func (w *writer) linger(batch []*pending) []*pending {
	s := w.s
	last := w.lastBatch
	defer func() { w.lastBatch = len(batch) }()
	if len(batch) >= lingerBatch || last < lingerBusy {
		return batch
	}
	t := time.NewTimer(lingerWait)
	defer t.Stop()
wait:
	for len(batch) < lingerBatch {
		select {
		case p := <-s.queue:
			batch = append(batch, p)
		case <-t.C:
			break wait
		}
	}
	// Whatever else is queued goes along, as without lingering.
	for len(batch) < s.opts.MaxBatch {
		select {
		case p := <-s.queue:
			batch = append(batch, p)
		default:
			return batch
		}
	}
	return batch
}
