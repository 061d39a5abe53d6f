package store

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
)

// Geo is where a report most likely came from, looked up once at ingest.
type Geo struct {
	Country     string // ISO 3166-1 alpha-2, "" when unknown
	CountryName string
	City        string
	Lat, Lon    float64
	HasPoint    bool   // Lat and Lon are meaningful (a City database was loaded)
	Source      string // "ecs", "resolver" or "" when nothing was looked up
}

// Record is one stored report.
type Record struct {
	// Key orders records by receive time: unix nanoseconds, made unique by the writer.
	Key      uint64
	Received time.Time
	Zone     string
	Resolver netip.Addr
	// ECS is the EDNS Client Subnet the resolver sent; invalid when absent.
	ECS    netip.Prefix
	Report codec.Report
	Geo    Geo
	// Source is the network the per-source limit charges: the resolver's /24
	// or /48. Not stored (the addresses may be stored truncated or not at all).
	Source netip.Prefix
}

const recordVersion = 1

// wellKnownZone is ModSecurity's status zone, held in nearly every record:
// a flag bit stands for it instead of its 24 bytes.
const wellKnownZone = "status.modsecurity.org."

// Flag bits of the second byte of a record.
const (
	flagEpoch          = 1
	flagPoint          = 2
	flagWellKnownZone  = 4
	flagSourceResolver = 8  // Geo.Source "resolver", not stored as text
	flagSourceECS      = 16 // Geo.Source "ecs", not stored as text
)

// Geo.Source values that a flag bit stands for (the geo package's).
const (
	sourceResolver = "resolver"
	sourceECS      = "ecs"
)

var errShortRecord = errors.New("truncated record")

// marshal encodes everything but the key and the decoded fields: those are the
// raw beacon parsed again on read, which keeps a record near 120 bytes on disk.
func (r *Record) marshal(buf []byte) []byte {
	buf = append(buf, recordVersion)
	var flags byte
	if r.Report.HasEpoch {
		flags |= flagEpoch
	}
	if r.Geo.HasPoint {
		flags |= flagPoint
	}
	zone := r.Zone
	if zone == wellKnownZone {
		flags |= flagWellKnownZone
		zone = ""
	}
	source := r.Geo.Source
	switch source {
	case sourceResolver:
		flags |= flagSourceResolver
		source = ""
	case sourceECS:
		flags |= flagSourceECS
		source = ""
	}
	buf = append(buf, flags)
	buf = binary.AppendVarint(buf, r.Report.Epoch)
	buf = appendAddr(buf, r.Resolver)
	if r.ECS.IsValid() {
		buf = appendAddr(buf, r.ECS.Addr())
		buf = append(buf, byte(r.ECS.Bits()))
	} else {
		buf = append(buf, 0)
	}
	buf = appendString(buf, zone)
	buf = appendString(buf, r.Report.Beacon)
	buf = appendString(buf, r.Geo.Country)
	buf = appendString(buf, r.Geo.CountryName)
	buf = appendString(buf, r.Geo.City)
	buf = appendString(buf, source)
	if r.Geo.HasPoint {
		buf = binary.BigEndian.AppendUint32(buf, math.Float32bits(float32(r.Geo.Lat)))
		buf = binary.BigEndian.AppendUint32(buf, math.Float32bits(float32(r.Geo.Lon)))
	}
	return buf
}

func unmarshal(key, val []byte) (Record, error) {
	var r Record
	if len(key) != 8 {
		return r, errShortRecord
	}
	r.Key = binary.BigEndian.Uint64(key)
	r.Received = time.Unix(0, int64(r.Key)).UTC()
	d := decoder{b: val}
	if d.byte() != recordVersion {
		return r, errors.New("unknown record version")
	}
	flags := d.byte()
	epoch := d.varint()
	r.Resolver = d.addr()
	if a := d.addr(); a.IsValid() {
		r.ECS = netip.PrefixFrom(a, int(d.byte()))
	}
	r.Zone = d.string()
	if flags&flagWellKnownZone != 0 {
		r.Zone = wellKnownZone
	}
	beacon := d.string()
	r.Geo.Country = d.string()
	r.Geo.CountryName = d.string()
	r.Geo.City = d.string()
	r.Geo.Source = d.string()
	switch {
	case flags&flagSourceResolver != 0:
		r.Geo.Source = sourceResolver
	case flags&flagSourceECS != 0:
		r.Geo.Source = sourceECS
	}
	if flags&flagPoint != 0 {
		r.Geo.HasPoint = true
		r.Geo.Lat = float64(math.Float32frombits(d.uint32()))
		r.Geo.Lon = float64(math.Float32frombits(d.uint32()))
	}
	if d.err != nil {
		return r, d.err
	}
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		// Stored beacons were valid when written; a grammar change must not hide them.
		rep = codec.Report{Beacon: beacon}
	}
	rep.Epoch, rep.HasEpoch = epoch, flags&flagEpoch != 0
	r.Report = rep
	return r, nil
}

func appendAddr(buf []byte, a netip.Addr) []byte {
	if !a.IsValid() {
		return append(buf, 0)
	}
	b := a.Unmap().AsSlice()
	buf = append(buf, byte(len(b)))
	return append(buf, b...)
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// decoder reads what marshal wrote; the first short read sticks in err.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		d.err = errShortRecord
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

func (d *decoder) uint32() uint32 {
	if p := d.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShortRecord
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string {
	if d.err != nil {
		return ""
	}
	l, n := binary.Uvarint(d.b)
	if n <= 0 || l > uint64(len(d.b)-n) {
		d.err = errShortRecord
		return ""
	}
	d.b = d.b[n:]
	return string(d.take(int(l)))
}

func (d *decoder) addr() netip.Addr {
	n := int(d.byte())
	if n == 0 {
		return netip.Addr{}
	}
	a, _ := netip.AddrFromSlice(d.take(n))
	return a
}
