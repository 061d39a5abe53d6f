package store

// One durable commit, top to bottom. The writer goroutine (loop.go) hands
// each batch of queued reports to commit: store applies them to the
// transaction it holds open (hold, begin: a new one applies the write-ahead
// log's unstored frames first, replayLog), one record at a time (apply:
// validate, de-duplicate, number in the dictionaries, put), then either
// appends the stored records to the log and answers (the transaction stays
// open), or settles: end finishes the transaction (finish: the rollups,
// the index, the commit with its fsync) and done settles the writer's
// memory with what the commit made durable. transact runs one whole
// transaction for the other writes (imports, peers' cursors, retention).

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/internal/bin"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
)

// commitEvery bounds how long the writer keeps a transaction open while
// reports keep coming: a commit's pages, fsyncs and tree spill are paid
// once per commitEvery instead of once per batch (etcd's backend commits
// every 100 ms too). Readers see a report at most this late. When no report
// comes for quietCommit, the open transaction commits at once.
const (
	commitEvery = 100 * time.Millisecond
	quietCommit = 2 * time.Millisecond
)

// commit stores a batch and answers each report: once the transaction
// holding it has committed, or, while more reports wait, once its stored
// records are in the write-ahead log (see wal.go and store).
func (w *writer) commit(batch []*pending) {
	s := w.s
	out := make([]result, len(batch))
	err := s.Down()
	if err == nil {
		err = s.noSpace()
	}
	start := time.Now()
	var logged, settled bool
	if err == nil {
		policy := s.policy.Load()
		if policy != nil {
			s.db.MaxSize = policy.MaxSize
		}
		logged, settled, err = w.store(start, batch, out)
	}
	if !settled && s.opts.OnCommit != nil { // settle tells of its commits
		s.opts.OnCommit(CommitInfo{Path: s.path, Duration: time.Since(start), Batch: len(batch),
			Records: s.count.Load(), Logged: logged, Unstored: w.unstored(), Err: err})
	}
	s.answer(batch, out, err)
}

// store applies batch to the held transaction (begun if there is none)
// and makes it durable: by committing when reports come slowly (the first
// batch of the transaction is small and nothing else is queued: a client
// that has its answers reads its reports back), when the transaction is
// old, or when the log cannot take the batch; else by logging the records
// it stored, keeping the transaction open. logged and settled tell which.
func (w *writer) store(now time.Time, batch []*pending, out []result) (logged, settled bool, err error) {
	defer w.s.contain(&err)()
	defer func() {
		if r := recover(); r != nil {
			w.drop()
			panic(r) // for contain
		}
	}()
	t, err := w.hold(now)
	if err != nil {
		return false, false, err
	}
	if testHookInTx != nil {
		testHookInTx()
	}
	first := t.logBatches == 0
	recs := w.logged[:0]
	for i, p := range batch {
		o, e := w.apply(t, p.rec, p.origin)
		out[i] = result{o, e}
		if o == Stored {
			recs = append(recs, p.rec)
		}
	}
	w.logged = recs[:0]
	slow := first && len(batch) < lingerBusy && len(w.s.queue) == 0
	if w.log == nil || w.logBlocked || slow || t.partial || now.Sub(w.heldSince) >= commitEvery {
		return false, true, w.settle()
	}
	if len(recs) > 0 {
		top, err := w.log.Append(recs)
		if err != nil {
			// The log is full, or failing (a full disk): commit, as
			// without it.
			return false, true, w.settle()
		}
		t.logTop = top
	}
	t.logBatches++
	return true, false, nil
}

// hold returns the held transaction, beginning it when there is none.
func (w *writer) hold(now time.Time) (*txn, error) {
	if w.held != nil {
		return w.held, nil
	}
	t, err := w.begin(now, false, indexPerCommit)
	if err != nil {
		return nil, err
	}
	w.held, w.heldSince = t, now
	return t, nil
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
	t := &txn{tx: tx, now: now, lastKey: w.lastKey, records: tx.Bucket(schema.Records), seen: tx.Bucket(schema.Seen),
		resolvers: tx.Bucket(schema.Resolvers), outbox: tx.Bucket(schema.Outbox)}
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
// a chunk of at most wal.ReplayChunk (see UnstoredRecords): when more follow,
// t.partial says so and t must commit before anything is logged.
func (w *writer) replayLog(t *txn) error {
	l := w.log
	recs, top, problems := l.UnstoredRecords()
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
	t.partial = top < l.Next-1
	l.Replayed.Recs += len(recs)
	l.Replayed.Stored += stored
	l.Replayed.Problems = append(l.Replayed.Problems, problems[:min(len(problems), 3-min(3, len(l.Replayed.Problems)))]...)
	l.Replayed.Bad += len(problems)
	l.Replays++
	if !t.partial {
		// One line for the whole replay, however many transactions.
		r := l.Replayed
		if r.Bad > 0 || !l.Told {
			more := ""
			if r.Bad > len(r.Problems) {
				more = fmt.Sprintf("; and %d more", r.Bad-len(r.Problems))
			}
			w.s.notify("write-ahead log %s: %d reports the database lacked, %d stored again (the rest were there), in %d transactions%s%s",
				l.Path, r.Recs, r.Stored, r.Txns+1, wal.ProblemList(r.Problems), more)
			l.Told = true
		}
		l.Replayed = wal.ReplayStats{}
	} else {
		l.Replayed.Txns++
	}
	return nil
}

// apply stores one record in t, or says why not.
func (w *writer) apply(t *txn, rec *record.Record, from origin) (Outcome, error) {
	sc := w.s.Schemas()
	if err := rec.Validate(t.now, sc); err != nil {
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
	if k <= w.s.live.Rolled {
		t.flush = true // an older record: its rollups go to the bucket with it
	}

	var r record.Refs
	var err error
	if r.Zone, err = w.zones.number([]byte(rec.Zone)); err != nil {
		return Failed, err
	}
	if rec.Geo != (zeroLocation) {
		if r.Place, err = w.places.number(record.AppendPlace(nil, &rec.Geo)); err != nil {
			return Failed, err
		}
	}
	var row []byte
	var id string
	if rec.Report.Format == codec.FormatSchema {
		// Validate found the zone's custom schema: its head, under the zone.
		var head string
		head, id = sc.Of(rec.Zone).SplitID(rec.Report.Beacon)
		row = buildRow(rec.Zone, true, head)
	} else {
		var head string
		head, id = codec.SplitID(rec.Report.Beacon)
		row = []byte(head)
	}
	build, err := w.builds.number(row)
	if err != nil {
		return Failed, err
	}
	next := w.installs.next
	if r.Install, err = w.installs.number(record.AppendInstallation(nil, build, record.InstallNetwork(rec), id)); err != nil {
		return Failed, err
	}
	// A new installation: the network of the resolver that asked, for the
	// public floor (an ECS option is the sender's to choose).
	if rn := record.ResolverNetwork(rec); w.installs.next != next && rn.IsValid() {
		if err := t.resolvers.Put(numKey(r.Install), bin.AppendPrefix(nil, rn)); err != nil {
			return Failed, err
		}
	}

	key := binary.BigEndian.AppendUint64(make([]byte, 0, 8), k)
	if err := records.Put(key, record.Append(make([]byte, 0, 48), rec, r)); err != nil {
		return Failed, err
	}
	if err := t.seen.Put(append([]byte(nil), seen[:]...), []byte{}); err != nil {
		return Failed, err
	}
	f := geoFact(rollup.Fact{Received: received, Install: r.Install, Build: build, Country: rec.Geo.Country, Point: rollup.PointKey(&rec.Geo)},
		rec.Report.Format == codec.FormatSchema, r.Zone)
	for _, pk := range rollup.KeysOf(received) {
		if w.s.live.Hold(tx, pk) {
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
	if from != fromCopy {
		// Own records wait in the outbox, listed in this transaction
		// (finish), for the stream (outbox.go); a peer's replayed from the
		// log costs a duplicate. Without an outbox only the count is kept.
		t.own++
		if t.outbox != nil {
			t.listed = append(t.listed, k)
		}
	}
	t.facts = append(t.facts, f)
	t.stored++
	w.lastKey = max(w.lastKey, k)
	return Stored, nil
}

// settle commits the held transaction, if any, and tells OnCommit. When
// that fails, what it held is rolled back: the records it logged are
// applied again by the next transaction (begin), the others fail; after a
// lack of space nothing more is logged until a commit works, so the log
// holds at most one transaction's reports the file could not take.
func (w *writer) settle() (err error) {
	t := w.held
	if t == nil {
		return nil
	}
	w.held = nil
	start := time.Now()
	err = w.end(t, false)
	s := w.s
	s.noteSpace(err, time.Now())
	w.logBlocked = isSpaceError(err)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(CommitInfo{Path: s.path, Duration: time.Since(start), Batch: t.stored,
			Records: s.count.Load(), Unstored: w.unstored(), Err: err})
	}
	return err
}

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

// finish adds what the transaction changes besides records (the count, a
// flush of the live rollups) and commits it, or rolls it back when it
// changed nothing. flushed tells whether it flushed, keys which periods.
func (w *writer) finish(t *txn, forceFlush bool) (flushed bool, keys []rollup.Key, err error) {
	tx := t.tx
	if t.err != nil {
		return false, nil, t.err
	}
	meta := tx.Bucket(schema.Meta)
	if t.stored > 0 {
		if err := putUint(meta, schema.CountKey, getUint(meta, schema.CountKey)+uint64(t.stored)); err != nil {
			return false, nil, err
		}
		if err := listOutbox(t); err != nil {
			return false, nil, err
		}
	}
	live := w.s.live
	if t.flush || forceFlush || w.rebuild != nil || (t.stored > 0 || live.Unflushed > 0) && live.Due(t.now) {
		if keys, err = live.Flush(tx, t.facts); err != nil {
			return false, nil, err
		}
		if err := putUint(meta, schema.RolledKey, w.lastKey); err != nil {
			return false, nil, err
		}
		flushed = true
	}
	if w.log != nil && t.logTop > w.log.Committed {
		if err := putUint(meta, schema.WalKey, t.logTop); err != nil {
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
func (w *writer) done(t *txn, flushed bool, keys []rollup.Key, ok bool) {
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
		w.log.CommittedThrough(t.logTop)
	}
	live := w.s.live
	live.Apply(t.facts, t.now)
	if flushed {
		live.Flushed(keys, w.lastKey, t.now)
	}
	if changesPast(t.facts, t.now) {
		w.s.readers.closed.gen.Add(1) // the sums of past days kept for readers are stale
	}
	w.s.count.Add(int64(t.stored))
	w.s.own.Add(uint64(t.own))
	w.s.outboxLen.Add(int64(len(t.listed)))
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

// drop forgets the held transaction after a panic inside bbolt, or when
// the store is down: it is not rolled back, which would enter bbolt again
// (goDown); its records logged stay in the log, for salvage.
func (w *writer) drop() {
	if t := w.held; t != nil {
		w.held = nil
		w.done(t, false, nil, false)
	}
}

// sync commits the held transaction, or what the log holds that the file
// lacks (a failed commit's records: begin applies them), through a held
// transaction so that settle tells of it.
func (w *writer) sync() error {
	if w.held == nil && (w.unstored() == 0 || w.s.Down() != nil) {
		return nil
	}
	if _, err := w.hold(time.Now()); err != nil {
		return err
	}
	return w.settle()
}

// unstored is the number of reports the log holds that the file lacks.
func (w *writer) unstored() int {
	if w.log == nil {
		return 0
	}
	return w.log.Unstored()
}
