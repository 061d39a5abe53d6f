package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// A dict numbers the distinct values of one kind (zones, places, builds,
// installations) from 1 in order of first sight. Its rows bucket maps
// number -> value and only ever appends; records hold the numbers.
//
// Finding the number of a value goes through the index bucket, keyed by the
// dict's tag and the first 8 bytes of the value's SHA-256 (a collision with
// a stored value takes about 2^64 tries, so it is not checked). Writing every
// new value into that index at once would put one random B-tree insert per
// new installation on the commit path; instead the rows past the meta
// watermark indexed.<name> are held in recent, in memory, and written to the
// index sorted, in slices riding on later commits (see indexStep), once
// recent is large or the writer is idle. A bounded hot cache keeps the
// numbers looked up last. Only the writer goroutine uses a dict.
type dict struct {
	name    string // of the rows bucket; "indexed."+name is the meta watermark
	tag     byte   // first byte of its index keys
	rows    []byte
	next    uint32            // number of the next new value
	indexed uint32            // rows 1..indexed are in the index bucket
	recent  map[uint64]uint32 // rows after indexed: hash -> number
	hot     hotCache
	staged  []uint64     // hashes this transaction added to recent, undone if it fails
	first   uint32       // next when the transaction began
	rowsB   *bolt.Bucket // of the transaction
	indexB  *bolt.Bucket

	flushing []indexEntry // the part of recent being written to the index, sorted
	flushed  int          // entries of flushing already written
	stepEnd  int          // flushed once the transaction of the last step commits
}

type indexEntry struct {
	hash uint64
	n    uint32
}

var errDictFull = errors.New("dictionary numbers exhausted")

// Sizes of a dict's memory.
const (
	// maxRecent bounds the rows a dict holds outside the index: past it the
	// writer starts writing them to the index. About 40 bytes each.
	maxRecent = 1 << 19
	// hotSize bounds each of the hot cache's two generations.
	hotSize = 1 << 14
	// indexPerCommit bounds the index entries one transaction writes.
	indexPerCommit = 2048
)

func newDict(rows []byte, tag byte) *dict {
	return &dict{name: string(rows), tag: tag, rows: rows, recent: map[uint64]uint32{}, next: 1}
}

func hashValue(v []byte) uint64 {
	h := sha256.Sum256(v)
	return binary.BigEndian.Uint64(h[:8])
}

func (d *dict) indexKey(h uint64) []byte {
	k := make([]byte, 9)
	k[0] = d.tag
	binary.BigEndian.PutUint64(k[1:], h)
	return k
}

// load reads the dict's state at open: the next number, the watermark, and
// the rows after it (into recent).
func (d *dict) load(tx *bolt.Tx) error {
	rows := tx.Bucket(d.rows)
	if k, _ := rows.Cursor().Last(); k != nil {
		if len(k) != 4 {
			return errors.New(d.name + ": bad row key")
		}
		n := binary.BigEndian.Uint32(k)
		if n == math.MaxUint32 {
			return errDictFull
		}
		d.next = n + 1
	}
	d.indexed = uint32(min(getUint(tx.Bucket(schema.Meta), schema.IndexedKey(d.name)), uint64(d.next-1)))
	c := rows.Cursor()
	for k, v := c.Seek(numKey(d.indexed + 1)); k != nil; k, v = c.Next() {
		if len(k) != 4 {
			return errors.New(d.name + ": bad row key")
		}
		d.recent[hashValue(v)] = binary.BigEndian.Uint32(k)
	}
	return nil
}

// begin starts a transaction's use of the dict.
func (d *dict) begin(tx *bolt.Tx) {
	d.staged = d.staged[:0]
	d.first = d.next
	d.rowsB, d.indexB = tx.Bucket(d.rows), tx.Bucket(schema.Index)
	d.rowsB.FillPercent = 1 // numbers only grow: pack pages full
}

// number returns the number of v, adding v as a new row when it is new.
func (d *dict) number(v []byte) (uint32, error) {
	if n, ok := d.hot.get(v); ok {
		return n, nil
	}
	h := hashValue(v)
	if n, ok := d.recent[h]; ok {
		d.hot.put(v, n)
		return n, nil
	}
	if iv := d.indexB.Get(d.indexKey(h)); len(iv) == 4 {
		n := binary.BigEndian.Uint32(iv)
		d.hot.put(v, n)
		return n, nil
	}
	if d.next == math.MaxUint32 {
		return 0, errDictFull
	}
	n := d.next
	if err := d.rowsB.Put(numKey(n), v); err != nil {
		return 0, err
	}
	d.next++
	d.recent[h] = n
	d.staged = append(d.staged, h)
	return n, nil
}

// abort forgets what a failed transaction added.
func (d *dict) abort() {
	for _, h := range d.staged {
		delete(d.recent, h)
	}
	d.staged = d.staged[:0]
	d.next = d.first
	d.hot.clear() // it may hold numbers of rows that were rolled back
}

// wantsIndexing tells whether the dict should start writing recent to the
// index: it is large, or idle says the writer has time.
func (d *dict) wantsIndexing(idle bool) bool {
	return d.flushing == nil && (len(d.recent) >= maxRecent || (idle && len(d.recent) > 0))
}

// indexStep writes up to limit entries of recent to the index in tx, starting
// a new round when none is under way and start says so; it must come before
// number in a transaction, so that a round never holds uncommitted rows. It
// returns whether it wrote anything. The written entries leave recent, and
// the watermark moves, only when indexCommitted reports the round's last
// slice committed.
func (d *dict) indexStep(tx *bolt.Tx, start bool, limit int) (bool, error) {
	if d.flushing == nil {
		if !start || len(d.recent) == 0 {
			return false, nil
		}
		d.flushing = make([]indexEntry, 0, len(d.recent))
		for h, n := range d.recent {
			d.flushing = append(d.flushing, indexEntry{h, n})
		}
		slices.SortFunc(d.flushing, func(a, b indexEntry) int { return cmpUint64(a.hash, b.hash) })
		d.flushed = 0
	}
	b := tx.Bucket(schema.Index)
	b.FillPercent = 0.9
	end := min(d.flushed+limit, len(d.flushing))
	d.stepEnd = end
	for _, e := range d.flushing[d.flushed:end] {
		if err := b.Put(d.indexKey(e.hash), numKey(e.n)); err != nil {
			return false, err
		}
	}
	if end == len(d.flushing) {
		// The round's last slice: entries of recent added since the
		// round began have numbers above all of these.
		var top uint32
		for _, e := range d.flushing {
			top = max(top, e.n)
		}
		if err := putUint(tx.Bucket(schema.Meta), schema.IndexedKey(d.name), uint64(top)); err != nil {
			return false, err
		}
	}
	return true, nil
}

// indexCommitted is told that the transaction of the last indexStep
// committed (ok) or not.
func (d *dict) indexCommitted(wrote, ok bool) {
	if !wrote || d.flushing == nil {
		return
	}
	if !ok {
		d.flushing = nil // a later round starts over; index puts repeat harmlessly
		return
	}
	d.flushed = d.stepEnd
	if d.flushed < len(d.flushing) {
		return
	}
	var top uint32
	for _, e := range d.flushing {
		delete(d.recent, e.hash)
		top = max(top, e.n)
	}
	d.indexed = top
	d.flushing = nil
}

func cmpUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hotCache maps the values looked up last to their numbers, keyed by the
// value itself, so a hit costs no SHA-256. It is a bounded map in two
// generations: when the newer one is full it becomes the older, and the
// older is dropped.
type hotCache struct {
	cur, old map[string]uint32
}

func (c *hotCache) get(v []byte) (uint32, bool) {
	if n, ok := c.cur[string(v)]; ok {
		return n, true
	}
	if n, ok := c.old[string(v)]; ok {
		c.put(v, n)
		return n, true
	}
	return 0, false
}

func (c *hotCache) put(v []byte, n uint32) {
	if c.cur == nil {
		c.cur = make(map[string]uint32, 64)
	}
	if len(c.cur) >= hotSize {
		c.old, c.cur = c.cur, make(map[string]uint32, hotSize)
	}
	c.cur[string(v)] = n
}

func (c *hotCache) clear() { c.cur, c.old = nil, nil }
