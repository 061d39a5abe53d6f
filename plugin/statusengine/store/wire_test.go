package store

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
)

// fill stores a varied set of records: with and without epoch, ECS and geo,
// two in the same nanosecond.
func fill(t *testing.T, s *Store) []*record.Record {
	t.Helper()
	base := time.Unix(1795549302, 123456789)
	recs := []*record.Record{
		newRecord(t, realBeacon, 1795549302, base),
		newRecord(t, realBeacon, 1795549303, base), // same nanosecond: key moves up by one
		newRecord(t, realBeacon, -1, base.Add(time.Minute)),
		newRecord(t, "2.7.7,Apache/2.4.4 (Unix),1.4.6/1.4.6, 8.32 /8.32 2012-11-30,Lua 5.1/(null),2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8", 1400000000, base.Add(time.Hour)),
	}
	recs[1].ECS = netip.MustParsePrefix("198.51.100.0/24")
	recs[1].Geo = geo.Location{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405, HasPoint: true, Source: "ecs"}
	recs[2].Resolver = netip.MustParseAddr("2001:db8::53")
	recs[3].Geo = geo.Location{Country: "FR", CountryName: "France", Source: "resolver"}
	submitAll(t, s, recs)
	return recs
}

func TestExportImportRoundTrip(t *testing.T) {
	src := openTemp(t)
	fill(t, src)
	var buf bytes.Buffer
	n, err := src.Export(&buf, time.Unix(1, 0), time.Unix(1<<33-1, 0))
	if err != nil || n != 4 || strings.Count(buf.String(), "\n") != 4 {
		t.Fatalf("Export = %d, %v:\n%s", n, err, buf.String())
	}
	dst := openTemp(t)
	stats, err := dst.ImportNDJSON(bytes.NewReader(buf.Bytes()), nil)
	if err != nil || stats != (ImportStats{Imported: 4}) {
		t.Fatalf("first import = %+v, %v", stats, err)
	}
	// Idempotent: the same stream again stores nothing.
	stats, err = dst.ImportNDJSON(bytes.NewReader(buf.Bytes()), nil)
	if err != nil || stats != (ImportStats{Duplicate: 4}) {
		t.Fatalf("second import = %+v, %v", stats, err)
	}
	want, got := all(t, src), all(t, dst)
	for i := range want {
		w, g := want[i], got[i]
		if w.Key != g.Key || !w.Received.Equal(g.Received) || w.Zone != g.Zone || w.Resolver != g.Resolver ||
			w.ECS != g.ECS || w.Geo != g.Geo || w.Report != g.Report {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	// One wire form: the line of a record is its Wire, key and installation included.
	var first record.Wire
	json.Unmarshal(bytes.SplitN(buf.Bytes(), []byte("\n"), 2)[0], &first)
	if first.Key != record.KeyString(want[0].Key) || first.Report == nil || first.Report.Modsec != "2.9.7" || first.Installation == "" {
		t.Errorf("first line %+v", first)
	}
}

// TestImportRejects: every line an import refuses is named, with its line
// number, whether the parser or the store's validation refused it; nothing
// of it is stored, and the good lines are.
func TestImportRejects(t *testing.T) {
	s := openTemp(t)
	good := newRecord(t, realBeacon, 1795549302, time.Unix(1795549302, 0))
	good.Key = uint64(good.Received.UnixNano())
	goodLine, _ := json.Marshal(good.Wire())
	long := strings.Repeat("x", 40000)
	input := strings.Join([]string{
		string(goodLine),
		"",
		"not json",
		`{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"not a beacon"}`,
		`{"zone":"status.modsecurity.org.","beacon":"` + realBeacon + `"}`,
		`{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","resolver":"999.1.1.1"}`,
		`{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","ecs":"10.0.0.0/99"}`,
		`{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","epoch":-5}`,
		// What live ingest can never produce (issue 9: a 40 KB country).
		`{"received":"2026-11-25T08:00:01Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","geo":{"country":"` + long + `"}}`,
		`{"received":"2026-11-25T08:00:02Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","geo":{"country":"DE","city":"` + long + `"}}`,
		`{"received":"2026-11-25T08:00:03Z","zone":"` + long + `","beacon":"` + realBeacon + `"}`,
		`{"received":"2026-11-25T08:00:04Z","zone":"Status.ModSecurity.org.","beacon":"` + realBeacon + `"}`,
		`{"received":"2099-01-01T00:00:00Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `"}`,
		`{"received":"1990-01-01T00:00:00Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `"}`,
		`{"received":"2026-11-25T08:00:05Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","geo":{"country":"DE","lat":91,"lon":0}}`,
		`{"received":"2026-11-25T08:00:06Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","geo":{"source":"mine"}}`,
		`{"received":"2026-11-25T08:00:07Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","geo":{"country_name":"a\u0000b"}}`,
		`{"received":"2026-11-25T08:00:08Z","zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","epoch":9999999999999}`,
	}, "\n")
	rejected := map[int]string{}
	stats, err := s.ImportNDJSON(strings.NewReader(input), func(line int, err error) { rejected[line] = err.Error() })
	if err != nil {
		t.Fatal(err)
	}
	lines := make([]int, 0, len(rejected))
	for l := range rejected {
		lines = append(lines, l)
	}
	slices.Sort(lines)
	want := []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18}
	if stats != (ImportStats{Imported: 1, Rejected: len(want)}) || !slices.Equal(lines, want) {
		t.Errorf("stats %+v, rejected lines %v, want 1 imported and lines %v; reasons %v", stats, lines, want, rejected)
	}
	// The store works on: a live report after the hostile lines is stored.
	mustSubmit(t, s, newRecord(t, realBeacon, 1795549399, time.Now()), Stored)
	if s.Count() != 2 {
		t.Errorf("Count %d, want 2", s.Count())
	}
}

// A line of version 1's API export (GET /api/v1/export before this layout)
// imports too: its hex key is the exact receive time.
func TestImportVersion1APILine(t *testing.T) {
	s := openTemp(t)
	line := `{"key":"18ab8e1f4c2d5e15","received":1779790000,"client_epoch":1795549302,"zone":"status.modsecurity.org.",` +
		`"modsec":"2.9.7","beacon":"` + realBeacon + `","resolver":"192.0.2.53","ecs":null,` +
		`"geo":{"country":"DE","country_name":"Germany","city":"","lat":null,"lon":null,"source":"resolver"},"installation":"ab"}` + "\n" +
		`{"received":1779790001,"client_epoch":null,"zone":"status.modsecurity.org.","beacon":"` + realBeacon + `","ecs":"198.51.100.0/24"}` + "\n"
	stats, err := s.ImportNDJSON(strings.NewReader(line), func(l int, err error) { t.Errorf("line %d: %v", l, err) })
	if err != nil || stats.Imported != 2 {
		t.Fatalf("stats %+v, %v", stats, err)
	}
	got := all(t, s)
	if got[0].Key != 0x18ab8e1f4c2d5e15 || !got[0].Report.HasEpoch || got[0].Report.Epoch != 1795549302 || got[0].Geo.Country != "DE" || got[0].Geo.HasPoint {
		t.Errorf("first record %+v", got[0])
	}
	if !got[1].Received.Equal(time.Unix(1779790001, 0)) || got[1].Report.HasEpoch || got[1].ECS.String() != "198.51.100.0/24" {
		t.Errorf("second record %+v", got[1])
	}
}

func TestEachPages(t *testing.T) {
	s := openTemp(t)
	recs := make([]*record.Record, eachPage*2+10)
	base := time.Unix(1795549302, 0)
	for i := range recs {
		recs[i] = newRecord(t, realBeacon, 1795549302+int64(i), base.Add(time.Duration(i)*time.Millisecond))
	}
	submitAll(t, s, recs)
	var buf bytes.Buffer
	if n, err := s.Export(&buf, base, base.Add(time.Hour)); err != nil || n != len(recs) {
		t.Fatalf("Export = %d, %v; want %d", n, err, len(recs))
	}
	buf.Reset()
	if n, _ := s.Export(&buf, base.Add(10*time.Millisecond), base.Add(19*time.Millisecond)); n != 10 {
		t.Errorf("Export of a 10 ms window = %d, want 10", n)
	}
	// After a key: the records after it only; after the last or the
	// largest key: nothing (no wrap-around).
	n := 0
	s.Each(base, base.Add(time.Hour), uint64(base.Add(2047*time.Millisecond).UnixNano()), func(*record.Record) error { n++; return nil })
	if n != len(recs)-2048 {
		t.Errorf("Each after key 2047: %d records, want %d", n, len(recs)-2048)
	}
	for _, after := range []uint64{1<<64 - 1, 1 << 63, 1<<63 - 1} {
		n := 0
		s.Each(base, base.Add(time.Hour), after, func(*record.Record) error { n++; return nil })
		if n != 0 {
			t.Errorf("Each after %x: %d records, want 0", after, n)
		}
	}
}

func TestBackupWhileWriting(t *testing.T) {
	s := openTemp(t)
	fill(t, s)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // reports keep arriving during the backup
		defer close(done)
		for i := int64(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s.Submit(newRecord(t, realBeacon, 1800000000+i, time.Now()))
		}
	}()
	out := filepath.Join(t.TempDir(), "backup.db")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	n, err := s.Backup(f, func(sz int64) { size = sz })
	close(stop)
	<-done
	if err != nil || n != size || n == 0 {
		t.Fatalf("Backup = %d, %v; announced size %d", n, err, size)
	}
	f.Close()
	b, err := Open(out, Options{})
	if err != nil {
		t.Fatalf("backup does not open: %v", err)
	}
	defer b.Close()
	if got := all(t, b); int64(len(got)) != b.Count() || len(got) < 4 {
		t.Errorf("backup holds %d records, its count says %d", len(got), b.Count())
	}
	// No temporary file is left next to the database.
	entries, _ := os.ReadDir(filepath.Dir(s.Path()))
	for _, e := range entries {
		if strings.Contains(e.Name(), "backup") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestMigrateVersion1 opens a file written by statusengine before this
// layout (testdata/v1.db, 400 records, and its export v1.ndjson by that
// version): it is migrated in place, every record is there with the same
// fields, its rollups count them, and a second open changes nothing.
func TestMigrateVersion1(t *testing.T) {
	path := copyFile(t, "testdata/v1.db")
	var events []string
	s, err := Open(path, Options{OnEvent: func(e string) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("events: %q", events)
	if len(events) != 1 || !strings.Contains(events[0], "400 records moved") {
		t.Errorf("events %q, want one line saying 400 records moved", events)
	}
	want := readNDJSON(t, "testdata/v1.ndjson")
	got := all(t, s)
	if len(got) != len(want) || s.Count() != int64(len(want)) {
		t.Fatalf("%d records (count %d), want %d", len(got), s.Count(), len(want))
	}
	for i, w := range want {
		g := got[i]
		if !g.Received.Equal(w.Received) || g.Zone != w.Zone || g.Resolver != w.Resolver || g.ECS != w.ECS || g.Geo != w.Geo || g.Report != w.Report {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
	tt, err := s.Totals(time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil || tt.Total.Reports != 400 {
		t.Errorf("rollups after migration: %+v %v", tt.Total, err)
	}
	s.Close()
	events = nil
	s, err = Open(path, Options{OnEvent: func(e string) { events = append(events, e) }})
	if err != nil || len(events) != 0 || s.Count() != 400 {
		t.Fatalf("second open: %v, events %q, count %d", err, events, s.Count())
	}
	s.Close()
	if rep, err := Check(path); err != nil || !rep.OK() {
		t.Errorf("check after migration: %+v %v", rep, err)
	}
}

func readNDJSON(t *testing.T, path string) []*record.Record {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []*record.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rec, err := record.ParseLine(sc.Bytes(), nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// TestOpenFormat2File: a file of this layout written by statusengine
// 158bbe1 (testdata/v2.db, 400 records, a backup of bench/fill's file, and
// its export v2.ndjson by that version) opens, checks clean, and exports
// the same bytes: a change of the store's code must keep the files
// operators hold readable as they are.
func TestOpenFormat2File(t *testing.T) {
	path := copyFile(t, "testdata/v2.db")
	if rep, err := Check(path); err != nil || !rep.OK() {
		t.Fatalf("check: %+v %v", rep, err)
	}
	var events []string
	s, err := Open(path, Options{OnEvent: func(e string) { events = append(events, e) }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Count() != 400 || len(events) != 0 {
		t.Errorf("count %d, events %q; want 400 and none (no migration, no rebuild)", s.Count(), events)
	}
	want, err := os.ReadFile("testdata/v2.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if n, err := s.Export(&got, time.Unix(0, 0), time.Unix(1<<40, 0)); err != nil || n != 400 {
		t.Fatalf("export: %d records, %v", n, err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("export differs from the one 158bbe1 wrote (%d bytes, want %d)", got.Len(), len(want))
	}
}
