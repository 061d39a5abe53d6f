// Package store keeps status reports in one bbolt file.
//
// Reports are keyed by receive time, so a time range is one ordered cursor
// scan. A second bucket maps (client epoch, hash of the beacon) to nothing: the
// same start of the same installation is stored once however many resolvers
// and retries deliver it. Writes are group-committed by a single writer
// goroutine; Submit returns only after the transaction holding the report has
// been fsynced.
package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

var (
	reportsBucket = []byte("reports")
	seenBucket    = []byte("seen")
	metaBucket    = []byte("meta")

	countKey = []byte("count")
)

// Errors Submit returns besides bbolt's own.
var (
	ErrClosed     = errors.New("store is closed")
	ErrOverloaded = errors.New("store queue is full")
	ErrTimeout    = errors.New("store commit timed out")
)

// Outcome is what Submit did with a report.
type Outcome int

// Outcomes of Submit.
const (
	Stored Outcome = iota
	Duplicate
	Limited // over the per-source limit of Policy: answered, not stored
	Failed
)

// Options tune a store; the zero value gives the defaults.
type Options struct {
	// NoEpochWindow is how long a report without a client epoch label counts
	// as a duplicate of an earlier one with the same beacon.
	NoEpochWindow time.Duration
	// CommitWait bounds how long Submit waits for its commit.
	CommitWait time.Duration
	// QueueSize bounds the reports waiting for the writer.
	QueueSize int
	// MaxBatch bounds the reports in one transaction.
	MaxBatch int
	// OpenTimeout bounds the wait for bbolt's file lock.
	OpenTimeout time.Duration
	// OnCommit, when set, is told about each commit.
	OnCommit func(CommitInfo)
	// OnSweep, when set, is told what each retention sweep deleted.
	OnSweep func(deleted int, err error)
}

func (o Options) onSweep(n int, err error) {
	if o.OnSweep != nil {
		o.OnSweep(n, err)
	}
}

// CommitInfo describes one group commit.
type CommitInfo struct {
	Path     string
	Duration time.Duration
	Batch    int   // reports in the transaction
	Records  int64 // reports in the store afterwards
	Err      error
}

func (o Options) withDefaults() Options {
	if o.NoEpochWindow == 0 {
		o.NoEpochWindow = 10 * time.Minute
	}
	if o.CommitWait == 0 {
		o.CommitWait = 2 * time.Second
	}
	if o.QueueSize == 0 {
		o.QueueSize = 1 << 16
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 4096
	}
	if o.OpenTimeout == 0 {
		o.OpenTimeout = time.Second
	}
	return o
}

// Store is an open report database.
type Store struct {
	db   *bolt.DB
	path string
	opts Options

	queue chan *pending
	quit  chan struct{}
	done  chan struct{}

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool

	count atomic.Int64

	policy        atomic.Pointer[Policy]
	policyChanged chan struct{}
	limiter       sourceLimiter     // writer only
	nextFree      map[uint64]uint64 // writer only, see freeKey

	rollupMu    sync.Mutex // a rollup rebuild excludes commits
	rollupCache rollupCache

	rollupPending atomic.Pointer[pendingRollups] // see pending.go
	mergeNow      bool                           // writer only: the next commit merges
	lastBatch     int                            // writer only: size of the last batch

	noSpaceUntil atomic.Int64          // unix ns; see space.go
	noSpaceErr   atomic.Pointer[error] // why
}

type pending struct {
	rec  *Record
	seen [16]byte
	res  chan result
}

type result struct {
	outcome Outcome
	err     error
}

var pendingPool = sync.Pool{New: func() any { return &pending{res: make(chan result, 1)} }}

// Open opens or creates the database at path and starts its writer.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	// NoFreelistSync: writing the freelist sorted every page id that rollup
	// merges had freed, in every commit (a fifth of the server's CPU under
	// dnsperf on a 600k-report file); Open rebuilds it from the tree instead.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.OpenTimeout, FreelistType: bolt.FreelistMapType, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("opening database %q: %w", path, err)
	}
	s := &Store{
		db:    db,
		path:  path,
		opts:  opts,
		queue: make(chan *pending, opts.QueueSize),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),

		policyChanged: make(chan struct{}, 1),
		nextFree:      map[uint64]uint64{},
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{reportsBucket, seenBucket, metaBucket, unrolledBucket} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		s.count.Store(int64(getUint(tx.Bucket(metaBucket), countKey)))
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialising database %q: %w", path, err)
	}
	current := false
	db.View(func(tx *bolt.Tx) error { current = rollupsCurrent(tx); return nil })
	if !current {
		if err := rebuildRollups(db, &s.rollupCache); err != nil {
			db.Close()
			return nil, fmt.Errorf("database %q: %w", path, err)
		}
	}
	if err := s.replayUnrolled(); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %q: replaying rollups: %w", path, err)
	}
	db.View(func(tx *bolt.Tx) error {
		s.rollupPending.Store(&pendingRollups{gen: getUint(tx.Bucket(metaBucket), rollupGenKey)})
		return nil
	})
	go s.writer()
	return s, nil
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// DB gives read access to the underlying bbolt handle (backups, tests).
func (s *Store) DB() *bolt.DB { return s.db }

// Count is the number of stored reports.
func (s *Store) Count() int64 { return s.count.Load() }

// Close stops accepting reports, commits what is queued and closes the file.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.mu.Unlock()
	<-s.done
	return s.db.Close()
}

// Submit stores rec unless the same report is already stored, and returns once
// the outcome is durable. A Failed outcome comes with the reason.
func (s *Store) Submit(rec *Record) (Outcome, error) {
	p := pendingPool.Get().(*pending)
	p.rec = rec
	p.seen = seenKey(rec, s.opts.NoEpochWindow)

	// A report already on disk is acknowledged without waiting for a commit:
	// retries and replays cost one read transaction.
	if rec.Report.HasEpoch && s.isSeen(p.seen[:]) {
		p.rec = nil
		pendingPool.Put(p)
		return Duplicate, nil
	}

	if err := s.noSpace(); err != nil {
		p.rec = nil
		pendingPool.Put(p)
		return Failed, err
	}

	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return Failed, ErrClosed
	}
	select {
	case s.queue <- p:
	default:
		s.mu.RUnlock()
		return Failed, ErrOverloaded
	}
	s.mu.RUnlock()

	t := time.NewTimer(s.opts.CommitWait)
	defer t.Stop()
	select {
	case r := <-p.res:
		p.rec = nil
		pendingPool.Put(p)
		return r.outcome, r.err
	case <-t.C:
		// The writer still owns p and will send on its buffered channel; leave
		// it to the garbage collector rather than the pool.
		return Failed, ErrTimeout
	}
}

func (s *Store) isSeen(key []byte) bool {
	found := false
	s.db.View(func(tx *bolt.Tx) error {
		found = tx.Bucket(seenBucket).Get(key) != nil
		return nil
	})
	return found
}

// seenKey is client epoch (big-endian, so keys of one time sort together and
// inserts stay near the end of the tree) + 8 bytes of SHA-256 of the beacon.
// Reports without an epoch use the receive time cut to the window instead.
func seenKey(rec *Record, window time.Duration) [16]byte {
	var k [16]byte
	e := uint64(rec.Report.Epoch)
	if !rec.Report.HasEpoch {
		e = uint64(rec.Received.UnixNano()/int64(window)) | 1<<63
	}
	binary.BigEndian.PutUint64(k[:8], e)
	h := sha256.Sum256([]byte(rec.Report.Beacon))
	copy(k[8:], h[:8])
	return k
}

func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*pending, 0, s.opts.MaxBatch)
	// Retention runs here too: every write of the file comes from this
	// goroutine, which is what lets it set bbolt's MaxSize.
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	merge := time.NewTicker(rollupDelay)
	defer merge.Stop()
	for {
		select {
		case p := <-s.queue:
			batch = append(batch[:0], p)
		case <-s.policyChanged:
			if p := s.policy.Load(); p != nil {
				sweep.Reset(p.SweepEvery)
			}
			continue
		case <-sweep.C:
			p := s.policy.Load()
			if n, err := s.sweep(p, time.Now()); err != nil || n > 0 {
				s.opts.onSweep(n, err)
			}
			continue
		case <-merge.C:
			// An idle store merges its pending rollups too.
			if p := s.rollupPending.Load(); len(p.batches) > 0 && p.due(0, time.Now()) {
				s.commit(batch[:0])
			}
			continue
		case <-s.quit:
			// Close holds off new sends; drain what made it into the queue,
			// then merge the rollups so the next Open replays nothing.
			for {
				select {
				case p := <-s.queue:
					s.commit(append(batch[:0], p))
				default:
					if len(s.rollupPending.Load().batches) > 0 {
						s.mergeNow = true
						s.commit(batch[:0])
					}
					return
				}
			}
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
		batch = s.linger(batch)
		s.commit(batch)
	}
}

// A commit costs about as much CPU for 20 reports as for 200 (page writes,
// two fsyncs, publishing the pending rollups). While reports keep coming (the
// last batch was not small) a small batch waits up to lingerWait for company;
// a lone report is committed at once.
const (
	lingerBatch = 128
	lingerBusy  = 16
	lingerWait  = 500 * time.Microsecond
)

func (s *Store) linger(batch []*pending) []*pending {
	last := s.lastBatch
	s.lastBatch = len(batch)
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
			s.lastBatch = len(batch)
			return batch
		}
	}
	s.lastBatch = len(batch)
	return batch
}

func (s *Store) commit(batch []*pending) {
	// Reports queued before a commit ran out of space fail with it: a
	// smaller commit of the rest could squeeze in and end the fast failing
	// (rollups no longer grow every commit), and it would fail again soon.
	if err := s.noSpace(); err != nil && len(batch) > 0 {
		for _, p := range batch {
			p.res <- result{Failed, err}
		}
		return
	}
	start := time.Now()
	outcomes := make([]Outcome, len(batch))
	var stored uint64
	s.rollupMu.Lock()
	defer s.rollupMu.Unlock()
	policy := s.policy.Load()
	if policy != nil {
		s.db.MaxSize = policy.MaxSize
	}
	pend := s.rollupPending.Load()
	merge := s.mergeNow || pend.due(len(batch), start)
	today := dayOf(start)
	var rollups *rollupBatch
	err := s.db.Update(func(tx *bolt.Tx) error {
		rollups = newRollupBatch(tx, &s.rollupCache)
		reports, seen, meta := tx.Bucket(reportsBucket), tx.Bucket(seenBucket), tx.Bucket(metaBucket)
		unrolled := tx.Bucket(unrolledBucket)
		unrolled.FillPercent = 1 // receive times again
		reports.FillPercent = 1  // keys are receive times, so inserts append: pack pages full
		// Seen keys start with the client's clock, which is near now: mostly
		// appends, so the default half-empty split wastes 32 bytes a report.
		seen.FillPercent = 0.9
		stored = 0
		for i, p := range batch {
			if s.seenIn(seen, p) {
				outcomes[i] = Duplicate
				continue
			}
			if !s.limiter.allow(policy, p.rec.Source, start) {
				outcomes[i] = Limited
				continue
			}
			// A non-nil empty value: Get of a key Put with nil in this same
			// transaction returns nil, which would hide a duplicate in the batch.
			if err := seen.Put(append([]byte(nil), p.seen[:]...), []byte{}); err != nil {
				return err
			}
			// bbolt keeps the key and value slices until the commit: fresh ones
			// for every Put. Two reports in the same nanosecond: the later moves up.
			p.rec.Key = s.freeKey(reports, uint64(p.rec.Received.UnixNano()))
			k := binary.BigEndian.AppendUint64(make([]byte, 0, 8), p.rec.Key)
			if err := reports.Put(k, p.rec.marshal(make([]byte, 0, 160))); err != nil {
				return err
			}
			if err := rollups.add(p.rec); err != nil {
				return err
			}
			if err := unrolled.Put(k, []byte{}); err != nil {
				return err
			}
			// Past days (imports) are read through a cache of closed days:
			// merge them at once rather than teach that cache about pending.
			merge = merge || dayOf(p.rec.Received) != today
			outcomes[i] = Stored
			stored++
		}
		if err := putUint(meta, countKey, getUint(meta, countKey)+stored); err != nil {
			return err
		}
		if merge {
			pend.into(rollups)
			if err := rollups.flush(); err != nil {
				return err
			}
			if err := resetUnrolled(tx); err != nil {
				return err
			}
			if err := putUint(meta, rollupGenKey, pend.gen+1); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.count.Add(int64(stored))
		switch {
		case merge:
			s.rollupPending.Store(pend.merged())
			s.mergeNow = false
		case stored > 0:
			s.rollupPending.Store(pend.with(rollups.deltas, int(stored), start))
		}
	}
	if len(batch) > 0 {
		s.noteSpace(err, time.Now())
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitInfo{s.path, time.Since(start), len(batch), s.count.Load(), err})
	}
	for i, p := range batch {
		if err != nil {
			p.res <- result{Failed, err}
		} else {
			p.res <- result{outcomes[i], nil}
		}
	}
}

// freeKey finds the first unused key from t on. Imports carry whole-second
// times, so many reports can share one: nextFree remembers where each such
// run ended, keeping the probe short.
func (s *Store) freeKey(reports *bolt.Bucket, t uint64) uint64 {
	k := max(t, s.nextFree[t])
	var b [8]byte
	for binary.BigEndian.PutUint64(b[:], k); reports.Get(b[:]) != nil; binary.BigEndian.PutUint64(b[:], k) {
		k++
	}
	if k != t {
		if len(s.nextFree) > 4096 {
			clear(s.nextFree)
		}
		s.nextFree[t] = k + 1
	}
	return k
}

// seenIn also looks one window back for reports without an epoch, so a retry
// that straddles a window boundary is still a duplicate.
func (s *Store) seenIn(seen *bolt.Bucket, p *pending) bool {
	if seen.Get(p.seen[:]) != nil {
		return true
	}
	if p.rec.Report.HasEpoch {
		return false
	}
	prev := p.seen
	binary.BigEndian.PutUint64(prev[:8], binary.BigEndian.Uint64(prev[:8])-1)
	return seen.Get(prev[:]) != nil
}

func getUint(b *bolt.Bucket, k []byte) uint64 {
	if v := b.Get(k); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putUint(b *bolt.Bucket, k []byte, v uint64) error {
	return b.Put(k, binary.BigEndian.AppendUint64(nil, v))
}
