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

// commit stores a batch and answers each report: once the transaction
// holding it has committed, or, while more reports wait, once its stored
// records are in the write-ahead log (see wal.go and store).
func (w *writer) commit(batch []*pending) {
	s := w.s
	out := make([]result, len(batch))
	err := s.Down()
	if err == nil {
		err = s.noSpace()
	}
	start := time.Now()
	var logged, settled bool
	if err == nil {
		policy := s.policy.Load()
		if policy != nil {
			s.db.MaxSize = policy.MaxSize
		}
		logged, settled, err = w.store(start, batch, out)
	}
	if !settled && s.opts.OnCommit != nil { // settle tells of its commits
		s.opts.OnCommit(CommitInfo{Path: s.path, Duration: time.Since(start), Batch: len(batch),
			Records: s.count.Load(), Logged: logged, Unstored: w.unstored(), Err: err})
	}
	s.answer(batch, out, err)
}

// commitEvery bounds how long the writer keeps a transaction open while
// reports keep coming: a commit's pages, fsyncs and tree spill are paid
// once per commitEvery instead of once per batch (etcd's backend commits
// every 100 ms too). Readers see a report at most this late. When no report
// comes for quietCommit, the open transaction commits at once.
const (
	commitEvery = 100 * time.Millisecond
	quietCommit = 2 * time.Millisecond
)

// store applies batch to the held transaction (begun if there is none)
// and makes it durable: by committing when reports come slowly (the first
// batch of the transaction is small and nothing else is queued: a client
// that has its answers reads its reports back), when the transaction is
// old, or when the log cannot take the batch; else by logging the records
// it stored, keeping the transaction open. logged and settled tell which.
func (w *writer) store(now time.Time, batch []*pending, out []result) (logged, settled bool, err error) {
	defer w.s.contain(&err)()
	defer func() {
		if r := recover(); r != nil {
			w.drop()
			panic(r) // for contain
		}
	}()
	t, err := w.hold(now)
	if err != nil {
		return false, false, err
	}
	if testHookInTx != nil {
		testHookInTx()
	}
	first := t.logBatches == 0
	recs := w.logged[:0]
	for i, p := range batch {
		o, e := w.apply(t, p.rec, p.origin)
		out[i] = result{o, e}
		if o == Stored {
			recs = append(recs, p.rec)
		}
	}
	w.logged = recs[:0]
	slow := first && len(batch) < lingerBusy && len(w.s.queue) == 0
	if w.log == nil || w.logBlocked || slow || t.partial || now.Sub(w.heldSince) >= commitEvery {
		return false, true, w.settle()
	}
	if len(recs) > 0 {
		top, err := w.log.append(recs)
		if err != nil {
			// The log is full, or failing (a full disk): commit, as
			// without it.
			return false, true, w.settle()
		}
		t.logTop = top
	}
	t.logBatches++
	return true, false, nil
}

// hold returns the held transaction, beginning it when there is none.
func (w *writer) hold(now time.Time) (*txn, error) {
	if w.held != nil {
		return w.held, nil
	}
	t, err := w.begin(now, false, indexPerCommit)
	if err != nil {
		return nil, err
	}
	w.held, w.heldSince = t, now
	return t, nil
}

// settle commits the held transaction, if any, and tells OnCommit. When
// that fails, what it held is rolled back: the records it logged are
// applied again by the next transaction (begin), the others fail; after a
// lack of space nothing more is logged until a commit works, so the log
// holds at most one transaction's reports the file could not take.
func (w *writer) settle() (err error) {
	t := w.held
	if t == nil {
		return nil
	}
	w.held = nil
	start := time.Now()
	err = w.end(t, false)
	s := w.s
	s.noteSpace(err, time.Now())
	w.logBlocked = isSpaceError(err)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitInfo{Path: s.path, Duration: time.Since(start), Batch: t.stored,
			Records: s.count.Load(), Unstored: w.unstored(), Err: err})
	}
	return err
}

// unstored is the number of reports the log holds that the file lacks.
func (w *writer) unstored() int {
	if w.log == nil {
		return 0
	}
	return w.log.unstored()
}

// sync commits the held transaction, or what the log holds that the file
// lacks (a failed commit's records: begin applies them), through a held
// transaction so that settle tells of it.
func (w *writer) sync() error {
	if w.held == nil && (w.unstored() == 0 || w.s.Down() != nil) {
		return nil
	}
	if _, err := w.hold(time.Now()); err != nil {
		return err
	}
	return w.settle()
}

// drop forgets the held transaction after a panic inside bbolt, or when
// the store is down: it is not rolled back, which would enter bbolt again
// (goDown); its records logged stay in the log, for salvage.
func (w *writer) drop() {
	if t := w.held; t != nil {
		w.held = nil
		w.done(t, false, nil, false)
	}
}

// idle is the writer's work while reports are few: a due flush of the live
// rollups, and the dictionaries' index once nothing came for idleAfter.
func (w *writer) idle(now time.Time, idle bool) {
	if w.s.Down() != nil {
		return
	}
	if w.unstored() > 0 && w.held == nil && w.s.noSpace() == nil {
		w.sync() // logged records a failed commit rolled back
	}
	if w.s.live.unflushed > 0 && w.s.live.due(now) {
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
