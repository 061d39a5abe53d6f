package store

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/statusengine/statusengine/plugin/statusengine/codec"
	"github.com/statusengine/statusengine/plugin/statusengine/geo"
	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
	"github.com/statusengine/statusengine/plugin/statusengine/store/record"
	"github.com/statusengine/statusengine/plugin/statusengine/store/rollup"
	"github.com/statusengine/statusengine/plugin/statusengine/store/schema"
)

const customZone = "status.example.org."

func customSchema(t testing.TB, fields ...string) *codec.Schema {
	t.Helper()
	if len(fields) == 0 {
		fields = []string{"product", "version", "os", "arch", "id"}
	}
	s, err := codec.NewSchema(codec.SchemaSpec{Fields: fields, Version: "version", Platform: "os", ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// customRecord is a report of beacon in customZone, decoded with s.
func customRecord(t testing.TB, s *codec.Schema, beacon string, epoch int64, received time.Time) *record.Record {
	t.Helper()
	r, err := codec.ParseSchema(s, beacon)
	if err != nil {
		t.Fatalf("ParseSchema(%q): %v", beacon, err)
	}
	r.Epoch, r.HasEpoch = epoch, true
	return &record.Record{Received: received, Zone: customZone, Resolver: netip.MustParseAddr("192.0.2.53"), Report: r.AsReport()}
}

func openSchemas(t testing.TB, path string, s *codec.Schema) *Store {
	t.Helper()
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSchema([]string{customZone}, s); err != nil {
		t.Fatal(err)
	}
	if err := st.SetSchema([]string{testZone}, codec.ModSecurity); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCustomSchemaStored: a custom zone's reports are stored once each
// beside ModSecurity's, survive a restart that names no schema (the file
// keeps it), read back byte for byte, are counted in their zone's totals
// only, by field name, and export and import byte-identical; a server
// that has no schema for the zone refuses its lines.
func TestCustomSchemaStored(t *testing.T) {
	sc := customSchema(t)
	path := filepath.Join(t.TempDir(), "se.db")
	st := openSchemas(t, path, sc)
	now := awayFromMidnight(time.Now())
	mustSubmit(t, st, customRecord(t, sc, "myapp,1.2.3,Linux,x86_64,aa", 1796000000, now), Stored)
	mustSubmit(t, st, customRecord(t, sc, "myapp,1.2.3,Linux,x86_64,aa", 1796000000, now), Duplicate)
	mustSubmit(t, st, customRecord(t, sc, "myapp,1.2.3,Linux,x86_64,aa", 1796000100, now), Stored)
	de := customRecord(t, sc, "myapp,1.3.0,FreeBSD,arm64, bb ", 1796000000, now)
	de.Geo = geo.Location{Country: "DE", CountryName: "Germany", City: "Berlin", Lat: 52.5, Lon: 13.4, HasPoint: true, Source: geo.SourceResolver}
	mustSubmit(t, st, de, Stored)
	ms := newRecord(t, realBeacon, 1796000000, now)
	ms.Geo = geo.Location{Country: "FR", CountryName: "France", Source: geo.SourceResolver}
	mustSubmit(t, st, ms, Stored)
	// The same beacon in a zone of ModSecurity's schema, or ModSecurity's in
	// the custom zone: rejected.
	wrong := customRecord(t, sc, "myapp,1.2.3,Linux,x86_64,cc", 1796000000, now)
	wrong.Zone = testZone
	mustSubmit(t, st, wrong, Rejected)
	wrong = newRecord(t, realBeacon, 1796000001, now)
	wrong.Zone = customZone
	mustSubmit(t, st, wrong, Rejected)
	if st.Count() != 4 {
		t.Fatalf("Count %d, want 4", st.Count())
	}
	before := all(t, st)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st = openPath(t, path) // no SetSchema: the file knows it
	if got := st.Schemas().Custom(customZone); got == nil || got.String() != sc.String() {
		t.Fatalf("schema after reopen %v, want %v", got, sc)
	}
	after := all(t, st)
	show := func(rs []*record.Record) string {
		var b strings.Builder
		for _, r := range rs {
			fmt.Fprintf(&b, "%+v\n", *r)
		}
		return b.String()
	}
	if len(after) != 4 || show(after) != show(before) {
		t.Fatalf("records after reopen:\n%v\nbefore:\n%v", show(after), show(before))
	}
	beacons := map[string]bool{}
	for _, r := range after {
		beacons[r.Zone+" "+r.Report.Beacon+" "+r.Report.ID] = true
	}
	for _, want := range []string{customZone + " myapp,1.3.0,FreeBSD,arm64, bb  bb", testZone + " " + realBeacon + " 75"} {
		if !beacons[want] {
			t.Errorf("%q not read back; have %v", want, beacons)
		}
	}

	zt, err := st.ZoneTotals(now.Add(-time.Hour), now, customZone)
	if err != nil {
		t.Fatal(err)
	}
	if zt.Total.Reports != 3 || zt.Total.Installations != 2 || zt.DistinctIDs != 2 {
		t.Errorf("custom totals %+v, want 3 reports, 2 installations", zt.Total)
	}
	if c := zt.Fields["version"]["1.2.3"]; c.Reports != 2 || c.Installations != 1 {
		t.Errorf("version 1.2.3: %+v", c)
	}
	if c := zt.Fields["os"]["FreeBSD"]; c.Reports != 1 || c.Installations != 1 {
		t.Errorf("os FreeBSD: %+v", c)
	}
	if _, ok := zt.Fields["id"]; ok || len(zt.Fields) != 4 || zt.Dims[rollup.DimModsec] != nil {
		t.Errorf("custom breakdowns: fields %v dims %v", zt.Fields, zt.Dims)
	}
	// Countries and points count each zone's own reports (rollup.ZoneGeoKey).
	if c := zt.Dims[rollup.DimCountry]; len(c) != 2 || c["DE"].Reports != 1 || c["DE"].Installations != 1 || c[""].Reports != 2 {
		t.Errorf("custom countries %v", c)
	}
	if len(zt.Points) != 1 || zt.Points[rollup.Point{Lat: 52.5, Lon: 13.4}].Reports != 1 {
		t.Errorf("custom points %v", zt.Points)
	}
	mt, err := st.Totals(now.Add(-time.Hour), now)
	if err != nil {
		t.Fatal(err)
	}
	if mt.Total.Reports != 1 || mt.Total.Installations != 1 || len(mt.Dims[rollup.DimModsec]) != 1 || mt.Dims[rollup.DimModsec]["2.9.7"].Reports != 1 {
		t.Errorf("ModSecurity's totals count other zones: %+v %v", mt.Total, mt.Dims[rollup.DimModsec])
	}
	if c := mt.Dims[rollup.DimCountry]; len(c) != 1 || c["FR"].Reports != 1 || c["FR"].Installations != 1 || len(mt.Points) != 0 {
		t.Errorf("ModSecurity's countries %v, points %v", c, mt.Points)
	}
	series, err := st.Series(now.Add(-time.Hour), now, StepDay, rollup.DimCountry)
	if err != nil || len(series) != 1 || len(series[0].Values) != 1 || series[0].Values["FR"] != 1 {
		t.Errorf("ModSecurity's series by country %+v, %v", series, err)
	}
	series, err = st.Series(now.Add(-time.Hour), now, StepDay, DimTotal)
	if err != nil || len(series) != 1 || series[0].Values[""] != 1 {
		t.Errorf("ModSecurity's series %+v, %v", series, err)
	}
	churn, err := st.Churn(now.Add(-time.Hour), now, StepDay)
	if err != nil || len(churn) != 1 || churn[0].Active != 1 || churn[0].New != 1 {
		t.Errorf("ModSecurity's churn %+v, %v", churn, err)
	}
	steps, err := st.Installs(now.Add(-time.Hour), now, StepDay, rollup.DimCountry)
	if err != nil || len(steps) != 1 || steps[0].Total.Installations != 1 || steps[0].Total.Reports != 1 || len(steps[0].Values) != 1 {
		t.Errorf("ModSecurity's installation steps %+v, %v", steps, err)
	}

	var exp bytes.Buffer
	if n, err := st.Export(&exp, time.Unix(1, 0), time.Unix(1<<33-1, 0)); err != nil || n != 4 {
		t.Fatalf("Export = %d, %v", n, err)
	}
	// A server without the zone's schema refuses its lines.
	bare := openTemp(t)
	var rejected []string
	stats, err := bare.ImportNDJSON(bytes.NewReader(exp.Bytes()), func(line int, err error) { rejected = append(rejected, err.Error()) })
	if err != nil || stats.Imported != 1 || stats.Rejected != 3 {
		t.Errorf("import without the schema = %+v, %v (%q)", stats, err, rejected)
	}
	dst := openSchemas(t, filepath.Join(t.TempDir(), "dst.db"), sc)
	defer dst.Close()
	if stats, err := dst.ImportNDJSON(bytes.NewReader(exp.Bytes()), nil); err != nil || stats.Imported != 4 {
		t.Fatalf("import = %+v, %v", stats, err)
	}
	var again bytes.Buffer
	dst.Export(&again, time.Unix(1, 0), time.Unix(1<<33-1, 0))
	if !bytes.Equal(exp.Bytes(), again.Bytes()) {
		t.Errorf("export of the import differs:\n%s\nwant\n%s", again.Bytes(), exp.Bytes())
	}
	if !strings.Contains(exp.String(), `"beacon":"myapp,1.3.0,FreeBSD,arm64, bb "`) {
		t.Errorf("export lacks the custom beacon as sent:\n%s", exp.Bytes())
	}

	// Check and salvage read the schema from the file.
	st.Close()
	r, err := Check(path)
	if err != nil || !r.OK() || r.Records != 4 {
		t.Fatalf("Check = %+v, %v", r, err)
	}
	out := filepath.Join(t.TempDir(), "salvaged.db")
	ss, err := Salvage(path, out, Options{})
	if err != nil || ss.Records != 4 || ss.Lost != 0 {
		t.Fatalf("Salvage = %+v, %v", ss, err)
	}

	// The rollups rebuilt from the records (factOf) key each zone's
	// countries as the writer did.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return putUint(tx.Bucket(schema.Meta), schema.RebuildingKey, 1) })
	db.Close()
	var events []string
	var mu sync.Mutex
	st, err = Open(path, Options{OnEvent: func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rebuilt := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(strings.Join(events, "\n"), "rebuilt the rollups")
	}
	for i := 0; i < 200 && !rebuilt(); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	var c map[string]Counts
	for range 200 {
		zt, err := st.ZoneTotals(now.Add(-time.Hour), now, customZone)
		if err != nil {
			t.Fatal(err)
		}
		if c = zt.Dims[rollup.DimCountry]; c["DE"].Reports == 1 && c[""].Reports == 2 && zt.Total.Reports == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c["DE"].Reports != 1 || c[""].Reports != 2 || len(c) != 2 {
		t.Errorf("custom countries after a rebuild %v", c)
	}
	if !rebuilt() {
		t.Errorf("no rebuild: %q", events)
	}
	mt, _ = st.Totals(now.Add(-time.Hour), now)
	if c := mt.Dims[rollup.DimCountry]; len(c) != 1 || c["FR"].Reports != 1 {
		t.Errorf("ModSecurity's countries after a rebuild %v", c)
	}
}

// TestCustomSchemaLogReplay: custom reports answered from the write-ahead
// log only (a writer killed after answering) are stored by the next Open,
// which reads their schema from the file before the log.
func TestCustomSchemaLogReplay(t *testing.T) {
	sc := customSchema(t)
	path := filepath.Join(t.TempDir(), "se.db")
	st := openSchemas(t, path, sc)
	st.Close()
	now := time.Now()
	var recs []*record.Record
	for i := range 50 {
		rec := customRecord(t, sc, fmt.Sprintf("myapp,1.%d,Linux,x86_64,%02x", i%3, i), 1796000000+int64(i), now.Add(time.Duration(i)*time.Millisecond))
		rec.Key = uint64(rec.Received.UnixNano())
		recs = append(recs, rec)
	}
	writeLog(t, path, recs)
	st = openPath(t, path)
	got := all(t, st)
	if len(got) != 50 || st.Count() != 50 {
		t.Fatalf("replayed %d records (count %d), want 50", len(got), st.Count())
	}
	for i, r := range got {
		if r.Report.Beacon != recs[i].Report.Beacon || r.Zone != customZone {
			t.Fatalf("record %d: %q in %s, want %q", i, r.Report.Beacon, r.Zone, recs[i].Report.Beacon)
		}
	}
}

// TestCustomSchemaKill9: as TestKill9, reports of a custom zone: every
// report answered before SIGKILL is in the file after the next Open, which
// is given no schema.
func TestCustomSchemaKill9(t *testing.T) {
	if path := os.Getenv("STATUSENGINE_KILL9_CUSTOM"); path != "" {
		kill9CustomChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "se.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCustomSchemaKill9$")
	cmd.Env = append(os.Environ(), "STATUSENGINE_KILL9_CUSTOM="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]bool{}
	sc := bufio.NewScanner(out)
	deadline := time.Now().Add(30 * time.Second)
	for sc.Scan() && len(acked) < 2000 && time.Now().Before(deadline) {
		if e, err := strconv.ParseInt(sc.Text(), 10, 64); err == nil {
			acked[e] = true
		}
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if len(acked) < 100 {
		t.Fatalf("child acknowledged only %d reports", len(acked))
	}
	st := openPath(t, path)
	found := map[int64]bool{}
	for _, r := range all(t, st) {
		if r.Zone == customZone && r.Report.Format == codec.FormatSchema {
			found[r.Report.Epoch] = true
		}
	}
	lost := 0
	for e := range acked {
		if !found[e] {
			lost++
		}
	}
	zt, err := st.ZoneTotals(time.Now().Add(-time.Hour), time.Now(), customZone)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("acknowledged %d, on disk %d after kill -9, lost %d, zone totals %d reports", len(acked), len(found), lost, zt.Total.Reports)
	if lost > 0 {
		t.Fatalf("%d acknowledged reports lost", lost)
	}
	if zt.Total.Reports != uint64(len(found)) || int64(len(found)) != st.Count() {
		t.Errorf("zone totals %d, count %d, records %d disagree", zt.Total.Reports, st.Count(), len(found))
	}
}

func kill9CustomChild(t *testing.T, path string) {
	sc := customSchema(t)
	st, err := Open(path, Options{AnswerWait: time.Minute})
	if err != nil || st.SetSchema([]string{customZone}, sc) != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100000; i++ {
				e := int64(1700000000 + w*1000000 + i)
				r, _ := codec.ParseSchema(sc, fmt.Sprintf("myapp,1.%d,Linux,x86_64,%02x", i%7, i%256))
				r.Epoch, r.HasEpoch = e, true
				rec := &record.Record{Received: time.Now(), Zone: customZone, Resolver: netip.AddrFrom4([4]byte{198, 51, byte(w), 1}), Report: r.AsReport()}
				if o, err := st.Submit(rec); o == Stored && err == nil {
					mu.Lock()
					fmt.Println(e)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	os.Exit(0)
}

// TestSchemaChangeRefused: a zone's schema may change between Opens only
// by fields added at the end; any other change, and a switch between
// ModSecurity's schema and a custom one for a zone that holds reports, is
// refused naming the zone, and the file keeps the schema it had.
func TestSchemaChangeRefused(t *testing.T) {
	sc := customSchema(t)
	path := filepath.Join(t.TempDir(), "se.db")
	st := openSchemas(t, path, sc)
	mustSubmit(t, st, newRecord(t, realBeacon, 1796000000, time.Now()), Stored)
	mustSubmit(t, st, customRecord(t, sc, "myapp,1.2.3,Linux,x86_64,aa", 1796000000, time.Now()), Stored)
	st.Close()

	st = openPath(t, path)
	extended, err := codec.NewSchema(codec.SchemaSpec{Fields: []string{"product", "version", "os", "arch", "id", "locale"}, MinFields: 5, Version: "version", Platform: "os", ID: "id"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		zone  string
		s     *codec.Schema
		wants string // "" accepted
	}{
		{"fields reordered", customZone, customSchema(t, "version", "product", "os", "arch", "id"), "only be added at the end"},
		{"a field removed", customZone, customSchema(t, "product", "version", "os", "id"), "only be added at the end"},
		{"to ModSecurity's", customZone, codec.ModSecurity, "from custom to modsecurity"},
		{"ModSecurity's zone with reports to custom", testZone, sc, "holds reports of ModSecurity's schema"},
		{"the same", customZone, sc, ""},
		{"a field added at the end, older beacons refused", customZone, customSchema(t, "product", "version", "os", "arch", "id", "locale"), "min_fields changes from 5 to 6"},
		{"a field added at the end", customZone, extended, ""},
		{"back to the old one", customZone, sc, "only be added at the end"},
		{"a new zone", "other.example.org.", sc, ""},
	} {
		err := st.SetSchema([]string{c.zone}, c.s)
		switch {
		case c.wants == "" && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case c.wants != "" && (err == nil || !strings.Contains(err.Error(), c.wants) || !strings.Contains(err.Error(), c.zone)):
			t.Errorf("%s: error %v, want one naming %s and saying %q", c.name, err, c.zone, c.wants)
		}
	}
	if got := st.Schemas().Custom(customZone); got == nil || len(got.Fields()) != 6 {
		t.Errorf("schema kept %v, want the extended one", got)
	}
	// The report stored before the extension reads as it was, beside one
	// with the new field.
	mustSubmit(t, st, customRecord(t, extended, "myapp,1.3.0,Linux,x86_64,bb,de_DE", 1796000000, time.Now()), Stored)
	var beacons []string
	for _, r := range all(t, st) {
		beacons = append(beacons, r.Report.Beacon)
	}
	if fmt.Sprint(beacons) != "["+realBeacon+" myapp,1.2.3,Linux,x86_64,aa myapp,1.3.0,Linux,x86_64,bb,de_DE]" {
		t.Errorf("records after the extension: %q", beacons)
	}
	zt, err := st.ZoneTotals(time.Now().Add(-time.Hour), time.Now(), customZone)
	if err != nil || zt.Total.Reports != 2 || zt.Fields["locale"][""].Reports != 1 || zt.Fields["locale"]["de_DE"].Reports != 1 || zt.Fields["version"]["1.2.3"].Reports != 1 {
		t.Errorf("totals after the extension: %+v %v, %v", zt.Total, zt.Fields, err)
	}
}

// TestMainDatabaseOpensUnchanged: a database written by statusengine before
// schemas (testdata/v2main.db.gz, 40 reports by main at 1b137cf, and its
// export v2main.ndjson) opens with every bucket's keys and values as they
// were (bucket schemas added, empty), exports byte for byte what main
// exported, and its summary is the same before and after a custom zone is
// added beside it.
func TestMainDatabaseOpensUnchanged(t *testing.T) {
	gz, err := os.ReadFile("testdata/v2main.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "se.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	dump := func() map[string]string {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		out := map[string]string{}
		db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
				out[string(name)] = ""
				return b.ForEach(func(k, v []byte) error {
					out[string(name)+"/"+string(k)] = string(v)
					return nil
				})
			})
		})
		return out
	}
	before := dump()
	st, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetSchema([]string{testZone}, codec.ModSecurity); err != nil {
		t.Fatal(err)
	}
	var exp bytes.Buffer
	st.Export(&exp, time.Unix(1, 0), time.Now().Add(time.Hour))
	want, err := os.ReadFile("testdata/v2main.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exp.Bytes(), want) {
		t.Errorf("export differs from main's:\n%s\nwant\n%s", exp.Bytes(), want)
	}
	from, to := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	t0, err := st.Totals(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	after := dump()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%q changed: %x, was %x", k, after[k], v)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok && k != string(schema.Schemas) {
			t.Errorf("%q added", k)
		}
	}

	// A custom zone beside it changes nothing of ModSecurity's summary.
	sc := customSchema(t)
	st = openSchemas(t, path, sc)
	defer st.Close()
	mustSubmit(t, st, customRecord(t, sc, "myapp,1.2.3,Linux,x86_64,aa", 1796000000, time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)), Stored)
	t1, err := st.Totals(from, to)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(t0.Total, t0.Dims, t0.Points, t0.Combos) != fmt.Sprint(t1.Total, t1.Dims, t1.Points, t1.Combos) || t0.Total.Reports != 40 {
		t.Errorf("ModSecurity's totals changed with a custom zone beside:\n%+v\nwas\n%+v", t1, t0)
	}
}

// TestSalvageCustomSchemaDamaged: a damaged file (a leaf of records zeroed)
// holding a custom zone's reports is salvaged through the deep scan: the
// schema comes from the file, every readable record is copied with its
// beacon, and the new file's zone totals count them.
func TestSalvageCustomSchemaDamaged(t *testing.T) {
	sc := customSchema(t)
	path := filepath.Join(t.TempDir(), "se.db")
	st := openSchemas(t, path, sc)
	now := time.Now().Add(-time.Hour)
	var recs []*record.Record
	for i := range 3000 {
		recs = append(recs, customRecord(t, sc, fmt.Sprintf("myapp,1.%d,Linux,x86_64,%x", i%9, i), 1796000000+int64(i), now.Add(time.Duration(i)*time.Millisecond)))
	}
	submitAll(t, st, recs)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
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
	out := filepath.Join(t.TempDir(), "new.db")
	ss, err := Salvage(path, out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("salvaged %d of %d, missing %d, skipped %d, lost %d", ss.Records, ss.Expected, ss.Missing(), ss.Skipped, ss.Lost)
	if ss.Records < 2500 || ss.Records >= 3000 || ss.Skipped != 1 {
		t.Errorf("salvage: %+v", ss)
	}
	s, err := Open(out, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Schemas().Custom(customZone) == nil {
		t.Fatal("the new file lacks the zone's schema")
	}
	want := map[string]bool{}
	for _, r := range recs {
		want[r.Report.Beacon] = true
	}
	got := all(t, s)
	for _, r := range got {
		if r.Zone != customZone || !want[r.Report.Beacon] {
			t.Fatalf("salvaged record %q in %s", r.Report.Beacon, r.Zone)
		}
	}
	zt, _ := s.ZoneTotals(now.Add(-time.Hour), time.Now(), customZone)
	if len(got) != ss.Records || zt.Total.Reports != uint64(ss.Records) {
		t.Errorf("new file: %d records, zone totals %d, want %d", len(got), zt.Total.Reports, ss.Records)
	}
}
