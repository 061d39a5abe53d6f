// Package boltfile reads bbolt files without bbolt, checking every access.
// bbolt trusts its file: a damaged page makes it panic (some of its panics
// happen in goroutines it starts, where no caller can recover them) or read
// outside its map (SIGSEGV, or SIGBUS past the end of a truncated file), and
// the process dies. So a file is checked here before bbolt maps it, and a
// damaged file is read here, page by page, to salvage what is left.
//
// The meta pages are read with pread; the other pages from a read-only map
// of the file (unix.Mmap), every access checked against the map's length,
// never past it. The one fault left, the file shrinking while it is read
// (SIGBUS), panics the reading goroutine instead of killing the process
// (debug.SetPanicOnFault), and the panic becomes an error.
//
// It knows bbolt's file format version 2 on little-endian machines: meta
// pages, branch and leaf pages, overflow pages, inline buckets and the
// freelist page.
package boltfile

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// Format constants of bbolt (internal/common).
const (
	magic          = 0xED0CDAED
	version        = 2
	headerSize     = 16 // page: id 8, flags 2, count 2, overflow 4
	elemSize       = 16 // branch: pos 4, ksize 4, pgid 8; leaf: flags 4, pos 4, ksize 4, vsize 4
	bucketHeader   = 16 // root pgid 8, sequence 8
	noFreelist     = ^uint64(0)
	branchFlag     = 0x01
	leafFlag       = 0x02
	metaFlag       = 0x04
	freelistFlag   = 0x10
	bucketLeafFlag = 0x01
	metaSize       = 64 // magic, version, page size, flags, root (16), freelist, pgid, txid, checksum
	maxDepth       = 64
	maxProblems    = 100
)

// ErrNotBolt says a file holds no valid bbolt meta page.
var ErrNotBolt = errors.New("not a bbolt database (no valid meta page)")

// File is a bbolt file open for reading. Its pages are read from a
// read-only map of the file, every access checked against the map's length;
// should the file shrink while it is read (the only way to fault on such a
// map: SIGBUS), the reading goroutine panics instead of dying
// (debug.SetPanicOnFault) and the panic becomes an error.
type File struct {
	f        *os.File
	size     int64
	data     []byte // the map, len == size
	pageSize int
	meta     meta
}

type meta struct {
	pageSize                   uint32
	root, freelist, pgid, txid uint64
}

// Open opens path and reads its meta pages; it never writes.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	bf := &File{f: f, size: info.Size()}
	if err := bf.readMeta(); err != nil {
		f.Close()
		return nil, err
	}
	if bf.size > 0 {
		if bf.size != int64(int(bf.size)) {
			f.Close()
			return nil, errors.New("file too large to map")
		}
		if bf.data, err = unix.Mmap(int(f.Fd()), 0, int(bf.size), unix.PROT_READ, unix.MAP_SHARED); err != nil {
			f.Close()
			return nil, fmt.Errorf("mapping %s: %w", path, err)
		}
	}
	return bf, nil
}

// Close unmaps and closes the file.
func (f *File) Close() error {
	if f.data != nil {
		unix.Munmap(f.data)
		f.data = nil
	}
	return f.f.Close()
}

// guard turns a fault while reading the map into an error; defer it:
//
//	defer f.guard(&err)()
func guard(err *error) func() {
	old := debug.SetPanicOnFault(true)
	return func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			*err = fmt.Errorf("reading the file failed (did it change?): %v", r)
		}
	}
}

// PageSize is the file's page size.
func (f *File) PageSize() int { return f.pageSize }

// HighWater is the number of pages the meta page says the file holds.
func (f *File) HighWater() uint64 { return f.meta.pgid }

// readMeta picks, as bbolt does, the valid meta page with the higher
// transaction id. The page size is the first valid meta's, else one of the
// sizes bbolt can write.
func (f *File) readMeta() error {
	var best *meta
	try := func(off int64) *meta {
		var b [headerSize + metaSize]byte
		if n, _ := f.f.ReadAt(b[:], off); n != len(b) {
			return nil
		}
		return parseMeta(b[headerSize:])
	}
	m0 := try(0)
	sizes := []int{4096, 1024, 2048, 8192, 16384, 32768, 65536}
	if m0 != nil {
		sizes = []int{int(m0.pageSize)}
		best = m0
	}
	for _, ps := range sizes {
		if m1 := try(int64(ps)); m1 != nil && int(m1.pageSize) == ps {
			if best == nil || m1.txid > best.txid {
				best = m1
			}
			break
		}
	}
	if best == nil {
		return ErrNotBolt
	}
	f.meta, f.pageSize = *best, int(best.pageSize)
	return nil
}

func parseMeta(b []byte) *meta {
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != magic || le.Uint32(b[4:]) != version {
		return nil
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != le.Uint64(b[56:]) {
		return nil
	}
	m := &meta{pageSize: le.Uint32(b[8:]), root: le.Uint64(b[16:]), freelist: le.Uint64(b[32:]),
		pgid: le.Uint64(b[40:]), txid: le.Uint64(b[48:])}
	if m.pageSize < 512 || m.pageSize > 1<<16 || m.pageSize&(m.pageSize-1) != 0 {
		return nil
	}
	return m
}

// page is one page read from the file, overflow pages included.
type page struct {
	id    uint64
	flags uint16
	count int
	buf   []byte // the whole page, header included
}

// readPage returns page id, checking that it lies below the high-water
// mark and inside the file, and that it says it is page id.
func (f *File) readPage(id uint64) (*page, error) {
	hw := f.meta.pgid
	if id < 2 || id >= hw {
		return nil, fmt.Errorf("page %d: out of range [2, %d)", id, hw)
	}
	ps := uint64(f.pageSize)
	if (id+1)*ps > uint64(len(f.data)) {
		return nil, fmt.Errorf("page %d: past the end of the file", id)
	}
	hdr := f.data[id*ps : id*ps+headerSize]
	le := binary.LittleEndian
	if got := le.Uint64(hdr[0:]); got != id {
		return nil, fmt.Errorf("page %d: says it is page %d", id, got)
	}
	overflow := uint64(le.Uint32(hdr[12:]))
	if id+overflow >= hw || (id+overflow+1)*ps > uint64(len(f.data)) {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the high-water mark %d or the file", id, overflow, hw)
	}
	return &page{id: id, flags: le.Uint16(hdr[8:]), count: int(le.Uint16(hdr[10:])), buf: f.data[id*ps : (id+overflow+1)*ps]}, nil
}

// elem is one element of a branch or leaf page.
type elem struct {
	key, value []byte // value: leaves only
	child      uint64 // branches only
	bucket     bool   // a leaf element that is a bucket
}

// table checks that count elements fit page buf and that its flags are a
// branch's or a leaf's.
func table(id uint64, flags uint16, count int, buf []byte) error {
	if flags != branchFlag && flags != leafFlag {
		return fmt.Errorf("page %d: flags %#x are neither branch nor leaf", id, flags)
	}
	if headerSize+count*elemSize > len(buf) {
		return fmt.Errorf("page %d: %d elements do not fit", id, count)
	}
	return nil
}

// elemAt reads element i of a page whose table was checked: it never
// allocates, the slices point into buf.
func elemAt(id uint64, flags uint16, buf []byte, i int) (elem, error) {
	le := binary.LittleEndian
	off := headerSize + i*elemSize
	e := buf[off : off+elemSize]
	var out elem
	var pos, ksize, vsize uint64
	if flags == branchFlag {
		pos, ksize = uint64(le.Uint32(e[0:])), uint64(le.Uint32(e[4:]))
		out.child = le.Uint64(e[8:])
	} else {
		out.bucket = le.Uint32(e[0:])&bucketLeafFlag != 0
		pos, ksize, vsize = uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
	}
	start := uint64(off) + pos
	if start+ksize+vsize > uint64(len(buf)) {
		return out, fmt.Errorf("page %d: element %d points outside the page", id, i)
	}
	out.key = buf[start : start+ksize]
	if flags == leafFlag {
		out.value = buf[start+ksize : start+ksize+vsize]
	}
	return out, nil
}

// walker walks bucket trees, marking pages as it reads them.
type walker struct {
	f        *File
	seen     []uint64 // bitset of pages reached
	problems []string
	bad      int // subtrees that could not be read
}

func (w *walker) problem(format string, a ...any) {
	w.bad++
	if len(w.problems) < maxProblems {
		w.problems = append(w.problems, fmt.Sprintf(format, a...))
	}
}

func (w *walker) mark(id, overflow uint64) bool {
	for p := id; p <= id+overflow; p++ {
		if w.seen[p/64]&(1<<(p%64)) != 0 {
			return false
		}
		w.seen[p/64] |= 1 << (p % 64)
	}
	return true
}

func newWalker(f *File) *walker {
	return &walker{f: f, seen: make([]uint64, f.meta.pgid/64+1)}
}

// tree walks the B-tree rooted at page root (or the inline page in inline),
// calling leaf for each leaf element in key order, keys within [lo, hi).
// A page that cannot be read is reported and its subtree skipped.
func (w *walker) tree(root uint64, inline []byte, lo, hi []byte, depth int, leaf func(e elem) error) error {
	if depth > maxDepth {
		w.problem("page %d: tree deeper than %d", root, maxDepth)
		return nil
	}
	var (
		id    uint64
		flags uint16
		count int
		buf   []byte
	)
	if inline != nil {
		if len(inline) < headerSize {
			w.problem("inline bucket: short page")
			return nil
		}
		le := binary.LittleEndian
		flags, count, buf = le.Uint16(inline[8:]), int(le.Uint16(inline[10:])), inline
		if flags != leafFlag {
			w.problem("inline bucket: not a leaf page")
			return nil
		}
	} else {
		p, err := w.f.readPage(root)
		if err != nil {
			w.problem("%v", err)
			return nil
		}
		if !w.mark(root, uint64(len(p.buf)/w.f.pageSize-1)) {
			w.problem("page %d: reached twice", root)
			return nil
		}
		id, flags, count, buf = root, p.flags, p.count, p.buf
	}
	if err := table(id, flags, count, buf); err != nil {
		w.problem("%v", err)
		return nil
	}
	var prev []byte
	for i := range count {
		e, err := elemAt(id, flags, buf, i)
		if err != nil {
			w.problem("%v", err)
			return nil
		}
		if i > 0 && bytes.Compare(prev, e.key) >= 0 {
			w.problem("page %d: keys out of order at element %d", id, i)
			return nil
		}
		prev = e.key
		// Sorted keys lie in the parent's range when the first and last do.
		if (i == 0 && lo != nil && bytes.Compare(e.key, lo) < 0) || (i == count-1 && hi != nil && bytes.Compare(e.key, hi) >= 0) {
			w.problem("page %d: key out of its parent's range", id)
			return nil
		}
		if flags == branchFlag {
			clo, chi := e.key, hi
			if i+1 < count {
				next, err := elemAt(id, flags, buf, i+1)
				if err != nil {
					w.problem("%v", err)
					return nil
				}
				chi = next.key
			}
			if i == 0 {
				clo = lo
			}
			if err := w.tree(e.child, nil, clo, chi, depth+1, leaf); err != nil {
				return err
			}
			continue
		}
		if err := leaf(e); err != nil {
			return err
		}
	}
	return nil
}

// bucketRoot reads a bucket value: its root page, or its inline page.
func bucketRoot(v []byte) (root uint64, inline []byte, err error) {
	if len(v) < bucketHeader {
		return 0, nil, errors.New("bucket value too short")
	}
	root = binary.LittleEndian.Uint64(v)
	if root == 0 {
		return 0, v[bucketHeader:], nil
	}
	return root, nil, nil
}

// Report is what Check found.
type Report struct {
	// Problems lists the damage found, at most 100 lines; none when sound.
	Problems []string
	// Keys counts the keys (not buckets) of each top-level bucket.
	Keys map[string]int
	// Pages is the file's high-water mark, in pages.
	Pages uint64
}

// OK tells whether Check found no damage.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Check reads every page reachable from the meta page and the freelist, as
// bbolt's Tx.Check does, without trusting any of it: the file must be long
// enough for its high-water mark, every page must say what it is, keys must
// be in order and inside their parent's range, no page may be reached twice,
// and every page below the high-water mark must be reached or free.
func (f *File) Check() (r *Report) {
	r = &Report{Keys: map[string]int{}, Pages: f.meta.pgid}
	var err error
	defer func() {
		if err != nil {
			r.Problems = append(r.Problems, err.Error())
		}
	}()
	defer guard(&err)()
	need := int64(f.meta.pgid) * int64(f.pageSize)
	if f.meta.pgid < 2 || f.size < need {
		r.Problems = append(r.Problems, fmt.Sprintf("file is %d bytes, its meta page says %d pages of %d (%d bytes): truncated",
			f.size, f.meta.pgid, f.pageSize, need))
		return r
	}
	w := newWalker(f)
	w.mark(0, 1) // the meta pages
	var walk func(name string, root uint64, inline []byte, depth int)
	walk = func(name string, root uint64, inline []byte, depth int) {
		keys := 0
		defer func() { r.Keys[name] += keys }()
		w.tree(root, inline, nil, nil, depth, func(e elem) error {
			if !e.bucket {
				keys++
				return nil
			}
			sub, in, err := bucketRoot(e.value)
			if err != nil {
				w.problem("bucket %q: %v", e.key, err)
				return nil
			}
			child := string(e.key)
			if name != "" {
				child = name + "/" + child
			}
			walk(child, sub, in, depth+1)
			return nil
		})
	}
	walk("", f.meta.root, nil, 0)
	if f.meta.freelist != noFreelist {
		f.checkFreelist(w)
	}
	r.Problems = w.problems
	return r
}

// checkFreelist reads the freelist page: its ids must be below the
// high-water mark, listed once, and not reachable; with it, every page must
// be reachable or free.
func (f *File) checkFreelist(w *walker) {
	p, err := f.readPage(f.meta.freelist)
	if err != nil {
		w.problem("freelist: %v", err)
		return
	}
	if p.flags != freelistFlag {
		w.problem("freelist page %d: flags %#x", p.id, p.flags)
		return
	}
	if !w.mark(p.id, uint64(len(p.buf)/f.pageSize-1)) {
		w.problem("freelist page %d: also reached from a bucket", p.id)
		return
	}
	le := binary.LittleEndian
	ids, count := p.buf[headerSize:], uint64(p.count)
	if count == 0xFFFF {
		if len(ids) < 8 {
			w.problem("freelist: short page")
			return
		}
		count, ids = le.Uint64(ids), ids[8:]
	}
	if count > uint64(len(ids)/8) {
		w.problem("freelist: %d ids do not fit its page", count)
		return
	}
	for i := range count {
		id := le.Uint64(ids[i*8:])
		if id < 2 || id >= f.meta.pgid {
			w.problem("freelist: page %d out of range", id)
			return
		}
		if !w.mark(id, 0) {
			w.problem("freelist: page %d is free and in use (or listed twice)", id)
			return
		}
	}
	for id := uint64(0); id < f.meta.pgid; id++ {
		if w.seen[id/64]&(1<<(id%64)) == 0 {
			w.problem("page %d: neither reachable nor free", id)
			return
		}
	}
}

// Walk calls fn with every key and value of the top-level bucket name that
// can be read, in key order, skipping the subtrees of damaged pages, and
// returns how many subtrees it skipped. The slices are valid only during
// the call. Nested buckets are not entered.
func (f *File) Walk(name string, fn func(k, v []byte) error) (skipped int, err error) {
	defer guard(&err)()
	if f.meta.pgid < 2 || f.size < int64(f.meta.pgid)*int64(f.pageSize) {
		// Pages past the end read as errors one by one: go on.
		f.meta.pgid = min(f.meta.pgid, uint64(f.size/int64(f.pageSize)))
	}
	w := newWalker(f)
	var root uint64
	var inline []byte
	found := false
	w.tree(f.meta.root, nil, nil, nil, 0, func(e elem) error {
		if e.bucket && string(e.key) == name {
			root, inline, err = bucketRoot(e.value)
			found = err == nil
		}
		return nil
	})
	if !found {
		return w.bad, fmt.Errorf("bucket %q not found", name)
	}
	err = w.tree(root, inline, nil, nil, 1, func(e elem) error {
		if e.bucket {
			return nil
		}
		return fn(e.key, e.value)
	})
	return w.bad, err
}

// Leaves returns the ids of the leaf pages of the top-level bucket name
// that can be reached, in key order.
func (f *File) Leaves(name string) (_ []uint64, err error) {
	defer guard(&err)()
	w := newWalker(f)
	var root uint64
	var inline []byte
	found := false
	w.tree(f.meta.root, nil, nil, nil, 0, func(e elem) error {
		if e.bucket && string(e.key) == name {
			root, inline, err = bucketRoot(e.value)
			found = err == nil
		}
		return nil
	})
	if !found || inline != nil {
		return nil, fmt.Errorf("bucket %q not found, or inline", name)
	}
	var leaves []uint64
	var walk func(id uint64, depth int) error
	walk = func(id uint64, depth int) error {
		if depth > maxDepth {
			return errors.New("tree too deep")
		}
		p, err := f.readPage(id)
		if err != nil {
			return err
		}
		if p.flags == leafFlag {
			leaves = append(leaves, id)
			return nil
		}
		if err := table(id, p.flags, p.count, p.buf); err != nil {
			return err
		}
		for i := range p.count {
			e, err := elemAt(id, p.flags, p.buf, i)
			if err != nil {
				return err
			}
			if err := walk(e.child, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return leaves, walk(root, 0)
}

// ScanLeaves calls fn with every element of every page of the file that
// looks like a leaf, reachable or not: the last resort of a salvage when
// the tree above the leaves is lost (a truncated file keeps its early pages
// but loses its root, written last). Free pages hold older copies of pages,
// and pages a failed commit wrote: the caller must expect both. Overflow
// pages are skipped whole.
func (f *File) ScanLeaves(fn func(k, v []byte) error) (err error) {
	defer guard(&err)()
	ps := uint64(f.pageSize)
	end := min(f.meta.pgid, uint64(len(f.data))/ps)
	le := binary.LittleEndian
	for id := uint64(2); id < end; id++ {
		buf := f.data[id*ps : (id+1)*ps]
		if le.Uint64(buf) != id || le.Uint16(buf[8:]) != leafFlag {
			continue
		}
		overflow := uint64(le.Uint32(buf[12:]))
		if id+overflow >= end {
			continue
		}
		buf = f.data[id*ps : (id+overflow+1)*ps]
		count := int(le.Uint16(buf[10:]))
		if table(id, leafFlag, count, buf) != nil {
			continue
		}
		if err := scanElems(id, buf, count, fn); err != nil {
			return err
		}
		id += overflow
	}
	return nil
}

// scanElems calls fn with the elements of a leaf, and with those of the
// inline buckets it holds (small buckets live in their parent's page).
func scanElems(id uint64, buf []byte, count int, fn func(k, v []byte) error) error {
	for i := range count {
		e, err := elemAt(id, leafFlag, buf, i)
		if err != nil {
			return nil
		}
		if !e.bucket {
			if err := fn(e.key, e.value); err != nil {
				return err
			}
			continue
		}
		if root, inline, err := bucketRoot(e.value); err == nil && root == 0 && len(inline) >= headerSize {
			le := binary.LittleEndian
			if le.Uint16(inline[8:]) == leafFlag {
				n := int(le.Uint16(inline[10:]))
				if table(id, leafFlag, n, inline) == nil {
					if err := scanElems(id, inline, n, fn); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}
