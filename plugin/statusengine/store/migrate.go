package store

import (
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/internal/bin"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// Format version 1 (statusengine before this layout) kept each report whole
// in bucket "reports" (key: receive time; value: the beacon, the zone and the
// location as text) and derived buckets "seen", "unrolled", "rollup" and
// "installations". Open migrates such a file in place: the derived buckets
// go at once (layout), then the records move, a chunk per transaction, into
// this layout through the importer's path (validation, dictionaries,
// de-duplication, rollups), each chunk leaving "reports" in the transaction
// that stores it, so a migration cut short goes on at the next Open.
// The format 1 names are in schema.go.

// migrating is meta "format" while a version 1 file is being migrated.
const migrating = 1

func dropLegacy(tx *bolt.Tx) error {
	for _, name := range schema.LegacyDerived {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
	}
	meta := tx.Bucket(schema.Meta)
	for _, k := range schema.LegacyMeta {
		if err := meta.Delete(k); err != nil {
			return err
		}
	}
	return putUint(meta, schema.CountKey, 0) // counted again as records move
}

// migrateChunk bounds the records one migration transaction moves.
const migrateChunk = 5000

// migrate moves the records of a version 1 file, if it is one.
func (s *Store) migrate() error {
	var format uint64
	s.db.View(func(tx *bolt.Tx) error { format = getUint(tx.Bucket(schema.Meta), schema.FormatKey); return nil })
	if format != migrating {
		return nil
	}
	w := s.w
	start := time.Now()
	moved, rejected := 0, 0
	for done := false; !done; {
		_, err := w.transact(time.Now(), false, true, indexPerCommit, func(t *txn) {
			old := t.tx.Bucket(schema.LegacyReports)
			if old == nil {
				done = true
				t.changed = true
				t.err = putUint(t.tx.Bucket(schema.Meta), schema.FormatKey, schema.FormatVersion)
				return
			}
			var keys [][]byte
			c := old.Cursor()
			for k, v := c.First(); k != nil && len(keys) < migrateChunk; k, v = c.Next() {
				keys = append(keys, append([]byte(nil), k...))
				rec, err := legacyRecord(k, v)
				if err == nil {
					var o Outcome
					o, err = w.apply(t, rec, fromCopy)
					if o == Failed {
						t.err = err
						return
					}
					if o == Stored {
						moved++
					}
				}
				if err != nil {
					rejected++
				}
			}
			for _, k := range keys {
				if err := old.Delete(k); err != nil {
					t.err = err
					return
				}
			}
			if len(keys) == 0 {
				t.err = t.tx.DeleteBucket(schema.LegacyReports)
			}
			t.changed = true
		})
		if err != nil {
			return err
		}
	}
	s.notify("migrated %s from format 1: %d records moved, %d unreadable or invalid left out, in %v",
		s.path, moved, rejected, time.Since(start).Round(time.Millisecond))
	return nil
}

// legacyRecord reads a version 1 record. Its location is cleaned as
// geo.Locate cleans one today (version 1 kept names uncut).
func legacyRecord(key, val []byte) (*record.Record, error) {
	const (
		flagEpoch, flagPoint, flagWellKnownZone, flagResolver, flagECS = 1, 2, 4, 8, 16
	)
	if len(key) != 8 {
		return nil, bin.ErrShort
	}
	rec := &record.Record{Received: time.Unix(0, int64(binary.BigEndian.Uint64(key))).UTC()}
	d := bin.Decoder{B: val}
	if d.Byte() != 1 {
		return nil, bin.ErrShort
	}
	flags := d.Byte()
	epoch := d.Varint()
	rec.Resolver = d.Addr()
	if a := d.Addr(); a.IsValid() {
		rec.ECS, _ = a.Prefix(int(d.Byte()))
	}
	rec.Zone = d.Str()
	if flags&flagWellKnownZone != 0 {
		rec.Zone = "status.modsecurity.org."
	}
	beacon := d.Str()
	g := geo.Location{Country: d.Str(), CountryName: d.Str(), City: d.Str(), Source: d.Str()}
	switch {
	case flags&flagResolver != 0:
		g.Source = geo.SourceResolver
	case flags&flagECS != 0:
		g.Source = geo.SourceECS
	}
	if flags&flagPoint != 0 {
		x := d.Uint64() // two big-endian float32
		g.Lat, g.Lon, g.HasPoint = float64(math.Float32frombits(uint32(x>>32))), float64(math.Float32frombits(uint32(x))), true
	}
	if d.Err != nil {
		return nil, d.Err
	}
	g.CountryName, g.City = geo.CleanName(g.CountryName), geo.CleanName(g.City)
	rec.Geo = g
	rep, err := codec.ParseBeacon(beacon)
	if err != nil {
		return nil, err
	}
	if flags&flagEpoch != 0 {
		rep.Epoch, rep.HasEpoch = epoch, true
	}
	rec.Report = rep
	rec.Resolver = rec.Resolver.Unmap()
	if rec.ECS.IsValid() {
		rec.ECS = netip.PrefixFrom(rec.ECS.Addr().Unmap(), rec.ECS.Bits()).Masked()
	}
	return rec, nil
}
