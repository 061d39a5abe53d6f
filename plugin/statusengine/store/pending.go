package store

import (
	"time"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"
)

// Merging rollups into the rollup bucket rewrites every bitmap a commit
// touches, and this month's bitmaps grow with the installations seen: with a
// commit per few hundred reports that was megabytes written per commit, most
// of the disk writes and of the commit time (bench/README.md). So a commit
// that is not due to merge keeps its rollup changes in memory (pendingRollups,
// published for readers) and lists the keys of its records in the unrolled
// bucket, in the transaction that stores them. A later commit, at most
// rollupDelay later, merges all of it into the rollup bucket, empties
// unrolled and counts the merge in the meta bucket's rollup_gen, in one
// transaction. Readers add the pending changes their snapshot lacks (see
// pendingFor). After a crash, Open replays the records that unrolled lists,
// so the rollups never miss an acknowledged report.
var (
	unrolledBucket = []byte("unrolled")
	rollupGenKey   = []byte("rollup_gen")
)

// rollupDelay bounds how long rollup changes stay in memory only (a
// variable for tests).
var rollupDelay = time.Second

const (
	// maxUnrolled bounds the reports not merged into the rollup bucket, and
	// so what Open replays after a crash.
	maxUnrolled = 50000
)

// pendingRollups are the rollup changes committed on top of rollup
// generation gen. A published value is never changed: a commit publishes a
// new one.
type pendingRollups struct {
	gen     uint64
	prev    *pendingRollups // what the merge that made gen took in, for readers of gen-1
	batches []map[rollupKey]pendingDelta
	records int
	since   time.Time // commit time of the oldest change
}

type pendingDelta struct {
	reports uint64
	ids     *roaring.Bitmap // nil for hour counts and ids
}

// due tells whether a commit at now that stores stored reports must merge.
func (p *pendingRollups) due(stored int, now time.Time) bool {
	if len(p.batches) == 0 {
		return stored >= maxUnrolled
	}
	return p.records+stored >= maxUnrolled || now.Sub(p.since) >= rollupDelay
}

// with returns p plus the changes of one committed batch.
func (p *pendingRollups) with(deltas map[rollupKey]*rollupDelta, stored int, now time.Time) *pendingRollups {
	m := make(map[rollupKey]pendingDelta, len(deltas))
	for k, d := range deltas {
		pd := pendingDelta{reports: d.reports}
		if d.hasIDs {
			pd.ids = roaring.BitmapOf(d.ids...)
		}
		m[k] = pd
	}
	q := &pendingRollups{gen: p.gen, prev: p.prev, records: p.records + stored, since: p.since}
	if len(p.batches) == 0 {
		q.since = now
	}
	q.batches = append(make([]map[rollupKey]pendingDelta, 0, len(p.batches)+1), p.batches...)
	q.batches = append(q.batches, m)
	return q
}

// merged is what follows p once a merge of it committed.
func (p *pendingRollups) merged() *pendingRollups {
	return &pendingRollups{gen: p.gen + 1, prev: &pendingRollups{gen: p.gen, batches: p.batches}}
}

// into adds the pending changes to rb, which is about to merge them. The
// pending values stay untouched, in case the transaction fails.
func (p *pendingRollups) into(rb *rollupBatch) {
	for _, m := range p.batches {
		for k, pd := range m {
			d := rb.deltas[k]
			if d == nil {
				d = &rollupDelta{hasIDs: pd.ids != nil}
				rb.deltas[k] = d
			}
			d.reports += pd.reports
			if pd.ids != nil {
				d.pending = append(d.pending, pd.ids) // Or reads it, never changes it
			}
		}
	}
}

// pendingFor returns the pending changes that the rollup bucket as tx sees
// it lacks, without locks: tx may predate the last merge, or the merge may
// have committed before its successor was published.
func (s *Store) pendingFor(tx *bolt.Tx) []*pendingRollups {
	p := s.rollupPending.Load()
	if p == nil {
		return nil
	}
	switch g := getUint(tx.Bucket(metaBucket), rollupGenKey); {
	case p.gen == g:
		return []*pendingRollups{p}
	case p.gen == g+1 && p.prev != nil && p.prev.gen == g:
		return []*pendingRollups{p.prev, p}
	}
	return nil // a merge committed and is being published: tx has it all
}

// eachPending calls fn for every change in ps.
func eachPending(ps []*pendingRollups, fn func(rollupKey, pendingDelta)) {
	for _, p := range ps {
		for _, m := range p.batches {
			for k, d := range m {
				fn(k, d)
			}
		}
	}
}

// addPendingTotals adds to t the pending changes of periods ps and dims.
func addPendingTotals(t *unionTotals, pend []*pendingRollups, ps []period, dims []Dimension) *unionTotals {
	if len(pend) == 0 {
		return t
	}
	if t == nil {
		t = &unionTotals{dims: map[Dimension]map[string]*union{}}
	}
	in := make(map[period]bool, len(ps))
	for _, p := range ps {
		in[p] = true
	}
	want := make(map[Dimension]bool, len(dims))
	for _, d := range dims {
		want[d] = true
	}
	eachPending(pend, func(k rollupKey, d pendingDelta) {
		if !want[k.dim] || !in[period{k.period, k.n}] {
			return
		}
		um := t.dims[k.dim]
		if um == nil {
			um = map[string]*union{}
			t.dims[k.dim] = um
		}
		u := um[k.value]
		if u == nil {
			u = &union{}
			um[k.value] = u
		}
		u.reports += d.reports
		if d.ids != nil {
			if u.ids == nil {
				u.ids = d.ids.Clone()
			} else {
				u.ids = roaring.Or(u.ids, d.ids) // u.ids may point into the mapped file
			}
			u.card = u.ids.GetCardinality()
		}
	})
	return t
}

// replayUnrolled merges the rollups of the reports a crash left unmerged.
func (s *Store) replayUnrolled() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		un := tx.Bucket(unrolledBucket)
		if un == nil {
			_, err := tx.CreateBucket(unrolledBucket)
			return err
		}
		if k, _ := un.Cursor().First(); k == nil {
			return nil
		}
		rb := newRollupBatch(tx, &s.rollupCache)
		reports := tx.Bucket(reportsBucket)
		err := un.ForEach(func(k, _ []byte) error {
			v := reports.Get(k)
			if v == nil {
				return nil // deleted by retention since
			}
			rec, err := unmarshal(k, v)
			if err != nil {
				return nil
			}
			return rb.add(&rec)
		})
		if err != nil {
			return err
		}
		if err := rb.flush(); err != nil {
			return err
		}
		return resetUnrolled(tx)
	})
}

// resetUnrolled empties the unrolled bucket; dropping it frees its pages at once.
func resetUnrolled(tx *bolt.Tx) error {
	if tx.Bucket(unrolledBucket) != nil {
		if err := tx.DeleteBucket(unrolledBucket); err != nil {
			return err
		}
	}
	_, err := tx.CreateBucket(unrolledBucket)
	return err
}
