// Package bin holds the byte-level primitives of the store's binary forms:
// the append functions that write an address, a prefix or a string, and
// Decoder that reads them back. The forms themselves (a record, a place, a
// log frame, a rollup period) belong to the packages that own them
// (record, wal, rollup); bin knows none of them.
package bin

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
)

// ErrShort is the error of a read past the end of a value.
var ErrShort = errors.New("truncated value")

// AppendAddr appends a: a length byte (0, 4 or 16), then its bytes.
func AppendAddr(buf []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(buf, 0)
	}
	b := a.AsSlice()
	buf = append(buf, byte(len(b)))
	return append(buf, b...)
}

// AppendPrefix appends p masked: a family byte (0 none, 4, 6), its bits,
// then the bytes the bits cover.
func AppendPrefix(buf []byte, p netip.Prefix) []byte {
	if !p.IsValid() {
		return append(buf, 0)
	}
	fam := byte(4)
	if p.Addr().Is6() {
		fam = 6
	}
	b := p.Masked().Addr().AsSlice()
	buf = append(buf, fam, byte(p.Bits()))
	return append(buf, b[:(p.Bits()+7)/8]...)
}

// AppendString appends s after its length as a uvarint.
func AppendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// Decoder reads what the append functions wrote; the first bad read sticks
// in err and every later read returns zero values. It never allocates more
// than the value it reads from holds.
type Decoder struct {
	B   []byte
	Err error
	// SkipBitmaps passes over bitmaps without parsing them (period.go):
	// for readers of report counts only.
	SkipBitmaps bool
}

// Take reads the next n bytes, without copying them.
func (d *Decoder) Take(n int) []byte {
	if d.Err != nil || n < 0 || n > len(d.B) {
		d.Err = ErrShort
		return nil
	}
	p := d.B[:n]
	d.B = d.B[n:]
	return p
}

// Byte reads one byte.
func (d *Decoder) Byte() byte {
	if p := d.Take(1); p != nil {
		return p[0]
	}
	return 0
}

// Uint64 reads 8 bytes, big-endian.
func (d *Decoder) Uint64() uint64 {
	if p := d.Take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// Uvarint reads an unsigned varint.
func (d *Decoder) Uvarint() uint64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.B)
	if n <= 0 {
		d.Err = ErrShort
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Uint32 reads a uvarint that must fit a dictionary number.
func (d *Decoder) Uint32() uint32 {
	v := d.Uvarint()
	if v > math.MaxUint32 {
		d.Err = errors.New("number out of range")
		return 0
	}
	return uint32(v)
}

// Varint reads a zigzag varint.
func (d *Decoder) Varint() int64 {
	if d.Err != nil {
		return 0
	}
	v, n := binary.Varint(d.B)
	if n <= 0 {
		d.Err = ErrShort
		return 0
	}
	d.B = d.B[n:]
	return v
}

// Str reads what AppendString wrote; the length is checked against what
// is left before anything is allocated.
func (d *Decoder) Str() string {
	l := d.Uvarint()
	if l > uint64(len(d.B)) {
		d.Err = ErrShort
		return ""
	}
	return string(d.Take(int(l)))
}

// Addr reads what AppendAddr wrote.
func (d *Decoder) Addr() netip.Addr {
	n := int(d.Byte())
	if n == 0 {
		return netip.Addr{}
	}
	if n != 4 && n != 16 {
		d.Err = errors.New("bad address length")
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(d.Take(n))
	return a
}

// Prefix reads what AppendPrefix wrote, masked.
func (d *Decoder) Prefix() netip.Prefix {
	var full [16]byte
	switch fam := d.Byte(); fam {
	case 0:
		return netip.Prefix{}
	case 4, 6:
		bits, size := int(d.Byte()), 4
		if fam == 6 {
			size = 16
		}
		if bits > size*8 {
			d.Err = errors.New("bad prefix length")
			return netip.Prefix{}
		}
		copy(full[:], d.Take((bits+7)/8))
		a, _ := netip.AddrFromSlice(full[:size])
		return netip.PrefixFrom(a, bits).Masked()
	}
	d.Err = errors.New("bad address family")
	return netip.Prefix{}
}
