package store

import (
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// Outcome is what Submit did with a report.
type Outcome int

// Outcomes of Submit.
const (
	Stored    Outcome = iota
	Duplicate         // already stored: the same start of the same installation
	Limited           // over the per-source limit of Policy: answered, not stored
	Failed            // not stored: the error says why
	Rejected          // not a valid record (Record.Validate): never stored
	Queued            // not durable within the answer wait: only in memory, stored later
)

// pending is one report on its way through the writer.
type pending struct {
	rec    *record.Record
	fp     uint64 // fingerprint, for recentSeen
	origin origin // a live report, or an import or a peer's record
	res    chan result
}

type result struct {
	outcome Outcome
	err     error
}

var pendingPool = sync.Pool{New: func() any { return &pending{res: make(chan result, 1)} }}

// committedLately is rec's fingerprint, and whether the store committed
// its report lately (the table of recent fingerprints): a duplicate then,
// answered without the writer.
func (s *Store) committedLately(rec *record.Record) (uint64, bool) {
	fp := fingerprint(rec, s.opts.NoEpochWindow)
	return fp, s.seenCache.has(fp)
}

// Submit is SubmitWithin with Options.AnswerWait.
func (s *Store) Submit(rec *record.Record) (Outcome, error) {
	return s.SubmitWithin(rec, s.opts.AnswerWait)
}

// NoAnswerDeadline as the wait of SubmitWithin (or Options.AnswerWait)
// makes it return only once the report is durable or has failed.
const NoAnswerDeadline time.Duration = -1

// SubmitWithin stores rec unless the same report is already stored, and
// returns once it is durable (in the write-ahead log or a committed
// transaction), or after wait with Queued: the report then stays queued in
// memory only and is stored later, lost if the process dies first (kill
// -9, a power cut). A negative wait (NoAnswerDeadline) waits until the
// report is durable or has failed, however slow the disk; zero is
// Options.AnswerWait. It never opens a
// transaction, so no reader can delay it; a duplicate of a report committed
// lately is answered at once. A full queue fails at once: memory and
// goroutines stay bounded while the disk stalls, with or without a wait.
func (s *Store) SubmitWithin(rec *record.Record, wait time.Duration) (Outcome, error) {
	if err := s.Down(); err != nil {
		return Failed, err
	}
	fp, dup := s.committedLately(rec)
	if dup {
		return Duplicate, nil
	}
	if err := s.noSpace(); err != nil {
		return Failed, err
	}
	p := pendingPool.Get().(*pending)
	p.rec, p.fp, p.origin = rec, fp, fromDNS
	if err := s.enqueue(p, false); err != nil {
		p.rec = nil
		pendingPool.Put(p)
		return Failed, err
	}
	if wait == 0 {
		wait = s.opts.AnswerWait
	}
	var timeout <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case r := <-p.res:
		p.rec = nil
		pendingPool.Put(p)
		return r.outcome, r.err
	case <-timeout: // nil without a deadline: never ready
		// The writer still owns p and will send on its buffered channel;
		// leave it to the garbage collector rather than the pool.
		return Queued, nil
	case <-s.downCh:
		// The writer may be stuck inside bbolt for good: without this an
		// answer held with no deadline would wait forever. p is left to
		// the garbage collector, as above.
		return Failed, s.Down()
	}
}

// enqueue hands p to the writer; wait blocks while the queue is full
// (importers), else a full queue is an error.
func (s *Store) enqueue(p *pending, wait bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if wait {
		// Blocking under the read lock is safe: Close waits for it, and the
		// writer drains the queue until Close closes quit, or the store
		// goes down (the writer may then wait inside bbolt for good).
		select {
		case s.queue <- p:
			return nil
		case <-s.downCh:
			return s.Down()
		}
	}
	select {
	case s.queue <- p:
		return nil
	default:
		return ErrOverloaded
	}
}

// Result is what became of one record of SubmitBatch.
type Result struct {
	Outcome Outcome
	Err     error // why it was Rejected or Failed
}

// SubmitBatch stores recs through the same writer, validation and
// de-duplication as Submit (a duplicate of a report committed lately is
// answered without the writer), without the per-source limit, keeping each
// record's receive time (an import, or a peer's records), and returns what
// became of each, in order, once all are durable. A full queue makes it
// wait instead of failing. The error is the first failure of the store
// (not a rejection). Readers see the records once it returns.
func (s *Store) SubmitBatch(recs []*record.Record) ([]Result, error) {
	return s.submitBatch(recs, fromImport)
}

// SubmitPulled is SubmitBatch for records pulled from a peer: they are not
// listed among the imports peers pull (ImportedAfter), since every server
// of a mesh pulls them from the server that received them.
func (s *Store) SubmitPulled(recs []*record.Record) ([]Result, error) {
	return s.submitBatch(recs, fromCopy)
}

func (s *Store) submitBatch(recs []*record.Record, from origin) ([]Result, error) {
	if err := s.Down(); err != nil {
		return nil, err
	}
	ps := make([]*pending, len(recs))
	out := make([]Result, len(recs))
	for i, rec := range recs {
		fp, dup := s.committedLately(rec)
		if dup {
			// Committed lately, as Submit answers it: a peer's or the
			// stream's copy of this server's own report costs no trip
			// through the writer.
			out[i] = Result{Outcome: Duplicate}
			continue
		}
		ps[i] = &pending{rec: rec, fp: fp, origin: from, res: make(chan result, 1)}
		if err := s.enqueue(ps[i], true); err != nil {
			return nil, err
		}
	}
	var firstErr error
	for i, p := range ps {
		if p == nil {
			continue // answered from the cache
		}
		var r result
		select {
		case r = <-p.res:
		case <-s.downCh:
			return nil, s.Down()
		}
		out[i] = Result{r.outcome, r.err}
		if r.outcome == Failed && firstErr == nil {
			firstErr = r.err
		}
	}
	if err := s.Sync(); err != nil && firstErr == nil {
		firstErr = err
	}
	return out, firstErr
}

// Sync commits the transaction the writer holds open while reports come
// fast (see wal.go): every report answered before it returns is then in
// the file and seen by readers. Reports logged but not yet committed are
// durable already; Sync is for readers that must see them now.
func (s *Store) Sync() error { return s.do(nil) }

// job is a small write the writer runs in a transaction of its own.
type job struct {
	fill func(tx *bolt.Tx) error
	done chan error
}

// do runs fill in a write transaction of the writer goroutine, which makes
// every write of the file.
func (s *Store) do(fill func(tx *bolt.Tx) error) error {
	if err := s.Down(); err != nil {
		return err
	}
	j := job{fill: fill, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.jobs <- j:
		s.mu.RUnlock()
	case <-s.quit:
		s.mu.RUnlock()
		return ErrClosed
	case <-s.downCh:
		s.mu.RUnlock()
		return s.Down()
	}
	select {
	case err := <-j.done:
		return err
	case <-s.downCh: // the writer may wait inside bbolt for good
		return s.Down()
	}
}
