package store

import (
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// Daily public snapshots are kept as written in bucket snapshots
// (schema.go): every later request gets the same bytes, across restarts and
// imports alike; retention never deletes them.

// maxSnapshot bounds one snapshot document.
const maxSnapshot = 4 << 20

// A zone of a custom schema has snapshots of its own, under the day and
// the zone's name (snapshotKey): ModSecurity's keys, the day alone, are as
// they were.

// snapshotKey is the key of the snapshot of day for zone ("" for
// ModSecurity's zones).
func snapshotKey(day time.Time, zone string) []byte {
	return append(numKey(rollup.DayOf(day)), zone...)
}

// Snapshot returns the snapshot of day d, if one was saved.
func (s *Store) Snapshot(day time.Time) ([]byte, bool, error) {
	return s.ZoneSnapshot(day, "")
}

// ZoneSnapshot returns the snapshot of day d of zone ("" for ModSecurity's
// zones), if one was saved.
func (s *Store) ZoneSnapshot(day time.Time, zone string) ([]byte, bool, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(schema.Snapshots).Get(snapshotKey(day, zone)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	return out, out != nil, err
}

// SaveSnapshot keeps doc as the snapshot of day, unless one is kept already
// (a snapshot never changes); it returns the one kept.
func (s *Store) SaveSnapshot(day time.Time, doc []byte) ([]byte, error) {
	return s.SaveZoneSnapshot(day, "", doc)
}

// SaveZoneSnapshot is SaveSnapshot of zone ("" for ModSecurity's zones).
func (s *Store) SaveZoneSnapshot(day time.Time, zone string, doc []byte) ([]byte, error) {
	if len(doc) > maxSnapshot {
		return nil, errors.New("snapshot too large")
	}
	kept := doc
	err := s.do(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Snapshots)
		k := snapshotKey(day, zone)
		if v := b.Get(k); v != nil {
			kept = append([]byte(nil), v...)
			return nil
		}
		return b.Put(k, doc)
	})
	return kept, err
}

// SnapshotDays lists the days that have a snapshot, oldest first.
func (s *Store) SnapshotDays() ([]time.Time, error) {
	return s.ZoneSnapshotDays("")
}

// ZoneSnapshotDays lists the days that have a snapshot of zone ("" for
// ModSecurity's zones), oldest first.
func (s *Store) ZoneSnapshotDays(zone string) ([]time.Time, error) {
	var out []time.Time
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(schema.Snapshots).ForEach(func(k, _ []byte) error {
			if len(k) == 4+len(zone) && string(k[4:]) == zone {
				out = append(out, time.Unix(int64(beUint32(k))*86400, 0).UTC())
			}
			return nil
		})
	})
	return out, err
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
