package main

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/statusengine/statusengine/client"
)

var reFlagWord = regexp.MustCompile(`--([a-z][a-z0-9-]*)`)

// Every command's help writes its flags as the synopsis does (--flag, never
// -flag), and the synopsis names exactly the flags the command has.
func TestHelpFlagForm(t *testing.T) {
	for _, c := range commands {
		_, out, _ := cli(t, "", c.name, "--help")
		if !strings.HasPrefix(out, "Usage: "+c.synopsis()+"\n") {
			t.Errorf("%s --help does not start with its synopsis %q:\n%s", c.name, c.synopsis(), out)
		}
		var defined []string
		if _, flags, ok := strings.Cut(out, "\nFlags:\n"); ok {
			for _, line := range strings.Split(flags, "\n") {
				if strings.HasPrefix(line, "  -") && !strings.HasPrefix(line, "  --") {
					t.Errorf("%s --help lists a flag in the -flag form: %q", c.name, line)
				}
				if m := regexp.MustCompile(`^  --([a-z0-9-]+)`).FindStringSubmatch(line); m != nil {
					defined = append(defined, m[1])
				}
			}
		}
		var named []string
		for _, m := range reFlagWord.FindAllStringSubmatch(c.args, -1) {
			if !slices.Contains(named, m[1]) {
				named = append(named, m[1])
			}
		}
		slices.Sort(defined)
		slices.Sort(named)
		if !slices.Equal(defined, named) {
			t.Errorf("%s: the synopsis names flags %v, the command has %v", c.name, named, defined)
		}
	}
}

// docs/operating.md's command table lists every command with exactly the
// synopsis its --help prints.
func TestREADMECommandTable(t *testing.T) {
	f, err := os.Open("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]string{} // command name -> synopsis as written
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "| command | what it does |":
			in = true
		case in && !strings.HasPrefix(line, "|"):
			in = false
		case in && strings.HasPrefix(line, "| `"):
			cell := strings.SplitN(line[3:], "` |", 2)[0]
			cell = strings.ReplaceAll(cell, `\|`, "|")
			name, _, _ := strings.Cut(cell, " ")
			rows[name] = "statusengine " + cell
		}
	}
	for _, c := range commands {
		got, ok := rows[c.name]
		switch {
		case !ok:
			t.Errorf("docs/operating.md's command table has no row for %s (want `%s`)", c.name, strings.TrimPrefix(c.synopsis(), "statusengine "))
		case got != c.synopsis():
			t.Errorf("docs/operating.md's row for %s is %q, --help says %q", c.name, got, c.synopsis())
		}
		delete(rows, c.name)
	}
	for name := range rows {
		t.Errorf("docs/operating.md's command table lists %q, which is no command", name)
	}
}

// A token from the environment never shows in the help.
func TestHelpHidesToken(t *testing.T) {
	t.Setenv("STATUSENGINE_TOKEN", "s3cret-from-env")
	for _, c := range []string{"export", "import", "backup"} {
		if _, out, _ := cli(t, "", c, "--help"); strings.Contains(out, "s3cret") {
			t.Errorf("%s --help shows the token from the environment:\n%s", c, out)
		}
	}
}

// export --api and --format csv, from a running server and from a file;
// both forms are byte for byte the same by either route, for a beacon
// holding '<', '>' and '&' too (JSON's HTML escaping is off on both).
func TestExportAPIAndCSV(t *testing.T) {
	s := startServer(t, "export")
	for i := 0; i < 3; i++ {
		b := fmt.Sprintf("2.9.7,Apache/2.4.%d (Debian),1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,%02x", 60+i, i)
		if i == 2 {
			b = "2.9.7,Apache/2.4.62 <b>&amp;</b>,1.7.2/1.7.2,10.42/,Lua 5.1,2.9.14,02"
		}
		if _, err := client.Send(t.Context(), b, client.Options{Server: s.dns, Epoch: 1795549302 + int64(i), Timeout: 2 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	api := "http://" + s.api
	code, viaAPI, errs := cli(t, "", "export", "--api", api, "--format", "csv")
	if code != 0 {
		t.Fatalf("export --api --format csv: exit %d, %s", code, errs)
	}
	rows, err := csv.NewReader(strings.NewReader(viaAPI)).ReadAll()
	if err != nil || len(rows) != 4 || rows[0][0] != "key" || rows[1][4] != "2.9.7" {
		t.Fatalf("CSV from the API: %v, %q", err, viaAPI)
	}
	code, nd, errs := cli(t, "", "export", "--api", api, "--from", "2000-01-01")
	if code != 0 || strings.Count(nd, "\n") != 3 || !strings.Contains(nd, `"installation"`) {
		t.Fatalf("export --api (ndjson): exit %d, %q %s", code, nd, errs)
	}
	if !strings.Contains(nd, `Apache/2.4.62 <b>&amp;</b>`) || !strings.Contains(viaAPI, `Apache/2.4.62 <b>&amp;</b>`) {
		t.Errorf("export --api escapes '<', '>' or '&':\n%s\n%s", nd, viaAPI)
	}
	// What the API's NDJSON holds, import takes back.
	into := filepath.Join(t.TempDir(), "into.db")
	if code, out, errs := cli(t, nd, "import", "--db", into); code != 0 || out != "imported 3, duplicate 0, rejected 0\n" {
		t.Errorf("import of export --api: exit %d, %q %s", code, out, errs)
	}
	if code, out, _ := cli(t, "", "export", "--api", api, "--from", "2200-01-01"); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("export --api of an empty window: exit %d, %q", code, out)
	}

	// The same records from the file give the same CSV.
	s.stop()
	code, viaDB, errs := cli(t, "", "export", "--db", s.db, "--format", "csv")
	if code != 0 || !strings.Contains(errs, "exported 3 records") {
		t.Fatalf("export --db --format csv: exit %d, %s", code, errs)
	}
	if viaDB != viaAPI {
		t.Errorf("CSV from the file differs from the API's:\n%s\nvs\n%s", viaDB, viaAPI)
	}
	if code, ndDB, errs := cli(t, "", "export", "--db", s.db, "--from", "2000-01-01"); code != 0 || ndDB != nd {
		t.Errorf("NDJSON from the file (exit %d, %s) differs from the API's:\n%s\nvs\n%s", code, errs, ndDB, nd)
	}

	// Hostile and wrong uses.
	tests := []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"export", "--db", s.db, "--format", "xml"}, 2, `--format: "xml" is neither ndjson nor csv`},
		{[]string{"export", "--db", s.db, "--api", api}, 2, "give exactly one of --db and --api"},
		{[]string{"export"}, 2, "give exactly one of --db and --api"},
		{[]string{"export", "--db", s.db, "--from", "2026-02-01", "--to", "2026-01-01"}, 2, "--to is before --from"},
		{[]string{"export", "--api", api}, 1, "connection refused"}, // stopped
		{[]string{"export", "--api", "http://127.0.0.1:1/%zz"}, 1, "invalid URL escape"},
	}
	for _, tc := range tests {
		code, _, errs := cli(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.err) {
			t.Errorf("%q: exit %d, %q; want %d and %q", tc.args, code, errs, tc.code, tc.err)
		}
	}
}

// An import that rejects any line exits 1 after printing the counts; the
// good lines are stored all the same.
func TestImportRejectedExit(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "b.db")
	if code, _, errs := cli(t, "", "import-tinydns", "--db", a, "--quiet", fixture); code != 0 {
		t.Fatal(errs)
	}
	_, nd, _ := cli(t, "", "export", "--db", a)
	bad := nd + "{not json\n" + `{"received":"2026-11-25T08:40:54Z","beacon":"garbage"}` + "\n"
	code, out, errs := cli(t, bad, "import", "--db", b)
	if code != 1 || out != "imported 4, duplicate 0, rejected 2\n" || !strings.Contains(errs, "2 lines rejected") {
		t.Errorf("import with 2 bad lines: exit %d, %q %q", code, out, errs)
	}
	if code, out, _ := cli(t, "{}\n", "import", "--db", b); code != 1 || out != "imported 0, duplicate 0, rejected 1\n" {
		t.Errorf("import of only bad lines: exit %d, %q", code, out)
	}
	if code, out, _ := cli(t, nd, "import", "--db", b); code != 0 || out != "imported 0, duplicate 4, rejected 0\n" {
		t.Errorf("import of good lines again: exit %d, %q", code, out)
	}

	// Through a running server's API, the same.
	s := startServer(t, "rejects")
	code, out, errs = cli(t, bad, "import", "--api", "http://"+s.api)
	if code != 1 || out != "imported 4, duplicate 0, rejected 2\n" || !strings.Contains(errs, "2 lines rejected") {
		t.Errorf("import --api with 2 bad lines: exit %d, %q %q", code, out, errs)
	}
}
