package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// writer is the state of the single goroutine that writes the file: every
// transaction that changes it comes from here, so none of this needs a lock.
type writer struct {
	s *Store

	zones, places, builds, installs *dict

	limiter   sourceLimiter
	lastKey   uint64            // the highest record key stored
	nextFree  map[uint64]uint64 // see freeKey
	lastBatch int               // size of the last batch, see linger

	rebuild       *rebuild // a rollup rebuild under way
	rebuildNeeded string   // why one must start, "" when not

	log       *wal      // the write-ahead log (wal.go)
	held      *txn      // the transaction kept open across batches (commit)
	heldSince time.Time // when it began
	logged    []*Record // the records of the batch being logged
	// logBlocked stops logging after a commit failed for lack of space,
	// until one works.
	logBlocked bool
}

// origin is where a record comes from: it decides its key and whether the
// per-source limit applies.
type origin uint8

const (
	fromDNS    origin = iota // a live report: limited per source, keyed after the last
	fromImport               // an import: keyed by its receive time, listed for peers when late
	fromCopy                 // a peer's record, or a migrated one: keyed by its receive time
	fromLog                  // logged, then rolled back or cut by a crash: its logged key
)

func newWriter(s *Store) *writer {
	return &writer{
		s:        s,
		zones:    newDict(zonesBucket, 'z'),
		places:   newDict(placesBucket, 'p'),
		builds:   newDict(buildsBucket, 'b'),
		installs: newDict(installsBucket, 'i'),
		nextFree: map[uint64]uint64{},
	}
}

func (w *writer) dicts() []*dict { return []*dict{w.zones, w.places, w.builds, w.installs} }

// txn is one write transaction in the making.
type txn struct {
	tx         *bolt.Tx
	records    *bolt.Bucket // looked up once: Tx.Bucket costs a map lookup and more
	seen       *bolt.Bucket
	resolvers  *bolt.Bucket
	now        time.Time
	facts      []fact
	stored     int
	flush      bool // flush the live rollups in this transaction
	indexed    []bool
	lastKey    uint64 // writer.lastKey before, restored if the commit fails
	badRollup  bool
	changed    bool   // the fill wrote something besides records
	logTop     uint64 // the last frame of the log this transaction holds
	partial    bool   // it applies a chunk of the log's frames, more follow
	logBatches int    // batches it answered once logged
	err        error  // set by a fill that must not commit
}

// begin opens a write transaction and lets the dictionaries write their
// index slices first (see dict.indexStep). Records logged but rolled back
// (a failed commit) go into it first, with their keys.
func (w *writer) begin(now time.Time, idle bool, indexMax int) (*txn, error) {
	if err := w.s.Down(); err != nil {
		return nil, err // never enter bbolt again (goDown)
	}
	tx, err := w.s.db.Begin(true)
	if err != nil {
		return nil, err
	}
	t := &txn{tx: tx, now: now, lastKey: w.lastKey, records: tx.Bucket(recordsBucket), seen: tx.Bucket(seenBucket),
		resolvers: tx.Bucket(resolversBucket)}
	// Keys are receive times: inserts append, pack pages full. Seen keys
	// start with the client's clock, near now: mostly appends too, which the
	// default half-empty split would waste.
	t.records.FillPercent, t.seen.FillPercent, t.resolvers.FillPercent = 1, 0.9, 1
	for _, d := range w.dicts() {
		d.begin(tx)
		wrote, err := d.indexStep(tx, d.wantsIndexing(idle), indexMax)
		if err != nil {
			tx.Rollback()
			return nil, err
		}
		t.indexed = append(t.indexed, wrote)
	}
	if w.unstored() > 0 {
		if err := w.replayLog(t); err != nil {
			tx.Rollback()
			w.done(t, false, nil, false)
			return nil, err
		}
	}
	return t, nil
}

// replayLog applies to t records the log holds and the database lacks,
// a chunk of at most replayChunk (see unstoredRecords): when more follow,
// t.partial says so and t must commit before anything is logged.
func (w *writer) replayLog(t *txn) error {
	l := w.log
	recs, top, problems := l.unstoredRecords()
	stored := 0
	for _, rec := range recs {
		switch o, err := w.apply(t, rec, fromLog); o {
		case Failed:
			return err
		case Stored:
			stored++
		}
	}
	t.logTop = top
	t.partial = top < l.next-1
	l.replayed.recs += len(recs)
	l.replayed.stored += stored
	l.replayed.problems = append(l.replayed.problems, problems[:min(len(problems), 3-min(3, len(l.replayed.problems)))]...)
	l.replayed.bad += len(problems)
	l.replays++
	if !t.partial {
		// One line for the whole replay, however many transactions.
		r := l.replayed
		if r.bad > 0 || !l.told {
			more := ""
			if r.bad > len(r.problems) {
				more = fmt.Sprintf("; and %d more", r.bad-len(r.problems))
			}
			w.s.notify("write-ahead log %s: %d reports the database lacked, %d stored again (the rest were there), in %d transactions%s%s",
				l.path, r.recs, r.stored, r.txns+1, problemList(r.problems), more)
			l.told = true
		}
		l.replayed = replayStats{}
	} else {
		l.replayed.txns++
	}
	return nil
}

// apply stores one record in t, or says why not.
func (w *writer) apply(t *txn, rec *Record, from origin) (Outcome, error) {
	if err := rec.Validate(t.now); err != nil {
		return Rejected, err
	}
	tx := t.tx
	seen := makeSeenKey(rec, w.s.opts.NoEpochWindow)
	if seenIn(t.seen, seen, rec.Report.HasEpoch) {
		return Duplicate, nil
	}
	if from == fromDNS && !w.limiter.allow(w.s.policy.Load(), rec.LimitNet, t.now) {
		return Limited, nil
	}
	records := t.records
	k := uint64(rec.Received.UnixNano())
	switch from {
	case fromImport, fromCopy:
		// A peer's clock ahead of ours: stored as received now, so that
		// no key lies in the future (live keys follow the highest key).
		k = w.freeKey(records, min(k, uint64(t.now.UnixNano())))
	case fromLog:
		k = w.freeKey(records, rec.Key) // free: the commit holding it did not land
	default:
		k = max(k, w.lastKey+1) // live keys grow in commit order
	}
	rec.Key = k // what the log keeps
	received := time.Unix(0, int64(k))
	if k <= w.s.live.rolled {
		t.flush = true // an older record: its rollups go to the bucket with it
	}

	var r refs
	var err error
	if r.zone, err = w.zones.number([]byte(rec.Zone)); err != nil {
		return Failed, err
	}
	if rec.Geo != (zeroLocation) {
		if r.place, err = w.places.number(appendPlace(nil, &rec.Geo)); err != nil {
			return Failed, err
		}
	}
	head, id := codec.SplitID(rec.Report.Beacon)
	build, err := w.builds.number([]byte(head))
	if err != nil {
		return Failed, err
	}
	next := w.installs.next
	if r.install, err = w.installs.number(appendInstallation(nil, build, InstallNetwork(rec), id)); err != nil {
		return Failed, err
	}
	// A new installation: the network of the resolver that asked, for the
	// public floor (an ECS option is the sender's to choose).
	if rn := ResolverNetwork(rec); w.installs.next != next && rn.IsValid() {
		if err := t.resolvers.Put(numKey(r.install), appendPrefix(nil, rn)); err != nil {
			return Failed, err
		}
	}

	key := binary.BigEndian.AppendUint64(make([]byte, 0, 8), k)
	if err := records.Put(key, appendRecord(make([]byte, 0, 48), rec, r)); err != nil {
		return Failed, err
	}
	if err := t.seen.Put(append([]byte(nil), seen[:]...), []byte{}); err != nil {
		return Failed, err
	}
	f := fact{received: received, install: r.install, build: build, country: rec.Geo.Country, point: pointOf(&rec.Geo)}
	for _, pk := range periodsOf(received) {
		if w.s.live.hold(tx, pk) {
			t.badRollup = true
		}
	}
	if (from == fromImport || from == fromLog) && k <= w.lastKey {
		// Below a key peers may have passed: listed, so that they pull
		// it all the same (see imports.go). The log keeps no origin, but
		// replays in the order records were applied, so an imported
		// record is below the newest key again, and a live one is not
		// (live keys follow the newest); a peer's record replayed is
		// listed too, which costs its peers a duplicate.
		if err := listImport(tx, k); err != nil {
			return Failed, err
		}
	}
	t.facts = append(t.facts, f)
	t.stored++
	w.lastKey = max(w.lastKey, k)
	return Stored, nil
}

// finish adds what the transaction changes besides records (the count, a
// flush of the live rollups) and commits it, or rolls it back when it
// changed nothing. flushed tells whether it flushed, keys which periods.
func (w *writer) finish(t *txn, forceFlush bool) (flushed bool, keys []periodKey, err error) {
	tx := t.tx
	if t.err != nil {
		return false, nil, t.err
	}
	meta := tx.Bucket(metaBucket)
	if t.stored > 0 {
		if err := putUint(meta, countKey, getUint(meta, countKey)+uint64(t.stored)); err != nil {
			return false, nil, err
		}
	}
	live := w.s.live
	if t.flush || forceFlush || w.rebuild != nil || (t.stored > 0 || live.unflushed > 0) && live.due(t.now) {
		if keys, err = live.flush(tx, t.facts); err != nil {
			return false, nil, err
		}
		if err := putUint(meta, rolledKey, w.lastKey); err != nil {
			return false, nil, err
		}
		flushed = true
	}
	if w.log != nil && t.logTop > w.log.committed {
		if err := putUint(meta, walKey, t.logTop); err != nil {
			return false, nil, err
		}
		t.changed = true
	}
	wrote := t.stored > 0 || t.changed || flushed
	for _, ix := range t.indexed {
		wrote = wrote || ix
	}
	if !wrote {
		return false, nil, tx.Rollback() // duplicates only: no fsync
	}
	return flushed, keys, tx.Commit()
}

// done settles the writer's memory after finish: on success the facts go
// live and the dictionaries keep their new rows, on failure both forget.
func (w *writer) done(t *txn, flushed bool, keys []periodKey, ok bool) {
	for i, d := range w.dicts() {
		if !ok {
			d.abort()
		}
		d.indexCommitted(t.indexed[i], ok)
	}
	if !ok {
		w.lastKey = t.lastKey
		clear(w.nextFree)
		return
	}
	if w.log != nil {
		w.log.committedThrough(t.logTop)
	}
	live := w.s.live
	live.apply(t.facts, t.now)
	if flushed {
		live.flushed(keys, w.lastKey, t.now)
	}
	if changesPast(t.facts, t.now) {
		w.s.readers.closed.gen.Add(1) // the sums of past days kept for readers are stale
	}
	w.s.count.Add(int64(t.stored))
	w.s.installs.Store(uint64(w.installs.next - 1))
	if t.badRollup && w.rebuildNeeded == "" && w.rebuild == nil {
		w.rebuildNeeded = "a stored rollup could not be read"
	}
}

// transact runs one write transaction: fill adds to it, then it is
// finished and settled. A panic inside bbolt (a damaged page) takes the
// store down and leaves the transaction as it is: rolling it back would
// enter bbolt again (goDown).
func (w *writer) transact(now time.Time, idle, forceFlush bool, indexMax int, fill func(*txn)) (t *txn, err error) {
	defer w.s.contain(&err)()
	if w.held != nil {
		// Its records were answered: they go first. If that commit fails
		// they are in the log, and begin applies them again.
		w.settle()
	}
	if t, err = w.begin(now, idle, indexMax); err != nil {
		return nil, err
	}
	if testHookInTx != nil {
		testHookInTx()
	}
	if fill != nil {
		fill(t)
	}
	return t, w.end(t, forceFlush)
}

// testHookInTx, set by tests only, runs inside each write transaction
// (transact's, and each batch's in store) after it began: a panic there
// is a panic inside bbolt.
var testHookInTx func()

// end finishes t (its commit, or its rollback when finishing fails) and
// settles the writer's memory. After a panic it does nothing: the store
// goes down (contain) and bbolt is not entered again.
func (w *writer) end(t *txn, forceFlush bool) error {
	if err := w.s.Down(); err != nil {
		w.done(t, false, nil, false) // the store went down while t was held
		return err
	}
	flushed, keys, err := w.finish(t, forceFlush)
	if err != nil && t.tx.DB() != nil { // not committed: finishing failed
		t.tx.Rollback()
	}
	w.done(t, flushed, keys, err == nil)
	return err
}

// freeKey finds the first unused key from t on. Imports carry whole-second
// times, so many reports can share one: nextFree remembers where each such
// run ended, keeping the probe short.
func (w *writer) freeKey(records *bolt.Bucket, t uint64) uint64 {
	k := max(t, w.nextFree[t])
	var b [8]byte
	for binary.BigEndian.PutUint64(b[:], k); records.Get(b[:]) != nil; binary.BigEndian.PutUint64(b[:], k) {
		k++
	}
	if k != t {
		if len(w.nextFree) > 4096 {
			clear(w.nextFree)
		}
		w.nextFree[t] = k + 1
	}
	return k
}

// changesPast tells whether facts count in a day before today's.
func changesPast(facts []fact, now time.Time) bool {
	today := dayOf(now)
	for i := range facts {
		if dayOf(facts[i].received) < today {
			return true
		}
	}
	return false
}
