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
	for {
		var busy <-chan time.Time
		if w.rebuild != nil || w.rebuildNeeded != "" {
			busy = closedTimeChan // keep stepping the rebuild while nothing is queued
		}
		select {
		case p := <-s.queue:
			batch = append(batch[:0], p)
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

// commit stores a batch in one transaction and answers each report.
func (w *writer) commit(batch []*pending) {
	s := w.s
	out := make([]result, len(batch))
	err := s.Down()
	if err == nil {
		err = s.noSpace()
	}
	start := time.Now()
	if err == nil {
		policy := s.policy.Load()
		if policy != nil {
			s.db.MaxSize = policy.MaxSize
		}
		_, err = w.transact(start, false, false, indexPerCommit, func(t *txn) {
			for i, p := range batch {
				o, e := w.apply(t, p.rec, p.imported)
				out[i] = result{o, e}
			}
		})
		if err == nil {
			for i, p := range batch {
				if o := out[i].outcome; o == Stored || o == Duplicate {
					s.seenCache.add(p.fp)
				}
			}
		}
		s.noteSpace(err, time.Now())
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitInfo{s.path, time.Since(start), len(batch), s.count.Load(), err})
	}
	for i, p := range batch {
		r := out[i]
		if err != nil && r.outcome != Rejected {
			r = result{Failed, err}
		}
		p.res <- r
	}
}

// idle is the writer's work while reports are few: a due flush of the live
// rollups, and the dictionaries' index once nothing came for idleAfter.
func (w *writer) idle(now time.Time, idle bool) {
	if w.s.Down() != nil {
		return
	}
	if w.s.live.pending > 0 && w.s.live.due(now) {
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

// A commit costs about as much CPU for 20 reports as for 200 (page writes,
// two fsyncs). While reports keep coming (the last batch was not small) a
// small batch waits up to lingerWait for company; a lone report is committed
// at once.
const (
	lingerBatch = 512
	lingerBusy  = 16
	lingerWait  = 2 * time.Millisecond
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
