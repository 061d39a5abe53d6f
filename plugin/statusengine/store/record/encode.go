package record

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/internal/bin"
)

// A stored record (bucket records) is its key, the receive time, and a value
// of numbers into the dictionaries plus what differs from report to report:
//
//	version    byte, Version
//	flags      byte, FlagEpoch
//	epoch      zigzag varint, client epoch minus receive second (FlagEpoch)
//	zone       uvarint, number in zones
//	place      uvarint, number in places (0: no location)
//	install    uvarint, number in installations: build, network and id
//	resolver   address: length byte (0, 4 or 16), bytes
//	ecs        prefix: family byte (0 none, 4, 6), bits byte, the bytes the bits cover
//
// A typical report takes about 15 bytes of value: the beacon, the zone and
// the location are held once per distinct value, not per report.
const Version = 2

// FlagEpoch in a record's flags says the report carried a client epoch.
const FlagEpoch = 1

// Refs are a record's dictionary numbers.
type Refs struct {
	Zone, Place, Install uint32
}

// Append appends rec's bbolt value, with its dictionary numbers r.
func Append(buf []byte, rec *Record, r Refs) []byte {
	buf = append(buf, Version)
	if rec.Report.HasEpoch {
		buf = append(buf, FlagEpoch)
		buf = binary.AppendVarint(buf, rec.Report.Epoch-rec.Received.Unix())
	} else {
		buf = append(buf, 0)
	}
	buf = binary.AppendUvarint(buf, uint64(r.Zone))
	buf = binary.AppendUvarint(buf, uint64(r.Place))
	buf = binary.AppendUvarint(buf, uint64(r.Install))
	buf = bin.AppendAddr(buf, rec.Resolver)
	return bin.AppendPrefix(buf, rec.ECS)
}

// Decode reads a value of Append into rec (but the report and
// the dictionary values, which the caller resolves from the refs).
func Decode(key, val []byte, rec *Record) (Refs, error) {
	var r Refs
	if len(key) != 8 {
		return r, bin.ErrShort
	}
	rec.Key = binary.BigEndian.Uint64(key)
	rec.Received = time.Unix(0, int64(rec.Key)).UTC()
	d := bin.Decoder{B: val}
	if d.Byte() != Version {
		return r, errors.New("unknown record version")
	}
	flags := d.Byte()
	if flags&FlagEpoch != 0 {
		rec.Report.Epoch, rec.Report.HasEpoch = d.Varint()+rec.Received.Unix(), true
	}
	r.Zone, r.Place, r.Install = d.Uint32(), d.Uint32(), d.Uint32()
	rec.Resolver = d.Addr()
	rec.ECS = d.Prefix()
	return r, d.Err
}

// An installation row (bucket installations) is what tells installations
// apart: the build (the beacon head, a number in builds), the source network
// and the id field exactly as sent.
func AppendInstallation(buf []byte, build uint32, network netip.Prefix, id string) []byte {
	buf = binary.AppendUvarint(buf, uint64(build))
	buf = bin.AppendPrefix(buf, network)
	return append(buf, id...)
}

// DecodeInstallation reads a row of bucket installations.
func DecodeInstallation(v []byte) (build uint32, network netip.Prefix, id string, err error) {
	build, network, b, err := InstallationParts(v)
	return build, network, string(b), err
}

// InstallationParts is DecodeInstallation with the id left in v, for a
// reader that only hashes it.
func InstallationParts(v []byte) (build uint32, network netip.Prefix, id []byte, err error) {
	d := bin.Decoder{B: v}
	build = d.Uint32()
	network = d.Prefix()
	return build, network, d.B, d.Err
}

// A place (bucket places) is a location as geo.Locate gives it.
func AppendPlace(buf []byte, g *geo.Location) []byte {
	buf = bin.AppendString(buf, g.Country)
	buf = bin.AppendString(buf, g.CountryName)
	buf = bin.AppendString(buf, g.City)
	buf = bin.AppendString(buf, g.Source)
	if g.HasPoint {
		buf = append(buf, 1)
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(g.Lat))
		buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(g.Lon))
	} else {
		buf = append(buf, 0)
	}
	return buf
}

// DecodePlace reads a row of bucket places, and validates it as a
// record's location must be.
func DecodePlace(v []byte) (geo.Location, error) {
	var g geo.Location
	d := bin.Decoder{B: v}
	g.Country, g.CountryName, g.City, g.Source = d.Str(), d.Str(), d.Str(), d.Str()
	if d.Byte() == 1 {
		g.HasPoint = true
		g.Lat, g.Lon = math.Float64frombits(d.Uint64()), math.Float64frombits(d.Uint64())
	}
	if d.Err == nil {
		// A place is a dictionary value: what validLocation let in.
		if err := validLocation(&g); err != nil {
			return geo.Location{}, err
		}
	}
	return g, d.Err
}
