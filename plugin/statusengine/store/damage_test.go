package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

// sample writes a database of n records over the last 40 days and returns
// its path; the file is closed.
func sample(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "se.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 7))
	submitAll(t, s, genRecords(t, r, genInstalls(r, 500), n, time.Now().Add(-40*24*time.Hour), 40*24*time.Hour))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func copyFile(t testing.TB, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dst
}

// damage rewrites the file at path with f.
func damage(t testing.TB, path string, f func(b []byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o600); err != nil {
		t.Fatal(err)
	}
}

// useAll does everything a server does with a store and must neither panic
// nor fault.
func useAll(t *testing.T, s *Store) {
	now := time.Now()
	all(t, s)
	s.Totals(now.Add(-60*24*time.Hour), now)
	s.Series(now.Add(-60*24*time.Hour), now, StepDay, rollup.DimModsec)
	s.Submit(newRecord(t, realBeacon, now.Unix(), now))
}

// TestDamagedFiles: overwritten, zeroed and truncated pages never crash
// Open or a reader: either the file is refused (a DamagedError naming what
// to run) or, when the damage hit only free pages, it works; nothing is
// ever written into a refused file; Check reports what Open refused, and
// Salvage copies what is readable.
func TestDamagedFiles(t *testing.T) {
	orig := sample(t, 3000)
	info, _ := os.Stat(orig)
	pages := int(info.Size() / 4096)
	r := rand.New(rand.NewPCG(3, 4))
	random := func(n int) func([]byte) []byte {
		return func(b []byte) []byte {
			for range n {
				p := 2 + r.IntN(pages-2)
				for i := range 4096 {
					b[p*4096+i] = byte(r.IntN(256))
				}
			}
			return b
		}
	}
	zero := func(n int) func([]byte) []byte {
		return func(b []byte) []byte {
			for range n {
				p := 2 + r.IntN(pages-2)
				clear(b[p*4096 : (p+1)*4096])
			}
			return b
		}
	}
	cases := []struct {
		name string
		f    func([]byte) []byte
	}{
		{"1 random page", random(1)},
		{"10 random pages", random(10)},
		{"100 random pages", random(min(100, pages/2))},
		{"20 zeroed pages", zero(20)},
		{"first 12 KiB only", func(b []byte) []byte { return b[:12<<10] }},
		{"cut in half", func(b []byte) []byte { return b[:len(b)/2] }},
		{"meta pages zeroed", func(b []byte) []byte { clear(b[:8192]); return b }},
		{"one meta page zeroed", func(b []byte) []byte { clear(b[:4096]); return b }},
	}
	for i := range 5 { // more random damage, at other places
		cases = append(cases, struct {
			name string
			f    func([]byte) []byte
		}{fmt.Sprintf("random pages %d", i), random(1 + i*7)})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := copyFile(t, orig)
			damage(t, path, c.f)
			before, _ := os.ReadFile(path)
			s, err := Open(path, Options{})
			var d *DamagedError
			switch {
			case errors.As(err, &d):
				t.Logf("refused: %v", err)
				after, _ := os.ReadFile(path)
				if string(before) != string(after) {
					t.Fatal("a refused file was written")
				}
				rep, err := Check(path)
				if err != nil || rep.OK() {
					t.Errorf("Check of a refused file: %+v %v, want problems", rep, err)
				}
				st, err := Salvage(path, filepath.Join(t.TempDir(), "new.db"), Options{})
				if err != nil {
					t.Logf("salvage: %v", err)
				}
				t.Logf("salvaged %d, lost %d, expected %d, skipped %d subtrees", st.Records, st.Lost, st.Expected, st.Skipped)
			case err != nil:
				t.Fatalf("Open: %v, want a DamagedError or success", err)
			default:
				t.Log("damage hit free pages only: opened")
				useAll(t, s)
				s.Close()
			}
		})
	}
}

// TestSalvageCopiesEveryReadableRecord: a file with one damaged leaf of
// records loses that leaf's records only.
func TestSalvageCopiesEveryReadableRecord(t *testing.T) {
	orig := sample(t, 5000)
	good, err := Salvage(orig, filepath.Join(t.TempDir(), "good.db"), Options{})
	if err != nil || good.Records != 5000 || good.Lost != 0 || good.Expected != 5000 || good.Missing() != 0 {
		t.Fatalf("salvage of a sound file: %+v %v", good, err)
	}
	// Zero one page of the records bucket: a leaf in the middle.
	path := copyFile(t, orig)
	f, err := boltfile.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := f.Leaves(string(schema.Records))
	f.Close()
	if err != nil || len(leaves) < 3 {
		t.Fatalf("leaves of records: %v %v", leaves, err)
	}
	leaf := leaves[len(leaves)/2]
	damage(t, path, func(b []byte) []byte { clear(b[leaf*4096 : (leaf+1)*4096]); return b })
	if _, err := Open(path, Options{}); !errors.As(err, new(*DamagedError)) {
		t.Fatalf("Open of a file with a zeroed leaf: %v", err)
	}
	out := filepath.Join(t.TempDir(), "new.db")
	st, err := Salvage(path, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("salvaged %d of %d, missing %d, skipped %d", st.Records, st.Expected, st.Missing(), st.Skipped)
	if st.Records < 4500 || st.Records >= 5000 || st.Missing() != int64(5000-st.Records) || st.Skipped != 1 {
		t.Errorf("salvage: %+v", st)
	}
	s, err := Open(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tt, _ := s.Totals(time.Now().Add(-50*24*time.Hour), time.Now())
	if int(s.Count()) != st.Records || tt.Total.Reports != uint64(st.Records) {
		t.Errorf("new file: count %d, rollups %d, want %d", s.Count(), tt.Total.Reports, st.Records)
	}
}

// TestHostileValidFiles: a sound bbolt file whose buckets or values are
// not what statusengine writes gets a clear error or works, never a crash
// or a huge allocation.
func TestHostileValidFiles(t *testing.T) {
	orig := sample(t, 200)
	cases := []struct {
		name string
		edit func(tx *bolt.Tx) error
	}{
		{"count is a bucket", func(tx *bolt.Tx) error {
			m := tx.Bucket(schema.Meta)
			m.Delete(schema.CountKey)
			_, err := m.CreateBucket(schema.CountKey)
			return err
		}},
		{"format is a bucket", func(tx *bolt.Tx) error {
			m := tx.Bucket(schema.Meta)
			m.Delete(schema.FormatKey)
			_, err := m.CreateBucket(schema.FormatKey)
			return err
		}},
		{"records is a value", func(tx *bolt.Tx) error {
			tx.DeleteBucket(schema.Records)
			return tx.Bucket(schema.Meta).Put([]byte("x"), []byte("y")) // and no records bucket
		}},
		{"absurd counters", func(tx *bolt.Tx) error {
			m := tx.Bucket(schema.Meta)
			for _, k := range []string{"count", "rolled", "indexed.installations", "indexed.builds"} {
				if err := putUint(m, []byte(k), 1<<63+5); err != nil {
					return err
				}
			}
			return putUint(m, []byte("installation_next"), 1<<32+5)
		}},
		{"installation number at the top", func(tx *bolt.Tx) error {
			return tx.Bucket(schema.Installations).Put(numKey(1<<32-1), []byte{1, 0, '7', '5'})
		}},
		{"garbage dictionary rows", func(tx *bolt.Tx) error {
			for _, b := range [][]byte{schema.Zones, schema.Places, schema.Builds, schema.Installations} {
				c := tx.Bucket(b).Cursor()
				for k, _ := c.First(); k != nil; k, _ = c.Next() {
					if err := tx.Bucket(b).Put(append([]byte(nil), k...), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{"huge build", func(tx *bolt.Tx) error {
			return tx.Bucket(schema.Builds).Put(numKey(1), make([]byte, 4<<20))
		}},
		{"garbage records", func(tx *bolt.Tx) error {
			c := tx.Bucket(schema.Records).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if err := tx.Bucket(schema.Records).Put(append([]byte(nil), k...), []byte{2, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}); err != nil {
					return err
				}
			}
			return nil
		}},
		{"garbage rollups", func(tx *bolt.Tx) error {
			return tx.Bucket(schema.Rollups).Put([]byte{'d', 0, 0, 0, 1}, []byte{1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3})
		}},
		{"newer format", func(tx *bolt.Tx) error { return putUint(tx.Bucket(schema.Meta), schema.FormatKey, 99) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := copyFile(t, orig)
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(c.edit); err != nil {
				t.Fatal(err)
			}
			db.Close()
			s, err := Open(path, Options{})
			if err != nil {
				t.Logf("refused: %v", err)
				return
			}
			useAll(t, s)
			s.Close()
			rep, err := Check(path)
			t.Logf("opened; check: %v problems, %d unreadable (%v)", len(rep.Problems), rep.Unreadable, err)
		})
	}
}
