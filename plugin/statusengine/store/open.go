package store

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
)

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

// bucketsV2 are the buckets of this layout (see the package documentation).
var bucketsV2 = [][]byte{recordsBucket, seenBucket, zonesBucket, placesBucket, buildsBucket, installsBucket,
	indexBucket, rollupsBucket, metaBucket, peersBucket, snapshotsBucket}

var (
	recordsBucket  = []byte("records")
	zonesBucket    = []byte("zones")
	placesBucket   = []byte("places")
	buildsBucket   = []byte("builds")
	installsBucket = []byte("installations")
	// resolversBucket came after format 2's first files: Open adds it, and
	// Check does not ask for it (an installation without a row counts its
	// source network).
	resolversBucket = []byte("resolvers")
	metaBucket      = []byte("meta")

	formatKey = []byte("format")
	countKey  = []byte("count")
)

// formatVersion is this layout's, in meta "format". Version 1 (no format
// key, reports in bucket "reports") is migrated at open.
const formatVersion = 2

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
	db, err := openBolt(path, opts)
	if err != nil {
		return nil, err
	}
	s := &Store{
		db:            db,
		path:          path,
		opts:          opts,
		queue:         make(chan *pending, opts.QueueSize),
		jobs:          make(chan job),
		quit:          make(chan struct{}),
		done:          make(chan struct{}),
		policyChanged: make(chan struct{}, 1),
		seenCache:     &recentSeen{},
		live:          newLive(),
	}
	s.w = newWriter(s)
	if err := s.init(keys); err != nil {
		db.Close()
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
func openBolt(path string, opts Options) (db *bolt.DB, err error) {
	var file *os.File
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if file != nil {
				file.Close()
			}
			db, err = nil, &DamagedError{Path: path, Problems: []string{fmt.Sprint(r)}}
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
		return nil, fmt.Errorf("opening database %q: %w", path, err)
	}
	return db, nil
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
		s.w.lastKey = lastKey(tx)
		s.installs.Store(uint64(s.w.installs.next - 1))
		s.live.rolled = getUint(tx.Bucket(metaBucket), rolledKey)
		logged = getUint(tx.Bucket(metaBucket), walKey)
		if n, ok := keys[string(recordsBucket)]; ok {
			s.count.Store(int64(n))
		} else {
			s.count.Store(int64(getUint(tx.Bucket(metaBucket), countKey)))
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
	s.live.last = time.Now()
	if rebuild {
		s.w.rebuildNeeded = "a stored rollup could not be read"
	}
	return s.openLog(logged)
}

// openLog opens the write-ahead log and stores what it holds that the file
// lacks (answered reports a crash kept from their commit). A log that
// cannot be opened costs speed, not reports: every batch is then
// committed before its answer.
func (s *Store) openLog(committed uint64) error {
	l, problems, err := openWAL(s.path, committed)
	if err != nil {
		s.notify("%v: answering reports after their commit", err)
		return nil
	}
	if len(problems) > 0 {
		s.notify("write-ahead log %s%s", l.path, problemList(problems))
	}
	s.w.log = l
	if l.unstored() > 0 {
		if _, err := s.w.transact(time.Now(), false, false, indexPerCommit, nil); err != nil {
			// Kept in the log: every later transaction tries again.
			s.notify("write-ahead log %s: storing what it holds failed, tried again with the next commit: %v", l.path, err)
		}
	}
	return nil
}

// layout creates the buckets of a new file and checks those of an old one:
// each must be a bucket, and each meta key the writer updates a value. A
// version 1 file first loses its derived buckets (rebuilt by migrate) and
// is marked as migrating.
func (s *Store) layout(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(metaBucket)
	if err != nil {
		return &DamagedError{Path: s.path, Problems: []string{fmt.Sprintf("bucket %q: %v", metaBucket, err)}}
	}
	if meta.Bucket(formatKey) != nil {
		return &DamagedError{Path: s.path, Problems: []string{"meta \"format\" is a bucket, not a value"}}
	}
	switch f := getUint(meta, formatKey); {
	case f > formatVersion:
		return fmt.Errorf("database %q has format %d, newer than this statusengine's %d: use the newer binary", s.path, f, formatVersion)
	case f == 0 && tx.Bucket(legacyReports) != nil:
		if err := dropLegacy(tx); err != nil {
			return err
		}
		if err := putUint(meta, formatKey, migrating); err != nil {
			return err
		}
	case f == 0:
		if err := putUint(meta, formatKey, formatVersion); err != nil {
			return err
		}
	}
	for _, name := range append(bucketsV2, resolversBucket, importsBucket) {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return &DamagedError{Path: s.path, Problems: []string{fmt.Sprintf("bucket %q: %v", name, err)}}
		}
	}
	mkeys := [][]byte{countKey, rolledKey, walKey}
	for _, d := range s.w.dicts() {
		mkeys = append(mkeys, []byte("indexed."+d.name))
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
	k, _ := tx.Bucket(recordsBucket).Cursor().Last()
	if len(k) != 8 {
		return 0
	}
	return beUint64(k)
}
