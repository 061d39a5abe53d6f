package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
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
	// Logged counts the reports its write-ahead log holds that the file
	// lacks (answered, then the process died before their commit): the
	// next Open stores them.
	Logged int
	// LogRefused, when not "", says why the store refuses the log (it is
	// among Problems too): the server answers after each commit until it
	// is moved away.
	LogRefused string
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
		if tx.Bucket(schema.LegacyReports) != nil {
			problem("format 1 (statusengine before the dictionaries): the next Open migrates it")
			return nil
		}
		for _, name := range schema.BucketsV2 {
			if tx.Bucket(name) == nil {
				problem("bucket %q missing", name)
			}
		}
		if len(r.Problems) > 0 {
			return nil
		}
		sc, bad := loadSchemas(tx)
		for _, b := range bad {
			problem("%s", b)
		}
		s.schemas.Store(sc)
		c := tx.Bucket(schema.Records).Cursor()
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
		rc := tx.Bucket(schema.Rollups).Cursor()
		for k, v := rc.First(); k != nil; k, v = rc.Next() {
			if len(k) != 5 {
				problem("rollup key %x: bad length", k)
				continue
			}
			if _, err := rollup.DecodePeriod(v, k[0]); err != nil {
				problem("rollup %x: %v (Open rebuilds the rollups from the records)", k, err)
			}
		}
		if n := getUint(tx.Bucket(schema.Meta), schema.CountKey); n != uint64(r.Records+r.Unreadable) {
			problem("meta count says %d records, the file holds %d", n, r.Records+r.Unreadable)
		}
		recs, bad, err := wal.ReadLog(path, getUint(tx.Bucket(schema.Meta), schema.WalKey), sc)
		var refused *wal.LogRefusedError
		switch {
		case errors.As(err, &refused):
			r.LogRefused = err.Error()
			problem("%v (the server answers after each commit until it is moved away)", err)
		case err != nil:
			problem("write-ahead log: %v", err)
		}
		for _, b := range bad {
			problem("write-ahead log %s", b)
		}
		r.Logged = len(recs)
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
	var logged uint64
	f.Walk(string(schema.Meta), func(k, v []byte) error {
		switch {
		case string(k) == string(schema.CountKey) && len(v) == 8:
			st.Expected = int64(binary.BigEndian.Uint64(v))
		case string(k) == string(schema.WalKey) && len(v) == 8:
			logged = binary.BigEndian.Uint64(v)
		}
		return nil
	})

	// The zones' custom schemas, from the file: the new file keeps them,
	// and its records of those zones are read with them.
	var schemas *record.Schemas
	f.Walk(string(schema.Schemas), func(k, v []byte) error {
		z := string(k)
		if s, err := record.DecodeSchema(v); err == nil && record.ValidZone(z) == nil {
			if err := out.SetSchema([]string{z}, s); err == nil {
				schemas = schemas.With(z, s)
			}
		}
		return nil
	})

	im := NewImporter(out, nil)
	add := func(rec *record.Record, err error) error {
		if err != nil {
			st.Lost++
			return nil
		}
		return im.Add(rec, 0)
	}
	if legacy, err := f.Walk(string(schema.LegacyReports), func(k, v []byte) error { return add(legacyRecord(k, v)) }); err == nil {
		st.Skipped += legacy
	} else {
		zones, places, builds, installs := rows(schema.Zones), rows(schema.Places), rows(schema.Builds), rows(schema.Installations)
		walked := map[uint64]bool{}
		skipped, err := f.Walk(string(schema.Records), func(k, v []byte) error {
			if len(k) == 8 {
				walked[binary.BigEndian.Uint64(k)] = true
			}
			return add(salvageRecord(k, v, zones, places, builds, installs, schemas))
		})
		st.Skipped += skipped
		if st.Skipped > 0 || err != nil {
			// Part of the tree is lost: look at every page for leaves
			// of records and dictionary rows the walk could not reach.
			if err := deepScan(f, walked, zones, places, builds, installs, schemas, add); err != nil {
				return st, err
			}
		}
	}
	// Answered reports the file lacks are in its log (read like the file:
	// a frame that holds no record is lost, and the log ends there).
	// A log that is not ours is read all the same, as Open does (ReadLog).
	// A log refused for a link or for being the database gives no record;
	// one that cannot be read at all (permissions, an I/O error) may hold
	// answered reports: say so rather than copy without them.
	recs, bad, err := wal.ReadLog(src, logged, schemas)
	var refused *wal.LogRefusedError
	if err != nil && !errors.As(err, &refused) {
		return st, fmt.Errorf("reading the write-ahead log: %w (move it away to salvage without it)", err)
	}
	st.Lost += len(bad)
	if st.Expected >= 0 {
		st.Expected += int64(len(recs))
	}
	for _, rec := range recs {
		if err := im.Add(rec, 0); err != nil {
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

// deepScan reads every leaf-looking page of f (boltfile.ScanLeaves): it
// adds the dictionary rows the walk lacked, told apart by what their values
// decode as, then every record not walked already. Copies of pages on the
// freelist can hold records retention deleted since; the new file's first
// sweep deletes them again.
func deepScan(f *boltfile.File, walked map[uint64]bool, zones, places, builds, installs map[uint32][]byte,
	schemas *record.Schemas, add func(*record.Record, error) error) error {
	found := map[uint64][]byte{}
	err := f.ScanLeaves(func(k, v []byte) error {
		switch len(k) {
		case 4:
			n := binary.BigEndian.Uint32(k)
			switch {
			case record.ValidZone(string(v)) == nil:
				addRow(zones, n, v)
			case len(v) <= maxHead+maxZoneLen && parseHeadOK(v, schemas):
				addRow(builds, n, v)
			case installationOK(v, len(schemas.Zones()) > 0):
				addRow(installs, n, v)
			default:
				if _, err := record.DecodePlace(v); err == nil {
					addRow(places, n, v)
				}
			}
		case 8:
			key := binary.BigEndian.Uint64(k)
			if len(v) > 0 && v[0] == record.Version && !walked[key] && found[key] == nil {
				found[key] = append([]byte(nil), v...)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	keys := make([]uint64, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := add(salvageRecord(binary.BigEndian.AppendUint64(nil, k), found[k], zones, places, builds, installs, schemas)); err != nil {
			return err
		}
	}
	return nil
}

func addRow(m map[uint32][]byte, n uint32, v []byte) {
	if _, ok := m[n]; !ok {
		m[n] = append([]byte(nil), v...)
	}
}

func parseHeadOK(v []byte, schemas *record.Schemas) bool {
	_, err := parseBuild(v, schemas)
	return err == nil
}

// With custom schemas in the file (custom), an id may be any field of
// theirs.
func installationOK(v []byte, custom bool) bool {
	_, _, id, err := record.DecodeInstallation(v)
	if err != nil || len(id) > maxID {
		return false
	}
	if _, err = codec.ParseBeacon(codec.Join("0,x,0/0,0/,(null),(null)", id)); err == nil || !custom {
		return err == nil
	}
	// A custom schema's id: a field of printable ASCII without a comma.
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x20 || c > 0x7e || c == codec.Separator {
			return false
		}
	}
	return true
}

// salvageRecord is readRecord over dictionary rows held in memory.
func salvageRecord(k, v []byte, zones, places, builds, installs map[uint32][]byte, schemas *record.Schemas) (*record.Record, error) {
	rec := &record.Record{}
	r, err := record.Decode(k, v, rec)
	if err != nil {
		return nil, err
	}
	z, ok := zones[r.Zone]
	if !ok {
		return nil, errDangling
	}
	rec.Zone = string(z)
	if r.Place != 0 {
		pv, ok := places[r.Place]
		if !ok {
			return nil, errDangling
		}
		if rec.Geo, err = record.DecodePlace(pv); err != nil {
			return nil, err
		}
	}
	iv, ok := installs[r.Install]
	if !ok {
		return nil, errDangling
	}
	build, _, id, err := record.DecodeInstallation(iv)
	if err != nil {
		return nil, err
	}
	row, ok := builds[build]
	if !ok || len(row) > maxHead+maxZoneLen || len(id) > maxID {
		return nil, errDangling
	}
	var rep codec.Report
	if zone, head := splitBuildRow(row); zone != "" {
		if zone != rec.Zone {
			return nil, errDangling
		}
		rep, err = schemas.Parse(zone, schemas.Of(zone).JoinID(head, id))
	} else if len(row) > maxHead {
		return nil, errDangling
	} else {
		rep, err = codec.ParseBeacon(codec.Join(head, id))
	}
	if err != nil {
		return nil, err
	}
	rep.Epoch, rep.HasEpoch = rec.Report.Epoch, rec.Report.HasEpoch
	rec.Report = rep
	return rec, nil
}
