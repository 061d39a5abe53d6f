package store

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/wal"
)

// logRecords are records as the writer logs them: keyed, located, some
// with ECS and no epoch.
func logRecords(t *testing.T, n int, at time.Time) []*record.Record {
	recs := make([]*record.Record, n)
	for i := range recs {
		epoch := int64(1700000000 + i)
		if i%5 == 4 {
			epoch = -1
		}
		id := fmt.Sprintf("%02x", i)
		if i > 0xff {
			id = fmt.Sprintf("%040x", i) // an id is 2 or 40 hex digits
		}
		beacon := "2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14," + id
		rec := newRecord(t, beacon, epoch, at.Add(time.Duration(i)*time.Millisecond))
		rec.Key = uint64(rec.Received.UnixNano())
		if i%3 == 0 {
			rec.ECS = netip.MustParsePrefix("203.0.113.0/24")
			rec.Geo = geo.Location{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.5, Lon: 13.4, HasPoint: true, Source: geo.SourceECS}
		}
		recs[i] = rec
	}
	return recs
}

// writeLog writes recs as frames the database at path lacks, as a writer
// killed after answering them would leave them, and returns the log's
// bytes.
func writeLog(t *testing.T, path string, recs []*record.Record) []byte {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	committed := s.w.log.Committed
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wal.LogPath(path)); !os.IsNotExist(err) {
		t.Fatalf("a cleanly closed store left its log: %v", err)
	}
	l, _, err := wal.Open(path, committed, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(recs); i += 7 { // in batches, as the writer logs
		if _, err := l.Append(recs[i:min(i+7, len(recs))]); err != nil {
			t.Fatal(err)
		}
	}
	l.F.Close()
	b, err := os.ReadFile(wal.LogPath(path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fileWithLog makes a database at path holding stored and, beside it, a
// log holding logged, as a writer killed after answering them leaves it.
func fileWithLog(t *testing.T, path string, stored, logged []*record.Record) {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	submitAll(t, s, stored)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	writeLog(t, path, logged)
}

// TestLogRecordRoundTrip: a logged record reads back as the record.
func TestLogRecordRoundTrip(t *testing.T) {
	for _, rec := range logRecords(t, 10, time.Now()) {
		got, err := wal.DecodeRecord(wal.AppendRecord(nil, rec), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != rec.Key || !got.Received.Equal(rec.Received) || got.Zone != rec.Zone || got.Resolver != rec.Resolver ||
			got.ECS != rec.ECS || got.Geo != rec.Geo || got.Report != rec.Report {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, rec)
		}
	}
}

// TestLogReplay: answered reports a crash kept from their commit are in
// the log; Open stores them, with their keys, once. A torn frame ends the
// log; frames the database holds already are skipped.
func TestLogReplay(t *testing.T) {
	now := time.Now().Add(-time.Minute)
	recs := logRecords(t, 40, now)
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte // of the log's bytes
		want int                   // records stored
	}{
		{"whole", func(b []byte) []byte { return b }, 40},
		{"torn last frame", func(b []byte) []byte { return b[:len(b)-3] }, 39},
		{"bit flip in frame 11", func(b []byte) []byte { b[frameAt(t, b, 10)+wal.FrameHeader+4] ^= 1; return b }, 10},
		{"stale frames after the chain", func(b []byte) []byte {
			// A pass from offset 0 shorter than the last one: what follows
			// it is older (lower seqs), and no part of the chain.
			old := append([]byte(nil), b...)
			binary.BigEndian.PutUint64(old[frameAt(t, b, 20)+8:], 1)
			return old
		}, 20},
		{"garbage length", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[frameAt(t, b, 5):], 1<<31)
			return b
		}, 5},
		{"empty", func(b []byte) []byte { return nil }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "se.db")
			b := writeLog(t, path, recs)
			if err := os.WriteFile(wal.LogPath(path), tc.edit(b), 0o600); err != nil {
				t.Fatal(err)
			}
			var events []string
			var mu sync.Mutex
			s, err := Open(path, Options{OnEvent: func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }})
			if err != nil {
				t.Fatal(err)
			}
			got := all(t, s)
			if len(got) != tc.want || s.Count() != int64(tc.want) {
				t.Fatalf("%d records (count %d) after replay, want %d; events %q", len(got), s.Count(), tc.want, events)
			}
			for i, r := range got {
				if r.Key != recs[i].Key || r.Report != recs[i].Report || r.Geo != recs[i].Geo || r.ECS != recs[i].ECS {
					t.Errorf("record %d: key %x %+v, want %x %+v", i, r.Key, r.Geo, recs[i].Key, recs[i].Geo)
				}
			}
			if tc.want > 0 && (len(events) != 1 || !strings.Contains(events[0], "write-ahead log")) {
				t.Errorf("events %q: want one line about the log", events)
			}
			// Stored once: a second open finds nothing to do, and the same
			// reports arriving again are duplicates.
			s.Close()
			s, err = Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if n := len(all(t, s)); n != tc.want {
				t.Errorf("after a second open: %d records, want %d", n, tc.want)
			}
			if tc.want > 0 {
				again := *recs[0]
				again.Received = time.Now()
				if o, err := s.Submit(&again); o != Duplicate {
					t.Errorf("a replayed report sent again: %v %v, want duplicate", o, err)
				}
			}
		})
	}
}

// frameAt is the offset of frame i of a log.
func frameAt(t *testing.T, b []byte, i int) int {
	off := 0
	for range i {
		if off+wal.FrameHeader > len(b) {
			t.Fatalf("log has fewer than %d frames", i)
		}
		off += wal.FrameHeader + int(binary.BigEndian.Uint32(b[off:]))
	}
	return off
}

// TestLogHostile: a log that is large, or whose frames are whole but hold
// no record, costs bounded memory and stores nothing bad.
func TestLogHostile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	b := writeLog(t, path, logRecords(t, 3, time.Now().Add(-time.Minute)))
	// Frame 2 (seq after frame 1) holding a record from the far future, and
	// 100 MiB of zeros after the chain.
	bad := logRecords(t, 1, time.Now().Add(48*time.Hour))
	second := frameAt(t, b, 1)
	frame := wal.AppendRecord(make([]byte, wal.FrameHeader), bad[0])
	wal.SealFrame(frame, binary.BigEndian.Uint64(b[second+8:]))
	if err := os.WriteFile(wal.LogPath(path), append(b[:second:second], frame...), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(wal.LogPath(path), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(100 << 20)
	f.Close()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(all(t, s)); n != 1 {
		t.Errorf("%d records, want the 1 valid one (a frame from the future is rejected)", n)
	}
}

// TestCheckAndSalvageReadTheLog: check counts the reports the log holds
// for the file, and salvage copies them with the file's.
func TestCheckAndSalvageReadTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "se.db")
	recs := logRecords(t, 17, time.Now().Add(-time.Minute)) // 17 distinct reports
	fileWithLog(t, path, recs[:5], recs[5:])
	r, err := Check(path)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Records != 5 || r.Logged != 12 {
		t.Fatalf("check: %+v, want 5 records and 12 logged, no problems", r)
	}
	dst := filepath.Join(t.TempDir(), "new.db")
	st, err := Salvage(path, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 17 || st.Lost != 0 || st.Missing() != 0 {
		t.Errorf("salvage: %+v, want 17 records, none lost", st)
	}
}

// An operator who moves a salvaged file over the damaged one may leave the
// damaged file's log beside it. Salvage copied what that log held, so
// opening the new file with the old log stores nothing twice.
func TestLogLeftBesideSalvagedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "se.db")
	recs := logRecords(t, 17, time.Now().Add(-time.Minute)) // 17 distinct reports
	fileWithLog(t, path, recs[:5], recs[5:])
	dst := filepath.Join(dir, "new.db")
	if _, err := Salvage(path, dst, Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dst, path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wal.LogPath(path)); err != nil {
		t.Fatalf("the old log should still be there: %v", err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := s.Count(); n != 17 {
		t.Errorf("count %d after opening the salvaged file beside the old log, want 17", n)
	}
	if n := len(all(t, s)); n != 17 {
		t.Errorf("%d records listed, want 17", n)
	}
}
