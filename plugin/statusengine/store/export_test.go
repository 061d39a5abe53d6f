package store

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fill stores a varied set of records: with and without epoch, ECS and geo,
// two in the same nanosecond.
func fill(t *testing.T, s *Store) []*Record {
	t.Helper()
	base := time.Unix(1795549302, 123456789)
	recs := []*Record{
		newRecord(t, realBeacon, 1795549302, base),
		newRecord(t, realBeacon, 1795549303, base), // same nanosecond: key moves up by one
		newRecord(t, realBeacon, -1, base.Add(time.Minute)),
		newRecord(t, "2.7.7,Apache/2.4.4 (Unix),1.4.6/1.4.6, 8.32 /8.32 2012-11-30,Lua 5.1/(null),2.7.8/(null),96ce9ba3c2fb71f7a8bb92a88d560d44dbe459b8", 1400000000, base.Add(time.Hour)),
	}
	recs[1].ECS = netip.MustParsePrefix("198.51.100.0/24")
	recs[1].Geo = Geo{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.52, Lon: 13.405, HasPoint: true, Source: "ecs"}
	recs[2].Resolver = netip.MustParseAddr("2001:db8::53")
	recs[3].Geo = Geo{Country: "FR", CountryName: "France", Source: "resolver"}
	outcomes, err := s.SubmitBatch(recs)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range outcomes {
		if o != Stored {
			t.Fatalf("record %d: outcome %v, want Stored", i, o)
		}
	}
	return recs
}

func all(t *testing.T, s *Store) []*Record {
	t.Helper()
	var out []*Record
	if err := s.Range(time.Unix(1, 0), time.Unix(1<<33-1, 0), func(r *Record) bool { out = append(out, r); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExportImportRoundTrip(t *testing.T) {
	src := openTemp(t)
	fill(t, src)
	var buf bytes.Buffer
	n, err := src.Export(&buf, time.Unix(1, 0), time.Unix(1<<33-1, 0))
	if err != nil || n != 4 {
		t.Fatalf("Export = %d, %v; want 4", n, err)
	}
	if lines := strings.Count(buf.String(), "\n"); lines != 4 {
		t.Fatalf("%d lines of NDJSON, want 4:\n%s", lines, buf.String())
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
	if dst.Count() != 4 {
		t.Fatalf("Count = %d, want 4", dst.Count())
	}

	want, got := all(t, src), all(t, dst)
	for i := range want {
		w, g := want[i], got[i]
		if w.Key != g.Key || !w.Received.Equal(g.Received) || w.Zone != g.Zone || w.Resolver != g.Resolver ||
			w.ECS != g.ECS || w.Geo != g.Geo || w.Report != g.Report {
			t.Errorf("record %d differs after export/import:\n src %+v\n dst %+v", i, w, g)
		}
	}
}

func TestImportNDJSONRejects(t *testing.T) {
	s := openTemp(t)
	good := newRecord(t, realBeacon, 1795549302, time.Unix(1795549302, 0)).Export()
	goodLine, _ := json.Marshal(good)
	input := strings.Join([]string{
		string(goodLine),
		"",
		"not json",
		`{"received":"2026-11-25T08:00:00Z","zone":"status.modsecurity.org.","beacon":"not a beacon"}`,
		`{"zone":"status.modsecurity.org.","beacon":"` + realBeacon + `"}`,
		`{"received":"2026-11-25T08:00:00Z","beacon":"` + realBeacon + `","resolver":"999.1.1.1"}`,
		`{"received":"2026-11-25T08:00:00Z","beacon":"` + realBeacon + `","ecs":"10.0.0.0/99"}`,
		`{"received":"2026-11-25T08:00:00Z","beacon":"` + realBeacon + `","epoch":-5}`,
	}, "\n")
	var lines []int
	stats, err := s.ImportNDJSON(strings.NewReader(input), func(line int, err error) { lines = append(lines, line) })
	if err != nil {
		t.Fatal(err)
	}
	if stats != (ImportStats{Imported: 1, Rejected: 6}) {
		t.Errorf("stats = %+v, want 1 imported, 6 rejected", stats)
	}
	if want := []int{3, 4, 5, 6, 7, 8}; !equalInts(lines, want) {
		t.Errorf("rejected lines %v, want %v", lines, want)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestExportPages(t *testing.T) {
	s := openTemp(t)
	recs := make([]*Record, eachPage*2+10)
	base := time.Unix(1795549302, 0)
	for i := range recs {
		recs[i] = newRecord(t, realBeacon, 1795549302+int64(i), base.Add(time.Duration(i)*time.Millisecond))
	}
	if _, err := s.SubmitBatch(recs); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if n, err := s.Export(&buf, base, base.Add(time.Hour)); err != nil || n != len(recs) {
		t.Fatalf("Export = %d, %v; want %d", n, err, len(recs))
	}
	// A window in the middle.
	buf.Reset()
	if n, _ := s.Export(&buf, base.Add(10*time.Millisecond), base.Add(19*time.Millisecond)); n != 10 {
		t.Errorf("Export of a 10 ms window = %d, want 10", n)
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
	got := all(t, b)
	if int64(len(got)) != b.Count() || len(got) < 4 {
		t.Errorf("backup holds %d records, its count says %d", len(got), b.Count())
	}
}

// A line of the API's NDJSON export (GET /api/v1/export) imports too: its
// hex key is the exact receive time.
func TestImportAPIExportLine(t *testing.T) {
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
