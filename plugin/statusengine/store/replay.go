package store

import (
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// factOf is what a stored record adds to the rollups, read back.
func (s *Store) factOf(tx *bolt.Tx, k, v []byte) (rollup.Fact, error) {
	var rec record.Record
	r, err := record.Decode(k, v, &rec)
	if err != nil {
		return rollup.Fact{}, err
	}
	build, _, err := installation(tx, r.Install)
	if err != nil {
		return rollup.Fact{}, err
	}
	place, err := s.readers.place(tx, r.Place)
	if err != nil {
		return rollup.Fact{}, err
	}
	b, err := s.build(tx, build)
	if err != nil {
		return rollup.Fact{}, err
	}
	return geoFact(rollup.Fact{Received: rec.Received, Install: r.Install, Build: build, Country: place.Country, Point: rollup.PointKey(&place)},
		b.zone != "", r.Zone), nil
}

// geoFact keys f's country and point under zone (its number) when the
// report is of a custom schema (rollup.ZoneGeoKey).
// A zone number past the keys' bound (2^21 zones) keeps its reports out of
// every zone's countries and points ("\x00" is no zone's key, no point).
func geoFact(f rollup.Fact, custom bool, zone uint32) rollup.Fact {
	if custom {
		if f.Country = rollup.ZoneGeoKey(zone, f.Country); f.Country == "" {
			f.Country = "\x00"
		}
		if f.Point != "" {
			f.Point = rollup.ZoneGeoKey(zone, f.Point)
		}
	}
	return f
}

// replay adds to the live rollups the records a crash left unflushed: those
// after the watermark. They are at most flushRecords, or a few seconds of
// reports. It tells whether a stored period could not be read.
func (s *Store) replay() (bad bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if getUint(tx.Bucket(schema.Meta), schema.RebuildingKey) != 0 {
			bad = true // a rebuild was cut short: start it again
			return nil
		}
		var facts []rollup.Fact
		c := tx.Bucket(schema.Records).Cursor()
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, s.live.Rolled+1)); k != nil; k, v = c.Next() {
			f, err := s.factOf(tx, k, v)
			if err != nil {
				continue // an unreadable record counts nowhere
			}
			for _, pk := range rollup.KeysOf(f.Received) {
				bad = s.live.Hold(tx, pk) || bad
			}
			facts = append(facts, f)
		}
		s.live.Apply(facts, time.Now())
		return nil
	})
	return bad, err
}

// rebuild is a recomputation of the rollups from the records, under way:
// it counts the records up to end, after the key after, a chunk per
// transaction between the commits of new reports. Meanwhile every commit
// flushes (so records after end are in the bucket), and meta "rebuilding"
// makes Open start it over if the process stops first.
type rebuild struct {
	after, end uint64
	why        string
	started    time.Time
	records    int
}

// rebuildChunk bounds the records one rebuild transaction counts.
const rebuildChunk = 5000

// stepRebuild starts a needed rebuild or takes its next step.
func (w *writer) stepRebuild(now time.Time) {
	s := w.s
	if s.Down() != nil {
		w.rebuild, w.rebuildNeeded = nil, ""
		return
	}
	if w.rebuild == nil {
		rb := &rebuild{end: w.lastKey, why: w.rebuildNeeded, started: now}
		_, err := w.transact(now, false, false, indexPerCommit, func(t *txn) {
			if err := t.tx.DeleteBucket(schema.Rollups); err != nil {
				t.err = err
				return
			}
			if _, err := t.tx.CreateBucket(schema.Rollups); err != nil {
				t.err = err
				return
			}
			t.err = putUint(t.tx.Bucket(schema.Meta), schema.RebuildingKey, 1)
			t.changed = true
		})
		if err != nil {
			return
		}
		s.live.Reset()
		s.readers.closed.gen.Add(1)
		w.rebuild, w.rebuildNeeded = rb, ""
		s.notify("rebuilding the rollups of %s from its %d records: %s", s.path, s.count.Load(), rb.why)
		return
	}
	rb := w.rebuild
	finished := false
	_, err := w.transact(now, false, true, indexPerCommit, func(t *txn) {
		c := t.tx.Bucket(schema.Records).Cursor()
		n := 0
		k, v := c.Seek(binary.BigEndian.AppendUint64(nil, rb.after+1))
		for ; k != nil && n < rebuildChunk && beUint64(k) <= rb.end; k, v = c.Next() {
			rb.after = beUint64(k)
			n++
			f, err := s.factOf(t.tx, k, v)
			if err != nil {
				continue
			}
			for _, pk := range rollup.KeysOf(f.Received) {
				s.live.Hold(t.tx, pk)
			}
			t.facts = append(t.facts, f)
		}
		rb.records += len(t.facts)
		if k == nil || beUint64(k) > rb.end {
			finished = true
			t.err = t.tx.Bucket(schema.Meta).Delete(schema.RebuildingKey)
		}
	})
	if err != nil {
		return
	}
	if finished {
		w.rebuild = nil
		s.notify("rebuilt the rollups of %s from %d records in %v", s.path, rb.records, time.Since(rb.started).Round(time.Millisecond))
	}
}
