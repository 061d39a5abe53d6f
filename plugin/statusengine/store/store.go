package store

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
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
	// OnWarning, when set, is told in one line of what an operator must
	// fix (a write-ahead log the store refused); unset, OnEvent is.
	OnWarning func(string)
}

func (s *Store) notify(format string, a ...any) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(fmt.Sprintf(format, a...))
	}
}

func (s *Store) warn(format string, a ...any) {
	if s.opts.OnWarning != nil {
		s.opts.OnWarning(fmt.Sprintf(format, a...))
		return
	}
	s.notify(format, a...)
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
	// Unstored is the reports the log holds that the file lacks: answered
	// and durable, in the file after the next commit that works.
	Unstored int
	Err      error
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

	count     atomic.Int64
	installs  atomic.Uint64         // installations ever numbered
	own       atomic.Uint64         // records stored of this server's own since Open (OwnStored)
	outboxLen atomic.Int64          // entries waiting in the outbox (OutboxLen)
	down      atomic.Pointer[error] // set once the file is found damaged
	downCh    chan struct{}         // closed then (nil in Check's stores)
	file      *os.File              // bbolt's descriptor of the file, see closeDown

	policy        atomic.Pointer[Policy]
	policyChanged chan struct{}

	schemas  atomic.Pointer[record.Schemas] // see schemas.go
	schemaMu sync.Mutex                     // one SetSchema at a time
	custom   customSet                      // installations of custom schemas' zones (schemas.go)

	seenCache *recentSeen
	live      *rollup.Live
	w         *writer
	readers   readCaches

	noSpaceUntil atomic.Int64          // unix ns; see space.go
	noSpaceErr   atomic.Pointer[error] // why
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Count is the number of stored reports.
func (s *Store) Count() int64 { return s.count.Load() }

// OwnStored counts this server's own records committed since Open (live
// reports and imports, and those replayed from the write-ahead log; not
// those taken from a peer or a stream, see outbox.go): its rate tells how
// busy the DNS path is.
func (s *Store) OwnStored() uint64 { return s.own.Load() }

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

// goDown marks the store down for good: nothing more is written to the
// file, and bbolt is never entered again (view, begin, settle, Close): a
// panic inside bbolt can leave its locks held (a write transaction's, or
// the meta lock of a read transaction that panicked as it began), and
// anything entering it then waits forever.
func (s *Store) goDown(err error) {
	if s.down.CompareAndSwap(nil, &err) {
		if s.downCh != nil {
			close(s.downCh)
		}
		if s.opts.OnDown != nil {
			s.opts.OnDown(err)
		}
	}
}

// closeWait bounds each wait of Close on a store that is down: for the
// writer goroutine, then for bbolt's Close.
const closeWait = time.Second

// Close stops accepting reports, commits what is queued and closes the file.
// A store that is down closes within 2*closeWait (closeDown).
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.quit)
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-s.downCh:
		// The writer may be waiting inside bbolt for a lock a panic left
		// held: it is left there.
		select {
		case <-s.done:
		case <-time.After(closeWait):
		}
	}
	if s.Down() != nil {
		return s.closeDown()
	}
	var err error
	if s.w.log != nil {
		err = s.w.log.Close()
	}
	if e := s.db.Close(); e != nil {
		err = e
	}
	return err
}

// closeDown closes a store that is down without waiting on bbolt's locks.
// The log is closed and kept: what it holds that the file lacks is for
// salvage. bbolt's Close takes its writer, meta and map locks first; when
// a panic left one held it waits forever, so after closeWait the file's
// flock is released and its descriptor closed instead (a new Open of the
// path, a reload's or salvage's, can lock it); the map stays until the
// process ends, for readers still inside it.
func (s *Store) closeDown() error {
	if s.w != nil && s.w.log != nil {
		s.w.log.F.Close()
	}
	closed := make(chan error, 1)
	go func() { closed <- s.db.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(closeWait):
		if s.file == nil {
			return nil
		}
		// Unlocked first: the map holds the open file, and the lock with
		// it, past the descriptor's close.
		err := unix.Flock(int(s.file.Fd()), unix.LOCK_UN)
		if e := s.file.Close(); err == nil {
			err = e
		}
		return err
	}
}

// errAbandoned ends a read transaction that began after its reader had
// returned (view).
var errAbandoned = errors.New("read abandoned: the store is down")

// view runs fn in a read transaction. A damaged page makes bbolt panic or
// fault: that takes the store down and returns an error, never the process.
// A store that is down answers at once: its error. The transaction runs on
// a goroutine of its own so that a reader waiting to begin it when the
// store goes down (bbolt's meta lock held by a panicked Begin) returns
// then; fn never runs after view returned.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	if err := s.Down(); err != nil {
		return err
	}
	const (
		waiting int32 = iota
		entered
		abandoned
	)
	var state atomic.Int32
	res := make(chan error, 1)
	go func() {
		var err error
		defer func() { res <- err }()
		defer s.contain(&err)()
		err = s.db.View(func(tx *bolt.Tx) error {
			if !state.CompareAndSwap(waiting, entered) {
				return errAbandoned
			}
			return fn(tx)
		})
	}()
	select {
	case err := <-res:
		return err
	case <-s.downCh:
		if state.CompareAndSwap(waiting, abandoned) {
			return s.Down()
		}
		return <-res // fn runs: on the map, it ends (or faults)
	}
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

// DamagedError says a database file cannot be used as it is: bbolt would
// crash on it, or it holds what no statusengine writes. Nothing is written
// to such a file; `statusengine salvage` copies what is readable into a new
// one.
type DamagedError struct {
	Path     string
	Problems []string
}

func (e *DamagedError) Error() string {
	p := strings.Join(e.Problems[:min(3, len(e.Problems))], "; ")
	if len(e.Problems) > 3 {
		p += fmt.Sprintf("; and %d more", len(e.Problems)-3)
	}
	return fmt.Sprintf("database %s is damaged (%s): run `statusengine check --db %s`, then `statusengine salvage --db %s --out NEW.db` and use NEW.db",
		e.Path, p, e.Path, e.Path)
}
