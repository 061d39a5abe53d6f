package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// readCaches keep what readers resolve again and again: the values of the
// small dictionaries (zones, places, builds), parsed. Dictionary numbers
// never change meaning once committed, so entries never go stale; each map
// is emptied when it grows past maxMemo. They are no flight.Cache: a row is
// read in microseconds, many at once under one lock (builds), and waiting
// for another reader would cost more than reading it again.
type readCaches struct {
	mu       sync.Mutex
	zones    map[uint32]string
	places   map[uint32]geo.Location
	builds   map[uint32]*buildInfo
	installs map[uint32]installRow

	closed closedCache
	steps  stepCache
	table  installTable
}

const maxMemo = 1 << 16

// installRow is what readers need of an installation row.
type installRow struct {
	build uint32
	id    string
}

// buildInfo is one build (beacon head) parsed.
type buildInfo struct {
	head   string
	report codec.Report // its fields; ID, Beacon and the epoch empty
	values rollup.BuildValues
	// zone is "" for ModSecurity's builds; for a custom schema's, its zone,
	// schema the schema that parsed head (the file's for the zone), and
	// fields the head's values, the id's empty.
	zone   string
	schema *codec.Schema
	fields []string
}

// inZone tells whether build b is of zone ("" for ModSecurity's zones); a
// build that cannot be read (nil) counts as before schemas, ModSecurity's.
func (b *buildInfo) inZone(zone string) bool {
	if b == nil {
		return zone == ""
	}
	return b.zone == zone
}

var errDangling = errors.New("record refers to a missing dictionary row")

func memo[V any](c *readCaches, m *map[uint32]V, n uint32, load func() (V, error)) (V, error) {
	c.mu.Lock()
	if v, ok := (*m)[n]; ok {
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()
	v, err := load()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	remember(m, n, v)
	c.mu.Unlock()
	return v, nil
}

// remember puts v in m; a full m first forgets a quarter of its entries,
// at random (map order), so that a reader cycling through more than
// maxMemo values still finds most of them. c.mu must be held.
func remember[V any](m *map[uint32]V, n uint32, v V) {
	if *m == nil {
		*m = map[uint32]V{}
	}
	if len(*m) >= maxMemo {
		drop := maxMemo / 4
		for k := range *m {
			delete(*m, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	(*m)[n] = v
}

func (c *readCaches) zone(tx *bolt.Tx, n uint32) (string, error) {
	return memo(c, &c.zones, n, func() (string, error) {
		v := tx.Bucket(schema.Zones).Get(numKey(n))
		if v == nil {
			return "", errDangling
		}
		z := string(v)
		return z, record.ValidZone(z)
	})
}

func (c *readCaches) place(tx *bolt.Tx, n uint32) (geo.Location, error) {
	if n == 0 {
		return geo.Location{}, nil
	}
	return memo(c, &c.places, n, func() (geo.Location, error) {
		v := tx.Bucket(schema.Places).Get(numKey(n))
		if v == nil {
			return geo.Location{}, errDangling
		}
		return record.DecodePlace(v)
	})
}

func (s *Store) build(tx *bolt.Tx, n uint32) (*buildInfo, error) {
	c := &s.readers
	return memo(c, &c.builds, n, func() (*buildInfo, error) {
		return parseBuild(tx.Bucket(schema.Builds).Get(numKey(n)), s.Schemas())
	})
}

// parseBuild parses a builds row's value: ModSecurity's head, or a custom
// schema's zone, NUL and head, parsed by the zone's schema in sc.
func parseBuild(v []byte, sc *record.Schemas) (*buildInfo, error) {
	if v == nil {
		return nil, errDangling
	}
	if len(v) > maxHead+maxZoneLen {
		return nil, errors.New("build too long")
	}
	zone, head := splitBuildRow(v)
	if zone != "" {
		s := sc.Custom(zone)
		if s == nil {
			return nil, fmt.Errorf("build of zone %.80q, which has no schema in bucket schemas", zone)
		}
		r, err := s.ParseHead(head)
		if err != nil {
			return nil, err
		}
		return &buildInfo{head: head, report: codec.Report{Format: codec.FormatSchema}, zone: zone, schema: s, fields: r.Values}, nil
	}
	if len(v) > maxHead {
		return nil, errors.New("build too long")
	}
	rep, err := codec.ParseHead(head)
	if err != nil {
		return nil, err
	}
	return &buildInfo{head: head, report: rep, values: rollup.ValuesOf(&rep)}, nil
}

// Bounds of stored dictionary values, checked before they are parsed.
const (
	maxHead = 400 // the codec's longest beacon
	maxID   = 64  // ids are 2 or 40 hex digits, or "no unique id"; a custom schema's field is at most codec.MaxFieldLen
	// maxZoneLen bounds the zone before a custom schema's head.
	maxZoneLen = 255
)

// installation reads an installation row: its build and id.
func installation(tx *bolt.Tx, n uint32) (build uint32, id string, err error) {
	v := tx.Bucket(schema.Installations).Get(numKey(n))
	if v == nil {
		return 0, "", errDangling
	}
	build, _, id, err = record.DecodeInstallation(v)
	if err == nil && len(id) > maxID {
		err = errors.New("installation id too long")
	}
	return build, id, err
}

// installation is installation through the memo: records of one
// installation recur, and a page of records would otherwise cost a B-tree
// search each.
func (c *readCaches) installation(tx *bolt.Tx, n uint32) (installRow, error) {
	return memo(c, &c.installs, n, func() (installRow, error) {
		build, id, err := installation(tx, n)
		return installRow{build, id}, err
	})
}

// readRecord turns a stored record back into a Record. A record whose
// value or dictionary rows cannot be read gives an error: one bad record
// must not hide the others.
func (s *Store) readRecord(tx *bolt.Tx, k, v []byte) (record.Record, error) {
	var rec record.Record
	r, err := record.Decode(k, v, &rec)
	if err != nil {
		return rec, err
	}
	if rec.Zone, err = s.readers.zone(tx, r.Zone); err != nil {
		return rec, err
	}
	if rec.Geo, err = s.readers.place(tx, r.Place); err != nil {
		return rec, err
	}
	row, err := s.readers.installation(tx, r.Install)
	if err != nil {
		return rec, err
	}
	id := row.id
	b, err := s.build(tx, row.build)
	if err != nil {
		return rec, err
	}
	if b.zone != "" && b.zone != rec.Zone {
		return rec, errors.New("record's zone is not its build's")
	}
	epoch, hasEpoch := rec.Report.Epoch, rec.Report.HasEpoch
	rec.Report = b.report
	if b.schema != nil {
		rec.Report.ID = strings.Trim(id, " ")
		rec.Report.Beacon = b.schema.JoinID(b.head, id)
	} else {
		rec.Report.ID = strings.TrimSpace(id)
		rec.Report.Beacon = codec.Join(b.head, id)
	}
	rec.Report.Epoch, rec.Report.HasEpoch = epoch, hasEpoch
	return rec, nil
}

// eachPage bounds the records Each reads in one transaction.
const eachPage = 1024

// Each calls fn for each record received in [from, to] whose key is above
// after (0: from the start), oldest first, until fn returns an error, which
// Each returns. fn is never called inside a transaction: Each reads pages of
// records in short read transactions and hands them out in between, so a
// slow consumer (an export to a slow client) holds nothing open. Records
// that cannot be read are skipped.
func (s *Store) Each(from, to time.Time, after uint64, fn func(*record.Record) error) error {
	lo, hi := clampNano(from), clampNano(to)
	if after != 0 && after >= lo {
		if after == ^uint64(0) {
			return nil
		}
		lo = after + 1
	}
	page := make([]record.Record, 0, eachPage)
	for lo <= hi {
		page = page[:0]
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(schema.Records).Cursor()
			for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, lo)); k != nil && len(page) < eachPage; k, v = c.Next() {
				key := binary.BigEndian.Uint64(k)
				if key > hi {
					break
				}
				lo = key + 1
				if rec, err := s.readRecord(tx, k, v); err == nil {
					page = append(page, rec)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i := range page {
			if err := fn(&page[i]); err != nil {
				return err
			}
		}
		if len(page) < eachPage {
			return nil
		}
	}
	return nil
}

// clampNano is t in unix nanoseconds, held to what a key can be.
func clampNano(t time.Time) uint64 {
	switch {
	case t.Unix() <= 0:
		return 0
	case t.Unix() >= 1<<33:
		return 1<<63 - 1
	}
	return uint64(t.UnixNano())
}

// zeroLocation is the location of a report nothing was looked up for.
var zeroLocation geo.Location

// CountRange counts the records received in [from, to], up to limit, from
// their keys alone (no value is decoded): what an answer of those records
// would hold, cheaply, before it starts.
func (s *Store) CountRange(from, to time.Time, limit int) (int, error) {
	lo, hi := clampNano(from), clampNano(to)
	n := 0
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.Records).Cursor()
		for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, lo)); k != nil && n < limit; k, _ = c.Next() {
			if binary.BigEndian.Uint64(k) > hi {
				break
			}
			n++
		}
		return nil
	})
	return n, err
}
