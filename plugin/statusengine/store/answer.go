package store

// answer tells each report of batch its outcome; err fails all but the
// rejected ones.
func (s *Store) answer(batch []*pending, out []result, err error) {
	for i, p := range batch {
		r := out[i]
		if err != nil && r.outcome != Rejected {
			r = result{Failed, err}
		}
		if err == nil && (r.outcome == Stored || r.outcome == Duplicate) {
			s.seenCache.add(p.fp)
		}
		p.res <- r
	}
}
