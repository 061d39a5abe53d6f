package rollup

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"
)

// testBitmaps are bitmaps of the shapes rollups hold: dense runs of
// installation numbers, sparse arrays, full bitmap containers, several
// containers, with and without RunOptimize.
func testBitmaps() []*roaring.Bitmap {
	r := rand.New(rand.NewPCG(1, 2))
	var out []*roaring.Bitmap
	for _, c := range []struct {
		n, span int
		runs    bool
	}{
		{0, 1, false}, {1, 1, false}, {1, 1, true}, {100, 1000, false}, {100, 1000, true},
		{5000, 60000, false}, {5000, 60000, true}, {60000, 65536, true}, {65536, 65536, true},
		{200000, 1 << 20, true}, {200000, 1 << 20, false}, {3000, 1 << 30, true},
	} {
		b := roaring.New()
		for range c.n {
			b.Add(uint32(r.IntN(c.span)))
		}
		if c.runs {
			b.RunOptimize()
		}
		out = append(out, b)
	}
	// Long runs with gaps: run containers of many runs.
	b := roaring.New()
	for i := uint32(0); i < 1<<18; i += 3 {
		b.AddRange(uint64(i), uint64(i+2))
	}
	b.RunOptimize()
	return append(out, b)
}

// Every bitmap roaring writes passes checkBitmap.
func TestCheckBitmapAcceptsRoaring(t *testing.T) {
	for i, b := range testBitmaps() {
		bs, err := b.ToBytes()
		if err != nil {
			t.Fatal(err)
		}
		if err := checkBitmap(bs); err != nil {
			t.Errorf("bitmap %d (%d values, %d bytes): %v", i, b.GetCardinality(), len(bs), err)
		}
	}
}

// Damaged bitmaps fail it: cut, extended, keys out of order, an array out
// of order, a run overlapping the next.
func TestCheckBitmapRejects(t *testing.T) {
	runs := roaring.New()
	runs.AddRange(10, 20)
	runs.AddRange(30, 40)
	runs.RunOptimize()
	rb, _ := runs.ToBytes()
	arr := roaring.BitmapOf(1, 5, 9)
	ab, _ := arr.ToBytes()
	two := roaring.BitmapOf(1, 1<<16+1)
	tb, _ := two.ToBytes()

	overlap := append([]byte(nil), rb...)
	// cookie(4) flags(1) header(4) then runs: count(2) (10,9) (30,9)
	binary.LittleEndian.PutUint16(overlap[4+1+4+2+4:], 15)
	unsorted := append([]byte(nil), ab...)
	// cookie(4) size(4) header(4) offsets(4) then 1, 5, 9
	binary.LittleEndian.PutUint16(unsorted[16+2:], 0)
	keys := append([]byte(nil), tb...)
	binary.LittleEndian.PutUint16(keys[8+4:], 0) // the second key equal to the first

	for name, b := range map[string][]byte{
		"empty": {}, "cut": rb[:len(rb)-1], "extended": append(append([]byte(nil), ab...), 0),
		"overlapping runs": overlap, "unsorted array": unsorted, "keys out of order": keys,
		"bad cookie": {1, 2, 3, 4, 0, 0, 0, 0},
	} {
		if checkBitmap(b) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzCheckBitmap: whatever checkBitmap accepts, roaring reads, and its
// Validate accepts: skipping Validate is safe.
func FuzzCheckBitmap(f *testing.F) {
	for _, b := range testBitmaps() {
		if bs, err := b.ToBytes(); err == nil && len(bs) < 1<<16 {
			f.Add(bs)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if checkBitmap(data) != nil {
			return
		}
		b := roaring.New()
		if err := b.UnmarshalBinary(data); err != nil {
			t.Fatalf("accepted, but roaring cannot read it: %v", err)
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("accepted, but Validate says: %v", err)
		}
	})
}
