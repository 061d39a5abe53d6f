package store

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
)

// A stored record (bucket records) is its key, the receive time, and a value
// of numbers into the dictionaries plus what differs from report to report:
//
//	version    byte, recordVersion
//	flags      byte, flagEpoch
//	epoch      zigzag varint, client epoch minus receive second (flagEpoch)
//	zone       uvarint, number in zones
//	place      uvarint, number in places (0: no location)
//	install    uvarint, number in installations: build, network and id
//	resolver   address: length byte (0, 4 or 16), bytes
//	ecs        prefix: family byte (0 none, 4, 6), bits byte, the bytes the bits cover
//
// A typical report takes about 15 bytes of value: the beacon, the zone and
// the location are held once per distinct value, not per report.
const recordVersion = 2

const flagEpoch = 1

var errShort = errors.New("truncated value")

// refs are a record's dictionary numbers.
type refs struct {
	zone, place, install uint32
}

func appendRecord(buf []byte, rec *Record, r refs) []byte {
	buf = append(buf, recordVersion)
	if rec.Report.HasEpoch {
		buf = append(buf, flagEpoch)
		buf = binary.AppendVarint(buf, rec.Report.Epoch-rec.Received.Unix())
	} else {
		buf = append(buf, 0)
	}
	buf = binary.AppendUvarint(buf, uint64(r.zone))
	buf = binary.AppendUvarint(buf, uint64(r.place))
	buf = binary.AppendUvarint(buf, uint64(r.install))
	buf = appendAddr(buf, rec.Resolver)
	return appendPrefix(buf, rec.ECS)
}

// decodeRecord reads a value of appendRecord into rec (but the report and
// the dictionary values, which the caller resolves from the refs).
func decodeRecord(key, val []byte, rec *Record) (refs, error) {
	var r refs
	if len(key) != 8 {
		return r, errShort
	}
	rec.Key = binary.BigEndian.Uint64(key)
	rec.Received = time.Unix(0, int64(rec.Key)).UTC()
	d := decoder{b: val}
	if d.byte() != recordVersion {
		return r, errors.New("unknown record version")
	}
	flags := d.byte()
	if flags&flagEpoch != 0 {
		rec.Report.Epoch, rec.Report.HasEpoch = d.varint()+rec.Received.Unix(), true
	}
	r.zone, r.place, r.install = d.uint32(), d.uint32(), d.uint32()
	rec.Resolver = d.addr()
	rec.ECS = d.prefix()
	return r, d.err
}

// An installation row (bucket installations) is what tells installations
// apart: the build (the beacon head, a number in builds), the source network
// and the id field exactly as sent.
func appendInstallation(buf []byte, build uint32, network netip.Prefix, id string) []byte {
	buf = binary.AppendUvarint(buf, uint64(build))
	buf = appendPrefix(buf, network)
	return append(buf, id...)
}

func decodeInstallation(v []byte) (build uint32, network netip.Prefix, id string, err error) {
	d := decoder{b: v}
	build = d.uint32()
	network = d.prefix()
	return build, network, string(d.b), d.err
}

// A place (bucket places) is a location as geo.Locate gives it.
func appendPlace(buf []byte, g *geo.Location) []byte {
	buf = appendString(buf, g.Country)
	buf = appendString(buf, g.CountryName)
	buf = appendString(buf, g.City)
	buf = appendString(buf, g.Source)
	if g.HasPoint {
		buf = append(buf, 1)
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(g.Lat))
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(g.Lon))
	} else {
		buf = append(buf, 0)
	}
	return buf
}

func decodePlace(v []byte) (geo.Location, error) {
	var g geo.Location
	d := decoder{b: v}
	g.Country, g.CountryName, g.City, g.Source = d.string(), d.string(), d.string(), d.string()
	if d.byte() == 1 {
		g.HasPoint = true
		g.Lat, g.Lon = math.Float64frombits(d.uint64()), math.Float64frombits(d.uint64())
	}
	if d.err == nil {
		// A place is a dictionary value: what validLocation let in.
		if err := validLocation(&g); err != nil {
			return geo.Location{}, err
		}
	}
	return g, d.err
}

func appendAddr(buf []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(buf, 0)
	}
	b := a.AsSlice()
	buf = append(buf, byte(len(b)))
	return append(buf, b...)
}

func appendPrefix(buf []byte, p netip.Prefix) []byte {
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

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decoder reads what the append functions wrote; the first bad read sticks
// in err and every later read returns zero values. It never allocates more
// than the value it reads from holds.
type decoder struct {
	b   []byte
	err error
	// skipBitmaps passes over bitmaps without parsing them (period.go):
	// for readers of report counts only.
	skipBitmaps bool
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.err = errShort
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) byte() byte {
	if p := d.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (d *decoder) uint64() uint64 {
	if p := d.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// uint32 reads a uvarint that must fit a dictionary number.
func (d *decoder) uint32() uint32 {
	v := d.uvarint()
	if v > math.MaxUint32 {
		d.err = errors.New("number out of range")
		return 0
	}
	return uint32(v)
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	l := d.uvarint()
	if l > uint64(len(d.b)) {
		d.err = errShort
		return ""
	}
	return string(d.take(int(l)))
}

func (d *decoder) addr() netip.Addr {
	n := int(d.byte())
	if n == 0 {
		return netip.Addr{}
	}
	if n != 4 && n != 16 {
		d.err = errors.New("bad address length")
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(d.take(n))
	return a
}

func (d *decoder) prefix() netip.Prefix {
	var full [16]byte
	switch fam := d.byte(); fam {
	case 0:
		return netip.Prefix{}
	case 4, 6:
		bits, size := int(d.byte()), 4
		if fam == 6 {
			size = 16
		}
		if bits > size*8 {
			d.err = errors.New("bad prefix length")
			return netip.Prefix{}
		}
		copy(full[:], d.take((bits+7)/8))
		a, _ := netip.AddrFromSlice(full[:size])
		return netip.PrefixFrom(a, bits).Masked()
	}
	d.err = errors.New("bad address family")
	return netip.Prefix{}
}
