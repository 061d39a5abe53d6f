package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/statusengine/statusengine/plugin/statusengine/store/boltfile"
)

// TestCheckSalvage: check passes a sound file, fails a damaged one and says
// what to run; salvage copies the readable records into a new file that
// checks clean; export of the damaged file fails with the same advice
// instead of a panic.
func TestCheckSalvage(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "se.db")
	var lines strings.Builder
	for i := range 3000 {
		lines.WriteString(`{"received":"2026-11-20T10:00:00Z","zone":"status.modsecurity.org.","epoch":` + strconv.Itoa(1795000000+i) +
			`,"beacon":"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,` + strconv.Itoa(10+i%90) + `"}` + "\n")
	}
	if code, _, errs := cli(t, lines.String(), "import", "--db", db, "-"); code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	if code, out, _ := cli(t, "", "check", "--db", db); code != 0 || !strings.Contains(out, "3000 records readable, 0 unreadable, 0 problems") {
		t.Fatalf("check of a sound file: %d %s", code, out)
	}

	// Zero a leaf of the records.
	f, err := boltfile.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	leaves, err := f.Leaves("records")
	f.Close()
	if err != nil || len(leaves) < 3 {
		t.Fatalf("leaves: %v %v", leaves, err)
	}
	b, _ := os.ReadFile(db)
	leaf := leaves[len(leaves)/2]
	clear(b[leaf*4096 : (leaf+1)*4096])
	os.WriteFile(db, b, 0o600)

	code, out, _ := cli(t, "", "check", "--db", db)
	if code != 1 || !strings.Contains(out, "statusengine salvage --db "+db) {
		t.Fatalf("check of a damaged file: exit %d, %s", code, out)
	}
	code, _, errs := cli(t, "", "export", "--db", db)
	if code != 1 || !strings.Contains(errs, "is damaged") || !strings.Contains(errs, "statusengine check --db") {
		t.Errorf("export of a damaged file: exit %d, %s", code, errs)
	}
	newDB := filepath.Join(dir, "new.db")
	code, out, errs = cli(t, "", "salvage", "--db", db, "--out", newDB)
	m := regexp.MustCompile(`salvaged (\d+) records .* missing against the old count: (\d+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("salvage: exit %d, %s %s", code, out, errs)
	}
	got, _ := strconv.Atoi(m[1])
	missing, _ := strconv.Atoi(m[2])
	t.Logf("%s", strings.TrimSpace(out))
	if got < 2500 || got+missing != 3000 {
		t.Errorf("salvaged %d, missing %d, want them to add up to 3000", got, missing)
	}
	if code, out, _ := cli(t, "", "check", "--db", newDB); code != 0 || !strings.Contains(out, strconv.Itoa(got)+" records readable") {
		t.Errorf("check of the salvaged file: %d %s", code, out)
	}
	if code, _, errs := cli(t, "", "salvage", "--db", db, "--out", newDB); code != 1 || !strings.Contains(errs, "exists") {
		t.Errorf("salvage onto an existing file: %d %s", code, errs)
	}
}

// TestCheckRefusedLog: a sound file whose log path is a symbolic link to
// it. check exits 1, reads every record, names the log and says to move it
// away, not to salvage a sound file.
func TestCheckRefusedLog(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "se.db")
	line := `{"received":"2026-11-20T10:00:00Z","zone":"status.modsecurity.org.","epoch":1795000000,"beacon":"2.9.7,Apache/2.4.71 (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,10"}` + "\n"
	if code, _, errs := cli(t, line, "import", "--db", db, "-"); code != 0 {
		t.Fatalf("import: %d %s", code, errs)
	}
	if err := os.Symlink("se.db", db+"-wal"); err != nil {
		t.Fatal(err)
	}
	code, out, _ := cli(t, "", "check", "--db", db)
	if code != 1 || !strings.Contains(out, "1 records readable, 0 unreadable") || !strings.Contains(out, "refused: it is a symbolic link") ||
		!strings.Contains(out, "move the write-ahead log away") || strings.Contains(out, "salvage") {
		t.Errorf("check: exit %d, %s", code, out)
	}
}
