package store

import (
	"hash/maphash"
	"slices"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/internal/bin"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// installTable holds what members needs of every installation row, in
// memory, indexed by number: its build and the hashes of its network and
// id, 24 bytes a row, together so that a lookup costs one cache miss. Counting installations over a year of days asks for
// each day's installations again (about 55,000 a day, 20 million lookups
// over a year of 1,000,000 installations): read from the bucket, one
// B-tree search and decode each, that took 3 s; from the table, an array
// index. Rows only ever append (dict.go) and never change once committed,
// so the table is extended with the rows committed since, never rebuilt;
// it is read in one pass of the bucket at Open.
//
// It holds at most maxTableRows rows (96 MiB); installations numbered
// past that are read from the bucket as before.
type installTable struct {
	mu sync.Mutex
	// rows[n-1] is row n's; its build is 0 when the row is missing or
	// cannot be read (builds are numbered from 1). The rows up to
	// len(rows) were read from the bucket.
	rows []tableRow
	// holes are the numbers up to len(rows) whose row is missing or
	// cannot be read (none in a sound file); replaced, never changed, so
	// a tableView's stays as it was.
	holes *roaring.Bitmap
}

// tableView is the installation table as one reader sees it.
type tableView struct {
	rows  []tableRow
	holes *roaring.Bitmap
}

// holds tells whether every number of set has its place in the view.
func (v tableView) holds(set *roaring.Bitmap) bool {
	return set.IsEmpty() || set.Maximum() <= uint32(len(v.rows))
}

// netsOf is the networks of the installations of set, up to NetworkCap:
// rows are read only until the cap is reached.
func (v tableView) netsOf(set *roaring.Bitmap) netSet {
	var ns netSet
	it := set.Iterator()
	for it.HasNext() && len(ns) < NetworkCap {
		if n := it.Next(); n > 0 && n <= uint32(len(v.rows)) && v.rows[n-1].build != 0 {
			ns.add(v.rows[n-1].net)
		}
	}
	return ns
}

// tableRow is one row of installTable.
type tableRow struct {
	build   uint32
	net, id uint64 // maphashes (hashSeed) of its resolver network (else its source network), of its id
}

// maxTableRows bounds installTable (24 bytes a row).
var maxTableRows uint32 = 4 << 20 // a variable for TestStepPathsAgree

// load reads the rows committed so far: at Open, so that the first
// reader after a start does not wait for it (0.11 s for 1,000,000 rows).
func (t *installTable) load(s *Store) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.read(s)
}

// view is the table's rows as of now, extended first when set holds a
// number past them. The slices are the table's: rows below their length
// are never written again, so they are read without the lock.
func (t *installTable) view(s *Store, set *roaring.Bitmap) (tableView, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var err error
	if !set.IsEmpty() && set.Maximum() > uint32(len(t.rows)) {
		err = t.read(s)
	}
	if t.holes == nil {
		t.holes = roaring.New()
	}
	return tableView{t.rows, t.holes}, err
}

// read extends the table with the rows committed since it was last read.
func (t *installTable) read(s *Store) error {
	if uint32(len(t.rows)) >= maxTableRows {
		return nil
	}
	if n := int(min(s.installs.Load(), uint64(maxTableRows))); cap(t.rows) < n {
		// Sized once for the rows numbered so far, not grown by doubling.
		t.rows = slices.Grow(t.rows, n-len(t.rows))
	}
	return s.view(func(tx *bolt.Tx) error { return t.extend(tx) })
}

// extend reads the rows after len(rows) that the transaction holds, up to
// maxTableRows.
func (t *installTable) extend(tx *bolt.Tx) error {
	c := tx.Bucket(schema.Installations).Cursor()
	rows := &inOrder{c: c}
	var resolvers *inOrder
	if b := tx.Bucket(schema.Resolvers); b != nil {
		resolvers = &inOrder{c: b.Cursor()}
	}
	var (
		r     memberRow
		holes []uint32
	)
	for rows.k, rows.v = c.Seek(numKey(uint32(len(t.rows)) + 1)); len(rows.k) == 4; rows.k, rows.v = c.Next() {
		n := numOf(rows.k)
		if n > maxTableRows {
			break
		}
		for uint32(len(t.rows)) < n { // a gap in the numbers: rows missing
			t.rows = append(t.rows, tableRow{})
			holes = append(holes, uint32(len(t.rows)))
		}
		if r.read(n, rows, resolvers) {
			t.rows[n-1] = r.tableRow
			holes = holes[:len(holes)-1]
		}
	}
	if len(holes) > 0 { // a new bitmap: views handed out keep theirs
		h := roaring.New()
		if t.holes != nil {
			h = t.holes.Clone()
		}
		h.AddMany(holes)
		t.holes = h
	}
	return nil
}

// memberRow is what members keeps of one installation row.
type memberRow struct {
	tableRow
	nb []byte
}

// read reads row n through rows (and its resolver through resolvers, when
// the file has the bucket), and says whether it is there.
func (r *memberRow) read(n uint32, rows, resolvers *inOrder) bool {
	v := rows.get(n)
	if v == nil {
		return false
	}
	build, network, id, err := record.InstallationParts(v)
	if err != nil || build == 0 {
		return false // builds are numbered from 1: a hole
	}
	r.nb = bin.AppendPrefix(r.nb[:0], network)
	if resolvers != nil {
		if rv := resolvers.get(n); rv != nil {
			r.nb = append(r.nb[:0], rv...)
		}
	}
	r.build, r.net, r.id = build, maphash.Bytes(hashSeed, r.nb), maphash.Bytes(hashSeed, id)
	return true
}
