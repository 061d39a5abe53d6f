package store

import (
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Errors Submit returns besides bbolt's own.
var (
	ErrClosed     = errors.New("store is closed")
	ErrOverloaded = errors.New("store queue is full")
	ErrDown       = errors.New("store is down")
)

// Options tune a store; the zero value gives the defaults.
type Options struct {
	// NoEpochWindow is how long a report without a client epoch label counts
	// as a duplicate of an earlier one with the same beacon.
	NoEpochWindow time.Duration
	// AnswerWait bounds how long Submit waits for its report to be durable;
	// past it Submit returns Queued and the report is stored later (lost
	// if the process dies first). NoAnswerDeadline waits without a bound;
	// zero is DefaultAnswerWait.
	AnswerWait time.Duration
	// QueueSize bounds the reports waiting for the writer; past it Submit
	// fails at once.
	QueueSize int
	// MaxBatch bounds the reports in one transaction.
	MaxBatch int
	// OpenTimeout bounds the wait for bbolt's file lock.
	OpenTimeout time.Duration
	// OnCommit, when set, is told about each commit and each batch
	// logged, and each batch failed before either (from the writer).
	OnCommit func(CommitInfo)
	// OnSweep, when set, is told what each retention sweep deleted.
	OnSweep func(deleted int, err error)
	// OnDown, when set, is told once when the store goes down (a damaged
	// file found while running), with the reason.
	OnDown func(error)
	// OnEvent, when set, is told in one line of what the store does on its
	// own: migrating a file, rebuilding its rollups.
	OnEvent func(string)
}

func (s *Store) notify(format string, a ...any) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(fmt.Sprintf(format, a...))
	}
}

// DefaultAnswerWait is the default Options.AnswerWait. A commit takes a few
// milliseconds; 300 ms bounds a stalled disk's effect on answers below the
// first retransmission of common resolvers (Unbound waits 376 ms for a server
// it has no RTT for, BIND 800 ms, and BIND gives up on an answer after about
// 2 s, losing the report), so a slow commit neither triggers retries nor
// loses the answer. The price: such a report is answered while it is only
// in memory (Queued), and a crash before its commit loses it.
const DefaultAnswerWait = 300 * time.Millisecond

// CommitInfo describes one transaction commit, or one batch of reports
// made durable in the write-ahead log.
type CommitInfo struct {
	Path     string
	Duration time.Duration
	// Batch is the reports the transaction stored, or the batch logged.
	Batch   int
	Records int64 // reports in the file afterwards
	// Logged says the batch is durable in the write-ahead log and the
	// transaction holding it commits later (Duration is then the log's).
	Logged bool
	// Pending is the reports the log holds that the file lacks: answered
	// and durable, in the file after the next commit that works.
	Pending int
	Err     error
}

func (o Options) withDefaults() Options {
	if o.NoEpochWindow == 0 {
		o.NoEpochWindow = 10 * time.Minute
	}
	if o.AnswerWait == 0 {
		o.AnswerWait = DefaultAnswerWait
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
	jobs  chan job // small writes besides records (peer cursors)
	quit  chan struct{}
	done  chan struct{}

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool

	count    atomic.Int64
	installs atomic.Uint64         // installations ever numbered
	down     atomic.Pointer[error] // set once the file is found damaged

	policy        atomic.Pointer[Policy]
	policyChanged chan struct{}

	seenCache *recentSeen
	live      *live
	w         *writer
	readers   readCaches

	noSpaceUntil atomic.Int64          // unix ns; see space.go
	noSpaceErr   atomic.Pointer[error] // why
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Count is the number of stored reports.
func (s *Store) Count() int64 { return s.count.Load() }

// InstallationCount is the number of distinct installations ever stored.
func (s *Store) InstallationCount() uint64 { return s.installs.Load() }

// Down returns why the store stopped storing (a damaged file found while
// running), or nil while it works.
func (s *Store) Down() error {
	if e := s.down.Load(); e != nil {
		return *e
	}
	return nil
}

// goDown marks the store down for good: nothing more is written to the file.
func (s *Store) goDown(err error) {
	if s.down.CompareAndSwap(nil, &err) && s.opts.OnDown != nil {
		s.opts.OnDown(err)
	}
}

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
	var err error
	if s.w.log != nil {
		err = s.w.log.close()
	}
	if e := s.db.Close(); e != nil {
		err = e
	}
	return err
}

// view runs fn in a read transaction. A damaged page makes bbolt panic or
// fault: that takes the store down and returns an error, never the process.
func (s *Store) view(fn func(tx *bolt.Tx) error) (err error) {
	defer s.contain(&err)()
	return s.db.View(fn)
}

// contain makes a memory fault in this goroutine a panic (a damaged file can
// point bbolt outside its map) and returns the function to defer, which
// turns a panic inside bbolt into an error and takes the store down:
//
//	defer s.contain(&err)()
func (s *Store) contain(err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			e := &DamagedError{Path: s.path, Problems: []string{fmt.Sprint(r)}}
			s.goDown(e)
			*err = e
		}
	}
}
