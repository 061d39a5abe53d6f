package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
)

// CheckReport is what Check found in a database file.
type CheckReport struct {
	// Problems lists the damage, at most about a hundred lines; none when
	// the file is sound.
	Problems []string
	// Records counts the records that could be read; Unreadable those that
	// could not (a bad value, or a dictionary row they need is missing).
	Records, Unreadable int
	// Pages is the file's size in pages.
	Pages uint64
}

// OK tells whether Check found no damage.
func (r *CheckReport) OK() bool { return len(r.Problems) == 0 && r.Unreadable == 0 }

// Check reads the database file at path without writing it: first every
// page, without mapping the file (boltfile); when those are sound, every
// record, dictionary row and rollup through bbolt, read-only.
func Check(path string) (*CheckReport, error) {
	r := &CheckReport{}
	fr, err := CheckFile(path)
	var damaged *DamagedError
	if errors.As(err, &damaged) {
		r.Problems = damaged.Problems
		return r, nil
	}
	if err != nil {
		return nil, err
	}
	r.Pages = fr.Pages
	if !fr.OK() {
		r.Problems = fr.Problems
		return r, nil
	}
	db, err := bolt.Open(path, 0o400, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer db.Close()
	s := &Store{db: db, path: path}
	problem := func(format string, a ...any) {
		if len(r.Problems) < 100 {
			r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
		}
	}
	err = s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(legacyReports) != nil {
			problem("format 1 (statusengine before the dictionaries): the next Open migrates it")
			return nil
		}
		for _, name := range bucketsV2 {
			if tx.Bucket(name) == nil {
				problem("bucket %q missing", name)
			}
		}
		if len(r.Problems) > 0 {
			return nil
		}
		c := tx.Bucket(recordsBucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if _, err := s.readRecord(tx, k, v); err != nil {
				r.Unreadable++
				if r.Unreadable <= 10 {
					problem("record %x: %v", k, err)
				}
				continue
			}
			r.Records++
		}
		rc := tx.Bucket(rollupsBucket).Cursor()
		for k, v := rc.First(); k != nil; k, v = rc.Next() {
			if len(k) != 5 {
				problem("rollup key %x: bad length", k)
				continue
			}
			if _, err := decodePeriod(v, k[0]); err != nil {
				problem("rollup %x: %v (Open rebuilds the rollups from the records)", k, err)
			}
		}
		if n := getUint(tx.Bucket(metaBucket), countKey); n != uint64(r.Records+r.Unreadable) {
			problem("meta count says %d records, the file holds %d", n, r.Records+r.Unreadable)
		}
		return nil
	})
	if err != nil {
		problem("%v", err)
	}
	return r, nil
}

// SalvageStats says what Salvage copied.
type SalvageStats struct {
	Records  int   // records copied into the new file
	Lost     int   // records seen but unreadable: a bad value, or a dictionary row they need is damaged
	Expected int64 // records the damaged file's meta counted; -1 when it cannot be read
	Skipped  int   // damaged subtrees of pages that were skipped whole
}

// Missing is the number of records the damaged file held that are not in
// the new one, as far as its count tells (-1 when unknown).
func (st SalvageStats) Missing() int64 {
	if st.Expected < 0 {
		return -1
	}
	return max(0, st.Expected-int64(st.Records))
}

// Salvage copies every record it can read from the file at src, damaged or
// not, into a new database at dst, which must not exist: it reads src page
// by page without mapping it (boltfile) and never writes it, and stores the
// records through the importer's path, so the new file's dictionaries,
// de-duplication and rollups are built afresh. Dictionary rows are held in
// memory while it runs (about 100 bytes per installation).
func Salvage(src, dst string, opts Options) (SalvageStats, error) {
	st := SalvageStats{Expected: -1}
	if _, err := os.Stat(dst); err == nil {
		return st, fmt.Errorf("%s exists: salvage writes a new file", dst)
	}
	f, err := boltfile.Open(src)
	if err != nil {
		return st, err
	}
	defer f.Close()
	out, err := Open(dst, opts)
	if err != nil {
		return st, err
	}
	defer out.Close()

	rows := func(bucket []byte) map[uint32][]byte {
		m := map[uint32][]byte{}
		skipped, _ := f.Walk(string(bucket), func(k, v []byte) error {
			if len(k) == 4 {
				m[binary.BigEndian.Uint32(k)] = append([]byte(nil), v...)
			}
			return nil
		})
		st.Skipped += skipped
		return m
	}
	f.Walk(string(metaBucket), func(k, v []byte) error {
		if string(k) == string(countKey) && len(v) == 8 {
			st.Expected = int64(binary.BigEndian.Uint64(v))
		}
		return nil
	})

	im := NewImporter(out, nil)
	add := func(rec *Record, err error) error {
		if err != nil {
			st.Lost++
			return nil
		}
		return im.Add(rec, 0)
	}
	if legacy, err := f.Walk(string(legacyReports), func(k, v []byte) error { return add(legacyRecord(k, v)) }); err == nil {
		st.Skipped += legacy
	} else {
		zones, places, builds, installs := rows(zonesBucket), rows(placesBucket), rows(buildsBucket), rows(installsBucket)
		skipped, err := f.Walk(string(recordsBucket), func(k, v []byte) error {
			return add(salvageRecord(k, v, zones, places, builds, installs))
		})
		st.Skipped += skipped
		if err != nil && !strings.Contains(err.Error(), "not found") {
			return st, err
		}
	}
	if err := im.Flush(); err != nil {
		return st, err
	}
	st.Records = im.Stats.Imported + im.Stats.Duplicate
	st.Lost += im.Stats.Rejected
	return st, nil
}

// salvageRecord is readRecord over dictionary rows held in memory.
func salvageRecord(k, v []byte, zones, places, builds, installs map[uint32][]byte) (*Record, error) {
	rec := &Record{}
	r, err := decodeRecord(k, v, rec)
	if err != nil {
		return nil, err
	}
	z, ok := zones[r.zone]
	if !ok {
		return nil, errDangling
	}
	rec.Zone = string(z)
	if r.place != 0 {
		pv, ok := places[r.place]
		if !ok {
			return nil, errDangling
		}
		if rec.Geo, err = decodePlace(pv); err != nil {
			return nil, err
		}
	}
	iv, ok := installs[r.install]
	if !ok {
		return nil, errDangling
	}
	build, _, id, err := decodeInstallation(iv)
	if err != nil {
		return nil, err
	}
	head, ok := builds[build]
	if !ok || len(head) > maxHead || len(id) > maxID {
		return nil, errDangling
	}
	rep, err := codec.ParseBeacon(codec.Join(string(head), id))
	if err != nil {
		return nil, err
	}
	rep.Epoch, rep.HasEpoch = rec.Report.Epoch, rec.Report.HasEpoch
	rec.Report = rep
	return rec, nil
}
