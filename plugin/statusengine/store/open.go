package store

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
)

// initialMmap is the size bbolt maps at open, as etcd does (10 GiB there):
// address space, not memory. While the file is smaller bbolt never remaps,
// and a remap waits for every read transaction to end.
const initialMmap = 8 << 30

// Open opens or creates the database at path and starts its writer. A file
// bbolt cannot safely map gives a *DamagedError.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	var keys map[string]int
	if info, err := os.Stat(path); err == nil && info.Size() > 0 {
		r, err := CheckFile(path)
		if err != nil {
			return nil, err
		}
		if !r.OK() {
			return nil, &DamagedError{Path: path, Problems: r.Problems}
		}
		keys = r.Keys
	}
	db, file, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:            db,
		file:          file,
		downCh:        make(chan struct{}),
		path:          path,
		opts:          opts,
		queue:         make(chan *pending, opts.QueueSize),
		jobs:          make(chan job),
		quit:          make(chan struct{}),
		done:          make(chan struct{}),
		policyChanged: make(chan struct{}, 1),
		seenCache:     &recentSeen{},
		live:          rollup.NewLive(),
	}
	s.w = newWriter(s)
	if err := s.init(keys); err != nil {
		if s.Down() != nil {
			s.closeDown() // a panic inside bbolt may have left its locks held
		} else {
			if s.w.log != nil {
				s.w.log.F.Close()
			}
			db.Close()
		}
		return nil, err
	}
	go s.writer()
	return s, nil
}

// CheckFile reads the whole file at path without mapping it and reports
// its damage (see boltfile.Check).
func CheckFile(path string) (*boltfile.Report, error) {
	f, err := boltfile.Open(path)
	if err != nil {
		if errors.Is(err, boltfile.ErrNotBolt) {
			return nil, &DamagedError{Path: path, Problems: []string{err.Error()}}
		}
		return nil, fmt.Errorf("opening database %q: %w", path, err)
	}
	defer f.Close()
	return f.Check(), nil
}

// openBolt opens the file with bbolt, containing a panic (the file was
// checked, but changed since?) and closing the file then, which releases
// its lock.
func openBolt(path string, opts Options) (db *bolt.DB, file *os.File, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if file != nil {
				file.Close()
			}
			db, file, err = nil, nil, &DamagedError{Path: path, Problems: []string{fmt.Sprint(r)}}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         opts.OpenTimeout,
		InitialMmapSize: initialMmap,
		FreelistType:    bolt.FreelistMapType,
		// The freelist is written in every commit (a page or two: commits
		// free few pages), so that Open reads it instead of walking every
		// page again after CheckFile did; CheckFile checks it.
		NoFreelistSync: false,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("opening database %q: %w", path, err)
	}
	return db, file, nil
}

// init prepares an opened file: its layout (migrating version 1), the
// dictionaries, the live rollups (replaying what the last run did not
// flush) and the record count. A hostile but valid file gives a
// *DamagedError; unreadable derived data is rebuilt from the records.
func (s *Store) init(keys map[string]int) (err error) {
	defer s.contain(&err)()
	if err := s.db.Update(func(tx *bolt.Tx) error { return s.layout(tx) }); err != nil {
		return err
	}
	if err := s.migrate(); err != nil {
		return err
	}
	rebuild := false
	var logged uint64
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, d := range s.w.dicts() {
			if err := d.load(tx); err != nil {
				return &DamagedError{Path: s.path, Problems: []string{err.Error()}}
			}
		}
		// Before the log's frames and the builds are read: they hold
		// beacons of custom schemas.
		sc, _ := loadSchemas(tx)
		s.schemas.Store(sc)
		s.w.lastKey = lastKey(tx)
		s.installs.Store(uint64(s.w.installs.next - 1))
		s.outboxLen.Store(countOutbox(tx.Bucket(schema.Outbox)))
		s.live.Rolled = getUint(tx.Bucket(schema.Meta), schema.RolledKey)
		logged = getUint(tx.Bucket(schema.Meta), schema.WalKey)
		if n, ok := keys[string(schema.Records)]; ok {
			s.count.Store(int64(n))
		} else {
			s.count.Store(int64(getUint(tx.Bucket(schema.Meta), schema.CountKey)))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if bad, err := s.replay(); err != nil {
		return err
	} else if bad {
		rebuild = true
	}
	s.live.Last = time.Now()
	if rebuild {
		s.w.rebuildNeeded = "a stored rollup could not be read"
	}
	if err := s.openLog(logged); err != nil {
		return err
	}
	return s.readers.table.load(s)
}

// openLog opens the write-ahead log and stores what it holds that the file
// lacks (answered reports a crash kept from their commit), in transactions
// of at most wal.ReplayChunk frames. A log that cannot be opened, or is not
// ours, costs speed: every batch is then committed before its answer; and
// when it can be read safely (wal.OpenReadOnly) what it holds is stored
// all the same, with a warning naming the count.
func (s *Store) openLog(committed uint64) error {
	l, problems, err := wal.Open(s.path, committed, s.Schemas())
	if err != nil {
		s.storeReadOnly(committed, err)
		return nil
	}
	if len(problems) > 0 {
		s.notify("write-ahead log %s%s", l.Path, wal.ProblemList(problems))
	}
	s.w.log = l
	if err := s.replayAll(); err != nil {
		// Kept in the log: every later transaction tries again.
		s.notify("write-ahead log %s: storing what it holds failed, tried again with the next commit: %v", l.Path, err)
	}
	return nil
}

// replayAll applies what s.w.log holds that the file lacks, a chunk per
// transaction, each setting meta "wal" to its last frame: a crash between
// two loses nothing and stores nothing twice.
func (s *Store) replayAll() error {
	l := s.w.log
	for l.Unstored() > 0 {
		before := l.Committed
		if _, err := s.w.transact(time.Now(), false, false, indexPerCommit, nil); err != nil {
			return err
		}
		if l.Committed == before {
			return fmt.Errorf("no frame of %d applied", l.Unstored())
		}
		if testHookReplayed != nil {
			testHookReplayed()
		}
	}
	return nil
}

// testHookReplayed, set by tests only, runs after each transaction of
// replayAll.
var testHookReplayed func()

// storeReadOnly is openLog's path for a log wal.Open refused (why): one
// warning line, and what the file holds that the database lacks is read
// read-only and stored.
func (s *Store) storeReadOnly(committed uint64, why error) {
	l, problems, err := wal.OpenReadOnly(s.path, committed, s.Schemas())
	if err != nil || l.Unstored() == 0 {
		if l != nil {
			l.F.Close()
		}
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		var refused *wal.LogRefusedError
		if err != nil && !errors.As(err, &refused) {
			why = fmt.Errorf("%w; reading it failed too: %v", why, err)
		}
		s.warn("%v: answering reports after their commit", why)
		return
	}
	n := l.Unstored()
	s.w.log = l
	err = s.replayAll()
	left := l.Unstored()
	s.w.log = nil
	l.F.Close()
	if err != nil {
		s.warn("%v: answering reports after their commit; it holds %d answered reports the database lacks (frames), read read-only: %d stored, %d left in it, stored at the next open: %v%s",
			why, n, n-left, left, err, wal.ProblemList(problems))
		return
	}
	s.warn("%v: answering reports after their commit; it held %d answered reports the database lacked (frames), read read-only and stored%s",
		why, n, wal.ProblemList(problems))
}

// layout creates the buckets of a new file and checks those of an old one:
// each must be a bucket, and each meta key the writer updates a value. A
// version 1 file first loses its derived buckets (rebuilt by migrate) and
// is marked as migrating.
func (s *Store) layout(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(schema.Meta)
	if err != nil {
		return &DamagedError{Path: s.path, Problems: []string{fmt.Sprintf("bucket %q: %v", schema.Meta, err)}}
	}
	if meta.Bucket(schema.FormatKey) != nil {
		return &DamagedError{Path: s.path, Problems: []string{"meta \"format\" is a bucket, not a value"}}
	}
	switch f := getUint(meta, schema.FormatKey); {
	case f > schema.FormatVersion:
		return fmt.Errorf("database %q has format %d, newer than this statusengine's %d: use the newer binary", s.path, f, schema.FormatVersion)
	case f == 0 && tx.Bucket(schema.LegacyReports) != nil:
		if err := dropLegacy(tx); err != nil {
			return err
		}
		if err := putUint(meta, schema.FormatKey, migrating); err != nil {
			return err
		}
	case f == 0:
		if err := putUint(meta, schema.FormatKey, schema.FormatVersion); err != nil {
			return err
		}
	}
	for _, name := range schema.Buckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return &DamagedError{Path: s.path, Problems: []string{fmt.Sprintf("bucket %q: %v", name, err)}}
		}
	}
	mkeys := [][]byte{schema.CountKey, schema.RolledKey, schema.WalKey}
	for _, d := range s.w.dicts() {
		mkeys = append(mkeys, schema.IndexedKey(d.name))
	}
	for _, k := range mkeys {
		if meta.Bucket(k) != nil {
			return &DamagedError{Path: s.path, Problems: []string{fmt.Sprintf("meta %q is a bucket, not a value", k)}}
		}
		if v := meta.Get(k); v != nil && len(v) != 8 {
			return &DamagedError{Path: s.path, Problems: []string{fmt.Sprintf("meta %q is %d bytes, not 8", k, len(v))}}
		}
	}
	return nil
}

func lastKey(tx *bolt.Tx) uint64 {
	k, _ := tx.Bucket(schema.Records).Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return beUint64(k)
}
