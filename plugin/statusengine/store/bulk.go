package store

// SubmitBatch stores recs through the same writer and de-duplication as
// Submit and returns the outcome of each, in order, once all are durable.
// It is for importers: the records ride in the writer's group commits without
// a goroutine or a commit deadline per record, and a full queue makes it wait
// instead of failing.
func (s *Store) SubmitBatch(recs []*Record) ([]Outcome, error) {
	ps := make([]*pending, len(recs))
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	for i, rec := range recs {
		p := &pending{rec: rec, seen: seenKey(rec, s.opts.NoEpochWindow), res: make(chan result, 1)}
		ps[i] = p
		// Blocking while holding the read lock is safe: Close waits for it,
		// and the writer drains the queue until Close closes quit.
		s.queue <- p
	}
	s.mu.RUnlock()

	outcomes := make([]Outcome, len(recs))
	var firstErr error
	for i, p := range ps {
		r := <-p.res
		outcomes[i] = r.outcome
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	return outcomes, firstErr
}
