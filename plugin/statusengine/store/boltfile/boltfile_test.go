package boltfile

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

const testPageSize = 4096

// layout is where a sound file's pages are, as bbolt says.
type layout struct {
	recordsRoot uint64 // a branch page
	recordsLeaf uint64 // the first leaf under it
	bigRoot     uint64 // a leaf with overflow pages
	freelist    uint64
	free        []uint64 // pages the freelist lists
	metaTx      uint64   // the newer meta page's transaction id
	pages       uint64   // the high-water mark: bbolt's file is longer
}

// soundFile writes a bbolt file: bucket records, big enough for branch
// pages, with free pages left by a deletion; an inline bucket; a nested
// bucket; a value over several pages.
func soundFile(t *testing.T) ([]byte, layout) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sound.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: testPageSize})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		records, err := tx.CreateBucket([]byte("records"))
		if err != nil {
			return err
		}
		for i := range 2000 {
			if err := records.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), bytes.Repeat([]byte{byte(i)}, 100)); err != nil {
				return err
			}
		}
		small, err := tx.CreateBucket([]byte("small"))
		if err != nil {
			return err
		}
		for _, k := range []string{"a", "b", "c"} {
			if err := small.Put([]byte(k), []byte(k)); err != nil {
				return err
			}
		}
		inner, err := tx.CreateBucketIfNotExists([]byte("nested"))
		if err != nil {
			return err
		}
		if inner, err = inner.CreateBucket([]byte("inner")); err != nil {
			return err
		}
		for i := range 5 {
			if err := inner.Put([]byte{byte(i)}, nil); err != nil {
				return err
			}
		}
		big, err := tx.CreateBucket([]byte("big"))
		if err != nil {
			return err
		}
		return big.Put([]byte("value"), bytes.Repeat([]byte("x"), 5*testPageSize))
	})
	if err != nil {
		t.Fatal(err)
	}
	// A second transaction frees pages.
	err = db.Update(func(tx *bolt.Tx) error {
		records := tx.Bucket([]byte("records"))
		for i := range 500 {
			if err := records.Delete(binary.BigEndian.AppendUint64(nil, uint64(i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var l layout
	err = db.View(func(tx *bolt.Tx) error {
		l.recordsRoot = uint64(tx.Bucket([]byte("records")).Root())
		l.bigRoot = uint64(tx.Bucket([]byte("big")).Root())
		l.metaTx = uint64(tx.ID()) // a read transaction's is its meta page's
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := openBytes(t, b)
	defer f.Close()
	l.freelist, l.pages = f.meta.freelist, f.meta.pgid
	p, err := f.readPage(l.recordsRoot)
	if err != nil || p.flags != branchFlag {
		t.Fatalf("records' root %d: %v, flags %#x: want a branch", l.recordsRoot, err, p.flags)
	}
	e, _ := elemAt(p.id, p.flags, p.buf, 0)
	l.recordsLeaf = e.child
	fp, err := f.readPage(l.freelist)
	if err != nil || fp.flags != freelistFlag || fp.count == 0 {
		t.Fatalf("freelist %d: %v, flags %#x, %d ids: want free pages", l.freelist, err, fp.flags, fp.count)
	}
	for i := range fp.count {
		l.free = append(l.free, binary.LittleEndian.Uint64(fp.buf[headerSize+i*8:]))
	}
	return b, l
}

func openBytes(t *testing.T, b []byte) *File {
	t.Helper()
	f, err := Open(writeFile(t, b))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Page edits of a file's bytes.

func pageAt(b []byte, id uint64) []byte { return b[id*testPageSize : (id+1)*testPageSize] }

func setChild(b []byte, branch uint64, i int, child uint64) {
	binary.LittleEndian.PutUint64(pageAt(b, branch)[headerSize+i*elemSize+8:], child)
}

func childOf(b []byte, branch uint64, i int) uint64 {
	return binary.LittleEndian.Uint64(pageAt(b, branch)[headerSize+i*elemSize+8:])
}

// leafKey is the key of element i of leaf page id, to change in place.
func leafKey(b []byte, id uint64, i int) []byte {
	p := pageAt(b, id)
	e := p[headerSize+i*elemSize:]
	start := headerSize + i*elemSize + int(binary.LittleEndian.Uint32(e[4:]))
	return p[start : start+int(binary.LittleEndian.Uint32(e[8:]))]
}

// rewriteMeta changes both meta pages with fn and seals them again, so
// that only what fn changed is wrong.
func rewriteMeta(b []byte, fn func(m []byte)) {
	for _, id := range []uint64{0, 1} {
		m := pageAt(b, id)[headerSize : headerSize+metaSize]
		fn(m)
		h := fnv.New64a()
		h.Write(m[:56])
		binary.LittleEndian.PutUint64(m[56:], h.Sum64())
	}
}

func TestCheck(t *testing.T) {
	sound, l := soundFile(t)
	pages := l.pages
	for _, c := range []struct {
		name    string
		damage  func(b []byte) []byte
		openErr error  // Open's error; nil: Open works
		problem string // in the Report's first problem; "": sound
		records int    // of a sound file, Keys["records"]; 0: 1500
	}{
		{"sound", func(b []byte) []byte { return b }, nil, "", 0},
		{"newer meta page zeroed: the older one serves, before the deletion", func(b []byte) []byte {
			clear(pageAt(b, l.metaTx%2))
			return b
		}, nil, "", 2000},
		{"older meta page zeroed", func(b []byte) []byte {
			clear(pageAt(b, (l.metaTx+1)%2))
			return b
		}, nil, "", 0},
		{"both meta pages zeroed", func(b []byte) []byte {
			clear(b[:2*testPageSize])
			return b
		}, ErrNotBolt, "", 0},
		{"meta checksum wrong", func(b []byte) []byte {
			b[headerSize+56] ^= 1
			b[testPageSize+headerSize+56] ^= 1
			return b
		}, ErrNotBolt, "", 0},
		{"truncated to half", func(b []byte) []byte { return b[:len(b)/2] }, nil, "truncated", 0},
		{"truncated to one page: the first meta page serves", func(b []byte) []byte {
			return b[:testPageSize]
		}, nil, fmt.Sprintf("file is %d bytes, its meta page says", testPageSize), 0},
		{"truncated inside the last page", func(b []byte) []byte {
			return b[:pages*testPageSize-100]
		}, nil, "truncated", 0},
		{"cut at the high-water mark", func(b []byte) []byte { return b[:pages*testPageSize] }, nil, "", 0},
		{"empty", func([]byte) []byte { return nil }, ErrNotBolt, "", 0},
		{"garbage", func(b []byte) []byte {
			r := rand.New(rand.NewPCG(1, 2))
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			return b
		}, ErrNotBolt, "", 0},
		{"a branch points outside the file", func(b []byte) []byte {
			setChild(b, l.recordsRoot, 1, 1<<40)
			return b
		}, nil, fmt.Sprintf("page %d: out of range [2, %d)", uint64(1<<40), pages), 0},
		{"a branch points at a meta page", func(b []byte) []byte {
			setChild(b, l.recordsRoot, 1, 1)
			return b
		}, nil, "page 1: out of range", 0},
		{"a branch points at itself", func(b []byte) []byte {
			setChild(b, l.recordsRoot, 1, l.recordsRoot)
			return b
		}, nil, fmt.Sprintf("page %d: reached twice", l.recordsRoot), 0},
		{"two branch elements share a child", func(b []byte) []byte {
			setChild(b, l.recordsRoot, 1, l.recordsLeaf)
			return b
		}, nil, fmt.Sprintf("page %d: reached twice", l.recordsLeaf), 0},
		{"the high-water mark past the file's end", func(b []byte) []byte {
			rewriteMeta(b, func(m []byte) { binary.LittleEndian.PutUint64(m[40:], uint64(len(b)/testPageSize+10)) })
			return b
		}, nil, "truncated", 0},
		{"the high-water mark below a page in use", func(b []byte) []byte {
			rewriteMeta(b, func(m []byte) { binary.LittleEndian.PutUint64(m[40:], pages-1) })
			return b
		}, nil, "out of range", 0},
		{"the root page out of range", func(b []byte) []byte {
			rewriteMeta(b, func(m []byte) { binary.LittleEndian.PutUint64(m[16:], pages+10) })
			return b
		}, nil, "out of range", 0},
		{"keys out of order in a leaf", func(b []byte) []byte {
			clear(leafKey(b, l.recordsLeaf, 1))
			return b
		}, nil, fmt.Sprintf("page %d: keys out of order at element 1", l.recordsLeaf), 0},
		{"a key below its parent's range", func(b []byte) []byte {
			clear(leafKey(b, childOf(b, l.recordsRoot, 1), 0))
			return b
		}, nil, fmt.Sprintf("page %d: key out of its parent's range", childOf(sound, l.recordsRoot, 1)), 0},
		{"a page says it is another", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(pageAt(b, l.recordsLeaf), 7)
			return b
		}, nil, fmt.Sprintf("page %d: says it is page 7", l.recordsLeaf), 0},
		{"a page's flags neither branch nor leaf", func(b []byte) []byte {
			binary.LittleEndian.PutUint16(pageAt(b, l.recordsLeaf)[8:], 0x40)
			return b
		}, nil, "neither branch nor leaf", 0},
		{"a page holds more elements than fit", func(b []byte) []byte {
			binary.LittleEndian.PutUint16(pageAt(b, l.recordsLeaf)[10:], 0xFFF0)
			return b
		}, nil, "elements do not fit", 0},
		{"an element points outside its page", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(pageAt(b, l.recordsLeaf)[headerSize+12:], 1<<30) // vsize
			return b
		}, nil, fmt.Sprintf("page %d: element 0 points outside the page", l.recordsLeaf), 0},
		{"overflow pages past the high-water mark", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(pageAt(b, l.bigRoot)[12:], uint32(pages))
			return b
		}, nil, "overflow pages run past", 0},
		{"zeroed page", func(b []byte) []byte {
			clear(pageAt(b, l.recordsLeaf))
			return b
		}, nil, fmt.Sprintf("page %d: says it is page 0", l.recordsLeaf), 0},
		{"the freelist lists a page in use", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(pageAt(b, l.freelist)[headerSize:], l.recordsLeaf)
			return b
		}, nil, fmt.Sprintf("freelist: page %d is free and in use", l.recordsLeaf), 0},
		{"the freelist lists a page twice", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(pageAt(b, l.freelist)[headerSize+8:], l.free[0])
			return b
		}, nil, fmt.Sprintf("freelist: page %d is free and in use (or listed twice)", l.free[0]), 0},
		{"the freelist lists a page out of range", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(pageAt(b, l.freelist)[headerSize:], pages+5)
			return b
		}, nil, fmt.Sprintf("freelist: page %d out of range", pages+5), 0},
		{"the freelist lists more ids than fit", func(b []byte) []byte {
			binary.LittleEndian.PutUint16(pageAt(b, l.freelist)[10:], 0xFFFE)
			return b
		}, nil, "ids do not fit its page", 0},
		{"the freelist loses a free page", func(b []byte) []byte {
			n := binary.LittleEndian.Uint16(pageAt(b, l.freelist)[10:])
			binary.LittleEndian.PutUint16(pageAt(b, l.freelist)[10:], n-1)
			return b
		}, nil, "neither reachable nor free", 0},
		{"the freelist page is a leaf", func(b []byte) []byte {
			rewriteMeta(b, func(m []byte) { binary.LittleEndian.PutUint64(m[32:], l.recordsLeaf) })
			return b
		}, nil, fmt.Sprintf("freelist page %d: flags %#x", l.recordsLeaf, leafFlag), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := c.damage(bytes.Clone(sound))
			f, err := Open(writeFile(t, b))
			if c.openErr != nil || err != nil {
				if !errors.Is(err, c.openErr) {
					t.Fatalf("Open: %v, want %v", err, c.openErr)
				}
				return
			}
			defer f.Close()
			r := f.Check()
			if r.Pages != f.HighWater() || f.PageSize() != testPageSize {
				t.Errorf("Pages %d, HighWater %d, PageSize %d", r.Pages, f.HighWater(), f.PageSize())
			}
			if c.problem == "" {
				records := cmp.Or(c.records, 1500)
				if !r.OK() {
					t.Fatalf("problems in a sound file: %q", r.Problems)
				}
				want := map[string]int{"": 0, "records": records, "small": 3, "nested": 0, "nested/inner": 5, "big": 1}
				for k, n := range want {
					if r.Keys[k] != n {
						t.Errorf("Keys[%q] = %d, want %d (all: %v)", k, r.Keys[k], n, r.Keys)
					}
				}
				if len(r.Keys) != len(want) {
					t.Errorf("Keys = %v, want %v", r.Keys, want)
				}
				return
			}
			if r.OK() || !strings.Contains(r.Problems[0], c.problem) {
				t.Fatalf("problems %q, want the first to hold %q", r.Problems, c.problem)
			}
			if len(r.Problems) > maxProblems {
				t.Errorf("%d problems, more than %d", len(r.Problems), maxProblems)
			}
		})
	}
}

// TestWalkSkipsDamage: Walk reads what it can of a damaged bucket, in key
// order, and counts the subtrees it skipped; ScanLeaves finds the keys of
// a leaf no tree reaches.
func TestWalkSkipsDamage(t *testing.T) {
	sound, l := soundFile(t)
	walk := func(b []byte, name string) (keys [][]byte, skipped int, err error) {
		f := openBytes(t, b)
		defer f.Close()
		skipped, err = f.Walk(name, func(k, _ []byte) error {
			keys = append(keys, bytes.Clone(k))
			return nil
		})
		return keys, skipped, err
	}
	keys, skipped, err := walk(sound, "records")
	if err != nil || skipped != 0 || len(keys) != 1500 {
		t.Fatalf("sound: %d keys, %d skipped, %v; want 1500, 0, nil", len(keys), skipped, err)
	}
	if !bytes.Equal(keys[0], binary.BigEndian.AppendUint64(nil, 500)) {
		t.Errorf("first key %x, want 500", keys[0])
	}
	if _, _, err := walk(sound, "absent"); err == nil {
		t.Error("Walk of an absent bucket: no error")
	}

	damaged := bytes.Clone(sound)
	clear(pageAt(damaged, l.recordsLeaf))
	got, skipped, err := walk(damaged, "records")
	if err != nil || skipped != 1 || len(got) == 0 || len(got) >= 1500 {
		t.Fatalf("one leaf zeroed: %d keys, %d skipped, %v; want fewer than 1500, 1, nil", len(got), skipped, err)
	}
	for i := 1; i < len(got); i++ {
		if bytes.Compare(got[i-1], got[i]) >= 0 {
			t.Fatalf("keys out of order at %d", i)
		}
	}

	// With the root lost, the leaves are still found by scanning.
	lost := bytes.Clone(sound)
	clear(pageAt(lost, l.recordsRoot))
	f := openBytes(t, lost)
	defer f.Close()
	found := map[string]bool{}
	if err := f.ScanLeaves(func(k, _ []byte) error { found[string(k)] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !found[string(k)] {
			t.Fatalf("ScanLeaves missed key %x", k)
		}
	}
	if _, err := f.Leaves("records"); err == nil {
		t.Error("Leaves with the root lost: no error")
	}
}
