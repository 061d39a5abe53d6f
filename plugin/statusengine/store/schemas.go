package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/RoaringBitmap/roaring/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// Schemas are the zones' custom schemas the store knows: those the file
// holds (bucket schemas), with those SetSchema gave since Open. Every
// beacon the store reads or writes goes through them (record.Schemas).
func (s *Store) Schemas() *record.Schemas { return s.schemas.Load() }

// SetSchema records that zones report with schema sc (codec.ModSecurity or
// a custom one), before any of their reports is stored: the file keeps a
// custom schema in bucket schemas, so that its records are read with it
// after a restart, without a Corefile. A schema that changes what the
// zone's stored reports mean (anything but codec.Schema.Extends allows:
// fields added at the end, the same roles), or a switch between
// ModSecurity's schema and a custom one for a zone that holds reports, is
// refused with an error naming the zone, and nothing is changed: reports
// stored are read by the schema they were stored with, or not at all.
func (s *Store) SetSchema(zones []string, sc *codec.Schema) error {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	var next *record.Schemas
	// Read first: a file that already holds what sc says (every reload of
	// an unchanged Corefile, every ModSecurity zone) needs no write, and a
	// write would fail on a file at its max_size before the reload's new
	// Policy raises it (TestMaxSize).
	write := false
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Schemas)
		if b == nil {
			write = true
			return nil
		}
		next = s.schemas.Load()
		for _, z := range zones {
			if err := checkSchemaChange(tx, b, z, sc); err != nil {
				return err
			}
			if !sc.IsModSecurity() && !bytes.Equal(b.Get([]byte(z)), record.AppendSchema(nil, sc)) {
				write = true
			}
			next = next.With(z, sc)
		}
		return nil
	})
	if err == nil && write {
		err = s.do(s.putSchema(zones, sc, &next))
	}
	if err != nil {
		return err
	}
	s.schemas.Store(next)
	if write {
		// Builds parsed with a zone's previous schema lack the fields
		// added; a reload that changed nothing keeps them.
		s.readers.mu.Lock()
		s.readers.builds = nil
		s.readers.mu.Unlock()
	}
	return nil
}

// putSchema is SetSchema's write: the checks again, in the writer's
// transaction, and the rows of a custom schema; *next gets the lookup.
func (s *Store) putSchema(zones []string, sc *codec.Schema, next **record.Schemas) func(tx *bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(schema.Schemas)
		if err != nil {
			return err
		}
		*next = s.schemas.Load()
		for _, z := range zones {
			if err := checkSchemaChange(tx, b, z, sc); err != nil {
				return err
			}
			if !sc.IsModSecurity() {
				v := record.AppendSchema(nil, sc)
				if !bytes.Equal(b.Get([]byte(z)), v) {
					if err := b.Put([]byte(z), v); err != nil {
						return err
					}
				}
			}
			*next = (*next).With(z, sc)
		}
		return nil
	}
}

// checkSchemaChange says why zone z may not take schema sc, given the
// file's bucket schemas b.
func checkSchemaChange(tx *bolt.Tx, b *bolt.Bucket, z string, sc *codec.Schema) error {
	const see = "(docs/schemas.md, Changing a schema)"
	v := b.Get([]byte(z))
	if v == nil {
		if sc.IsModSecurity() || !holdsZone(tx, z) {
			return nil
		}
		return fmt.Errorf("zone %s: the database holds reports of ModSecurity's schema for it, and the Corefile gives it the schema %q: they would be unreadable %s", z, sc, see)
	}
	old, err := record.DecodeSchema(v)
	if err != nil {
		return fmt.Errorf("zone %s: the database's schema for it is unreadable: %v", z, err)
	}
	if err := sc.Extends(old); err != nil {
		return fmt.Errorf("zone %s: the database keeps its reports with the schema %q, the Corefile says %q: %v %s", z, old, sc, err, see)
	}
	if sc.MinFields() != old.MinFields() {
		// Every beacon stored must still fit: its field count, and the
		// bound on its head, which depends on min_fields (codec/schema.go).
		return fmt.Errorf("zone %s: min_fields changes from %d to %d: give the new schema min_fields %d, so that the reports stored stay readable and clients that do not send the new fields yet keep reporting %s",
			z, old.MinFields(), sc.MinFields(), old.MinFields(), see)
	}
	return nil
}

// holdsZone tells whether the zones dictionary has z: some record of z
// was stored (the dictionary is small: one row per zone).
func holdsZone(tx *bolt.Tx, z string) bool {
	c := tx.Bucket(schema.Zones).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if string(v) == z {
			return true
		}
	}
	return false
}

// loadSchemas reads bucket schemas (absent in files before it: none). A
// row that cannot be read leaves its zone's custom records unreadable, and
// is named by Check.
func loadSchemas(tx *bolt.Tx) (*record.Schemas, []string) {
	var sc *record.Schemas
	var problems []string
	b := tx.Bucket(schema.Schemas)
	if b == nil {
		return sc, nil
	}
	b.ForEach(func(k, v []byte) error {
		z := string(k)
		if err := record.ValidZone(z); err != nil {
			problems = append(problems, fmt.Sprintf("schemas: zone %.80q: %v", k, err))
			return nil
		}
		s, err := record.DecodeSchema(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("schemas: zone %s: %v", z, err))
			return nil
		}
		sc = sc.With(z, s)
		return nil
	})
	return sc, problems
}

// buildSep separates the zone from the head in a builds row of a custom
// schema's zone: zone, NUL, head. ModSecurity's heads are printable ASCII,
// so their rows, and every file before schemas, are unchanged.
const buildSep = 0

// buildRow is the builds dictionary's value of head for zone z of custom
// schema (custom), or head alone for ModSecurity's.
func buildRow(z string, custom bool, head string) []byte {
	if !custom {
		return []byte(head)
	}
	b := make([]byte, 0, len(z)+1+len(head))
	b = append(b, z...)
	b = append(b, buildSep)
	return append(b, head...)
}

// splitBuildRow cuts a builds row into its zone ("" for ModSecurity's) and
// head.
func splitBuildRow(v []byte) (zone, head string) {
	if i := bytes.IndexByte(v, buildSep); i >= 0 {
		return string(v[:i]), string(v[i+1:])
	}
	return "", string(v)
}

// zoneNumber is zone's number in the zones dictionary; false when no
// record of it was stored.
func (s *Store) zoneNumber(zone string) (n uint32, ok bool) {
	s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(schema.Zones).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if string(v) == zone && len(k) == 4 {
				n, ok = binary.BigEndian.Uint32(k), true
				return nil
			}
		}
		return nil
	})
	return n, ok
}

// customSet is the installations of custom schemas' zones, found from
// their rows up to upTo: installation numbers only grow, so each call reads
// the rows numbered since the last.
type customSet struct {
	mu     sync.Mutex
	upTo   uint32
	set    *roaring.Bitmap            // of every custom zone
	byZone map[string]*roaring.Bitmap // of each
}

// customInstalls is the installations whose build is of a custom schema's
// zone (a copy). The first call reads every installation row (about a
// second for a million); later ones the rows added since.
func (s *Store) customInstalls() (*roaring.Bitmap, error) {
	return s.zoneInstalls("")
}

// zoneInstalls is the installations of custom zone zone ("": of every
// custom zone), a copy; see customInstalls.
func (s *Store) zoneInstalls(zone string) (*roaring.Bitmap, error) {
	c := &s.custom
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		c.set, c.byZone = roaring.New(), map[string]*roaring.Bitmap{}
	}
	err := s.view(func(tx *bolt.Tx) error {
		cur := tx.Bucket(schema.Installations).Cursor()
		for k, v := cur.Seek(numKey(c.upTo + 1)); k != nil; k, v = cur.Next() {
			if len(k) != 4 {
				continue
			}
			n := binary.BigEndian.Uint32(k)
			c.upTo = n
			build, _, _, err := record.DecodeInstallation(v)
			if err != nil {
				continue
			}
			if b, err := s.build(tx, build); err == nil && b.zone != "" {
				c.set.Add(n)
				if c.byZone[b.zone] == nil {
					c.byZone[b.zone] = roaring.New()
				}
				c.byZone[b.zone].Add(n)
			}
		}
		return nil
	})
	if zone == "" {
		return c.set.Clone(), err
	}
	if z := c.byZone[zone]; z != nil {
		return z.Clone(), err
	}
	return roaring.New(), err
}
